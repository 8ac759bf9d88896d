"""`glslsandbox` against a fake gallery on 127.0.0.1."""

from __future__ import annotations

import pytest

from harvester.crawl import CrawlOptions
from harvester.errors import HarvestError
from harvester.http import PoliteClient
from harvester.sources import SourceSettings
from harvester.sources.glslsandbox import GlslSandboxSource, item_ids_in_page
from tests.fakes.crawling import FAST_POLICY, crawl, failures, programs
from tests.fakes.servers import FakeGallery, gallery_page, misbehaviour

SANDBOX = "uniform float time;\nuniform vec2 resolution;\nvoid main(){{ gl_FragColor = vec4({v}); }}"


def _pages(sizes: list[int]) -> list[dict[str, dict]]:
    pages, n = [], 0
    for size in sizes:
        page = {}
        for _ in range(size):
            page[f"{100 + n}.{n % 3}"] = {"code": SANDBOX.format(v=f"{n}.0/99.0"), "user": f"user{n}", "parent": ""}
            n += 1
        pages.append(page)
    return pages


def test_page_parser_reads_item_links_only():
    html = gallery_page(["12.0", "7.3", "12.0"]) + '<a href="/e#notanid">x</a><a href="https://example.com/e#5.1">y</a>'
    assert item_ids_in_page(html) == ["12.0", "7.3", "5.1"]
    assert item_ids_in_page("<html><body>nothing here</body></html>") == []


def test_crawl_reads_pages_until_an_empty_one(catalog):
    pages = _pages([3, 2])
    pages[0]["100.0"]["code"] = "// CC0 1.0\n" + pages[0]["100.0"]["code"]
    pages[1]["104.1"]["parent"] = "/e#101.1"
    with FakeGallery(pages) as gallery:
        summary = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url))
        assert [h.path for h in gallery.hits_for("/") if h.path.startswith("/?")] == ["/?page=0", "/?page=1", "/?page=2"]
    assert (summary.new, summary.failed, summary.status) == (5, 0, "finished")
    rows = {p.source_id: p for p in programs(catalog)}
    assert rows["101.1"].url == f"{gallery.url}/e#101.1" and rows["101.1"].author == "user1"
    assert rows["101.1"].dialect == "glslsandbox" and rows["101.1"].license == "unknown"
    assert (rows["100.0"].license, rows["100.0"].license_origin) == ("CC0-1.0", "detected")
    assert rows["104.1"].description == "fork of /e#101.1"


def test_pages_option_and_resume_from_cursor(catalog):
    with FakeGallery(_pages([2, 2, 2])) as gallery:
        first = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url, pages=1))
        assert first.new == 2
        second = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url))
        page_hits = [h.path for h in gallery.hits_for("/") if h.path.startswith("/?")]
    assert second.new == 4 and second.skipped == 0
    assert page_hits == ["/?page=0", "/?page=1", "/?page=2", "/?page=3"]  # resumed at page 1


def test_item_failures_recorded(catalog):
    pages = _pages([4])
    pages[0]["101.1"] = {"code": "", "user": "x", "parent": ""}
    with FakeGallery(pages) as gallery:
        gallery.queue("/item/102.2", *[misbehaviour("truncated")] * 3)
        gallery.queue("/item/103.0", misbehaviour("oversized"))
        summary = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url))
    assert (summary.new, summary.failed) == (1, 3)
    reasons = {f.item: f.reason for f in failures(catalog)}
    assert reasons["101.1"] == "item has empty code"
    assert "truncated" in reasons["102.2"] and "cap" in reasons["103.0"]


def test_robots_disallow_is_obeyed(catalog):
    with FakeGallery(_pages([2]), robots="User-agent: *\nDisallow: /item/\n") as gallery:
        summary = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url))
        assert gallery.hits_for("/item/") == []
    assert summary.failed == 2 and {f.reason for f in failures(catalog)} == {"robots.txt disallows this item"}
    with FakeGallery(_pages([2]), robots="User-agent: harvest\nDisallow: /\n") as gallery:
        with pytest.raises(HarvestError, match="robots.txt .* disallows"):
            crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url))


def test_robots_crawl_delay_lowers_the_rate(catalog):
    with FakeGallery(_pages([1]), robots="User-agent: *\nCrawl-delay: 4\n") as gallery:
        with PoliteClient(FAST_POLICY) as client:
            source = GlslSandboxSource(client, gallery.url)
            source._load_robots()
            assert client.host_rate("127.0.0.1") == pytest.approx(0.25)


def test_missing_robots_allows_everything(catalog):
    with FakeGallery(_pages([2]), robots=None) as gallery:
        assert crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url)).new == 2


def test_changed_html_is_reported(catalog):
    with FakeGallery([]) as gallery:
        summary = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url))
    assert summary.failed == 1 and "HTML changed shape" in failures(catalog)[0].reason


def test_limit(catalog):
    with FakeGallery(_pages([3, 3])) as gallery:
        summary = crawl(catalog, "glslsandbox", SourceSettings(base_url=gallery.url), CrawlOptions(limit=4))
    assert summary.new == 4 and len(programs(catalog)) == 4
