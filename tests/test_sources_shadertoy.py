"""`shadertoy-public` against a fake API on 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import UTC

import pytest

from harvester.crawl import CrawlOptions
from harvester.errors import HarvestError
from harvester.sources import SourceSettings
from tests.cli import harvest
from tests.fakes.crawling import crawl, failures, passes_of, programs, runs
from tests.fakes.servers import FakeShadertoy, api_shader, misbehaviour

KEY = "st-key-9d8c7b6a"
IMAGE = "void mainImage(out vec4 c, in vec2 p){{ c = vec4({v}); }}"


def _shaders(n: int = 5) -> dict[str, dict]:
    shaders = {f"id{i:03d}": api_shader(f"id{i:03d}", IMAGE.format(v=f"{i}.0 / 9.0")) for i in range(n)}
    shaders["buf001"] = api_shader(
        "buf001",
        "// MIT License\n" + IMAGE.format(v="texture(iChannel0, p).x"),
        common="float f(){return 1.;}",
        buffers={"A": "void mainImage(out vec4 c, in vec2 p){ c = vec4(0); }"},
        inputs=[{"id": 257, "src": "/media/previz/buffer00.png", "ctype": "buffer", "channel": 0, "sampler": {}},
                {"id": 7, "src": "/media/a/tex.jpg", "ctype": "texture", "channel": 1, "sampler": {}}],
    )
    return shaders


@pytest.fixture()
def api():
    with FakeShadertoy(KEY, _shaders()) as server:
        yield server


def settings(api, **extra) -> SourceSettings:
    return SourceSettings(api_key=KEY, base_url=api.url, **extra)


def test_crawl_ingests_programs_with_passes_inputs_and_licence(catalog, api):
    summary = crawl(catalog, "shadertoy-public", settings(api))
    assert (summary.new, summary.failed, summary.status) == (6, 0, "finished")
    rows = {p.source_id: p for p in programs(catalog)}
    assert set(rows) == {"id000", "id001", "id002", "id003", "id004", "buf001"}
    plain = rows["id001"]
    assert plain.source == "shadertoy" and plain.url == f"{api.url}/view/id001"
    assert (plain.license, plain.license_origin) == ("CC-BY-NC-SA-3.0", "source-default")
    assert plain.published_at.replace(tzinfo=UTC).year == 2014 and plain.author == "someone"
    multi = rows["buf001"]
    assert (multi.license, multi.license_origin, multi.buffer_passes) == ("MIT", "detected", 1)
    passes = {p.kind: p for p in passes_of(catalog, multi.id)}
    assert set(passes) == {"image", "common", "buffer_a"}
    assert passes["image"].inputs == [
        {"channel": 0, "ctype": "buffer", "src": "buffer_a"},
        {"channel": 1, "ctype": "texture", "src": "/media/a/tex.jpg"},
    ]


def test_known_ids_are_not_fetched_again_unless_refresh(catalog, api):
    crawl(catalog, "shadertoy-public", settings(api))
    details_before = len(api.hits_for("/api/v1/shaders/"))
    again = crawl(catalog, "shadertoy-public", settings(api))
    assert (again.new, again.skipped) == (0, 6)
    assert len(api.hits_for("/api/v1/shaders/")) == details_before  # only the listing was asked again
    refreshed = crawl(catalog, "shadertoy-public", settings(api), CrawlOptions(refresh=True))
    assert (refreshed.unchanged, refreshed.skipped) == (6, 0)


def test_item_failures_are_recorded_and_the_crawl_goes_on(catalog, api):
    api.queue("/api/v1/shaders/id001", misbehaviour("error"))
    api.queue("/api/v1/shaders/id002", *[misbehaviour("truncated")] * 3)
    api.queue("/api/v1/shaders/id003", misbehaviour("notjson"))
    api.queue("/api/v1/shaders/id004", misbehaviour("404"))
    api.queue("/api/v1/shaders/id000", misbehaviour("429", retry_after="0"), misbehaviour("500"))
    summary = crawl(catalog, "shadertoy-public", settings(api))
    assert (summary.new, summary.failed) == (2, 4)
    reasons = {f.item: f.reason for f in failures(catalog)}
    assert reasons["id001"] == "API error: Shader not found"
    assert "truncated" in reasons["id002"]
    assert "not JSON" in reasons["id003"]
    assert "HTTP 404" in reasons["id004"]
    # the next run fetches only what failed
    second = crawl(catalog, "shadertoy-public", settings(api))
    assert (second.new, second.skipped) == (4, 2)


def test_empty_listing_has_no_results_key(catalog):
    with FakeShadertoy(KEY, {}) as empty:
        summary = crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=empty.url))
    assert summary.processed == 0 and summary.status == "finished"


def test_query_pages_and_limit(catalog, api):
    summary = crawl(catalog, "shadertoy-public", settings(api, query="shader id00", sort="name"),
                    CrawlOptions(limit=3))
    assert summary.new == 3 and summary.limit_reached
    listing = api.hits_for("/api/v1/shaders/query/")[0].path
    assert "sort=name" in listing and "from=0" in listing
    before = len(api.hits_for("/api/v1/shaders/query/"))
    rest = crawl(catalog, "shadertoy-public", settings(api, query="shader id00", sort="name"))
    assert rest.new == 2  # resumed from the cursor: id003, id004
    assert "from=3" in api.hits_for("/api/v1/shaders/query/")[before].path


def test_wrong_key_ends_the_crawl(catalog, api):
    with pytest.raises(HarvestError, match="Invalid key.*SHADERTOY_API_KEY"):
        crawl(catalog, "shadertoy-public", SourceSettings(api_key="wrong-key", base_url=api.url))
    assert runs(catalog)[-1].status == "failed"


def test_missing_key(catalog, api):
    with pytest.raises(HarvestError, match="needs an API key"):
        crawl(catalog, "shadertoy-public", SourceSettings(base_url=api.url))


def test_bot_challenge_is_named_with_advice(catalog, api):
    api.challenge_everything = True
    with pytest.raises(HarvestError, match="bot-challenge.*--source local"):
        crawl(catalog, "shadertoy-public", settings(api))


def test_bot_challenge_on_a_detail_page_keeps_earlier_programs(catalog, api):
    api.queue("/api/v1/shaders/id003", misbehaviour("challenge"))
    with pytest.raises(HarvestError, match="bot-challenge"):
        crawl(catalog, "shadertoy-public", settings(api, ), policy=_serial())
    assert [p.source_id for p in programs(catalog)] == ["id000", "id001", "id002"]


def _serial():
    from dataclasses import replace

    from tests.fakes.crawling import FAST_POLICY

    return replace(FAST_POLICY, concurrency=1)


def test_unreachable_host_ends_the_crawl(catalog):
    with FakeShadertoy(KEY) as gone:
        url = gone.url
    with pytest.raises(HarvestError, match="connection to 127.0.0.1 failed"):
        crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=url))


def test_key_never_reaches_logs_or_catalog(catalog, api, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    api.queue("/api/v1/shaders/id002", misbehaviour("500"))
    api.queue("/api/v1/shaders/id004", misbehaviour("404"))
    crawl(catalog, "shadertoy-public", settings(api))
    with pytest.raises(HarvestError) as wrong:
        crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY + "x", base_url=api.url))
    assert KEY not in str(wrong.value)
    assert any(f"key={KEY}" in h.path for h in api.hits)  # it was sent to the server
    assert caplog.records and not [r for r in caplog.records if KEY in r.getMessage()]
    catalog.close()
    for path in tmp_path.glob("harvest.db*"):
        assert KEY.encode() not in path.read_bytes(), path


def test_cli_wrong_key_one_line_exit_1_and_no_key_in_output(tmp_path, api):
    result = harvest("crawl", "--source", "shadertoy-public", "--base-url", api.url, "--db", str(tmp_path / "c.db"),
                     env={"SHADERTOY_API_KEY": "not-the-key-123"})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: Shadertoy API refused the listing: Invalid key")
    assert "Traceback" not in result.stderr and "not-the-key-123" not in result.stderr + result.stdout


def test_cli_crawl_prints_summary(tmp_path, api):
    result = harvest("crawl", "--source", "shadertoy-public", "--base-url", api.url, "--rate", "0",
                     "--db", str(tmp_path / "c.db"), "--api-key", KEY)
    assert result.returncode == 0, result.stderr
    assert "new" in result.stdout and "6" in result.stdout and KEY not in result.stdout + result.stderr
