"""Hostile crawl input: servers that quote secrets back, credentials in URLs, integers SQLite cannot hold,
records the catalog cannot store, oddly named buffer passes and answers about another program."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from pathlib import Path

from corpus.redaction import public_url, redact, register_url_credentials
from harvester.sources import SourceSettings
from tests.cli import harvest
from tests.fakes.crawling import crawl, failures, passes_of, programs, runs
from tests.fakes.servers import FakeGallery, FakeShadertoy, Reply, api_shader

KEY = "SECRETKEY123-hostile"
PASSWORD = "pw-SECRET-4711"
IMAGE = "void mainImage(out vec4 c, in vec2 p){{ c = vec4({v}); }}"


def _shaders(n: int = 3) -> dict[str, dict]:
    return {f"id{i:03d}": api_shader(f"id{i:03d}", IMAGE.format(v=f"{i}.0 / 9.0")) for i in range(n)}


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _catalog_bytes(db: Path) -> bytes:
    return b"".join(path.read_bytes() for path in db.parent.glob(db.name + "*"))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- secrets quoted back by the server -----------------------------------------------------------------


def test_key_quoted_in_the_listing_error_is_redacted_on_stderr_and_in_the_run(tmp_path):
    db = tmp_path / "c.db"
    with FakeShadertoy("the-right-key", _shaders()) as api:
        api.echo_key = True
        result = harvest("crawl", "--source", "shadertoy-public", "--base-url", api.url, "--rate", "0", "--db", str(db),
                         env={"SHADERTOY_API_KEY": KEY})
    assert result.returncode == 1
    assert _error_lines(result.stderr) == [
        "error: Shadertoy API refused the listing: Invalid key *** (key=***) (check --api-key / SHADERTOY_API_KEY)"
    ]
    assert KEY not in result.stderr + result.stdout and "Traceback" not in result.stderr
    [(status, message)] = _rows(db, "SELECT status, message FROM crawl_runs")
    assert status == "failed" and "Invalid key ***" in message and KEY not in message
    assert KEY.encode() not in _catalog_bytes(db)


def test_key_quoted_in_an_item_error_is_redacted_in_failures_summary_and_logs(catalog, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeShadertoy(KEY, _shaders()) as api:
        api.queue("/api/v1/shaders/id001", Reply.json({"Error": f"key {KEY} may not read this; key={KEY}"}))
        summary = crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=api.url))
    assert (summary.new, summary.failed) == (2, 1)
    [failure] = failures(catalog)
    assert failure.item == "id001" and failure.reason == "API error: key *** may not read this; key=***"
    assert KEY not in " ".join(summary.failure_reasons)
    assert not [r for r in caplog.records if KEY in r.getMessage()]
    catalog.close()
    assert KEY.encode() not in _catalog_bytes(tmp_path / "harvest.db")


def test_url_credentials_quoted_back_are_redacted_like_the_key():
    register_url_credentials(f"http://harvester:{PASSWORD}@example.test/")
    assert redact(f"you sent {PASSWORD}, which is wrong") == "you sent ***, which is wrong"
    token = "ghp_0tokenOnly9876543210"
    register_url_credentials(f"https://{token}@git.example.test/repo.git")
    assert redact(f"bad token {token}") == "bad token ***"
    register_url_credentials("ssh://git@git.example.test/repo.git")
    assert redact("git fetch failed") == "git fetch failed"  # an account name is not a secret


# --- credentials in --base-url ---------------------------------------------------------------------------


def test_public_url_drops_userinfo_and_key_parameters():
    assert public_url("http://u:p@host:81/api/?key=abc&sort=name") == "http://host:81/api/?sort=name"
    assert public_url("https://token@host") == "https://host"
    assert public_url("https://host/x?apikey=1&token=2#frag") == "https://host/x#frag"
    assert public_url("http://[::1]:8080/") == "http://[::1]:8080/"


def test_credentials_in_base_url_are_used_but_never_stored_or_printed(tmp_path):
    db = tmp_path / "c.db"
    with FakeShadertoy(KEY, _shaders()) as api:
        base = api.url.replace("http://", f"http://harvester:{PASSWORD}@")
        api.queue("/api/v1/shaders/id002", Reply.json({"Error": f"user harvester:{PASSWORD} is read-only"}))
        result = harvest("crawl", "--source", "shadertoy-public", "--base-url", base, "--rate", "0", "--db", str(db),
                         "--api-key", KEY)
        sent = {hit.headers.get("Authorization") for hit in api.hits}
    assert result.returncode == 0, result.stderr
    assert sent == {"Basic " + base64.b64encode(f"harvester:{PASSWORD}".encode()).decode()}
    assert PASSWORD not in result.stdout + result.stderr
    [(scope, params)] = _rows(db, "SELECT scope, params FROM crawl_runs")
    assert scope == f"{api.url}/api/v1/shaders" and json.loads(params)["base_url"] == api.url
    assert {url for (url,) in _rows(db, "SELECT url FROM programs")} == {f"{api.url}/view/id000", f"{api.url}/view/id001"}
    [(reason,)] = _rows(db, "SELECT reason FROM crawl_failures")
    assert reason == "API error: user harvester:*** is read-only"
    assert PASSWORD.encode() not in _catalog_bytes(db)


def test_gallery_credentials_stay_out_of_scope_and_program_urls(catalog, tmp_path):
    pages = [{"1.0": {"code": "void main(){ gl_FragColor = vec4(1.); }", "user": "u", "parent": None}}]
    with FakeGallery(pages) as gallery:
        base = gallery.url.replace("http://", f"http://harvester:{PASSWORD}@")
        summary = crawl(catalog, "glslsandbox", SourceSettings(base_url=base, pages=1))
    assert summary.new == 1 and summary.scope == gallery.url
    assert [p.url for p in programs(catalog)] == [f"{gallery.url}/e#1.0"]
    assert runs(catalog)[-1].params["base_url"] == gallery.url
    catalog.close()
    assert PASSWORD.encode() not in _catalog_bytes(tmp_path / "harvest.db")


# --- integers SQLite cannot hold, and records the catalog cannot store -----------------------------------


def _api_line(shader_id: str, **info) -> str:
    shader = api_shader(shader_id, IMAGE.format(v=f"0.{sum(map(ord, shader_id))}"))  # distinct code: no duplicates
    shader["info"].update(info)
    return json.dumps({"Shader": shader})


def test_a_dump_with_absurd_integers_imports_every_record_without_them(tmp_path):
    dump = tmp_path / "dump.jsonl"
    lines = [_api_line("good1"), _api_line("huge", likes=10**30, viewed=2**63), _api_line("negative", viewed=-5),
             _api_line("good2")]
    lines.insert(3, _api_line("infinite").replace('"likes": 3', '"likes": 1e999'))
    dump.write_text("\n".join(lines) + "\n")
    db = tmp_path / "c.db"
    result = harvest("crawl", "--source", "local", "--path", str(dump), "--db", str(db))
    assert result.returncode == 0, result.stderr
    stored = {sid: (likes, views) for sid, likes, views in _rows(db, "SELECT source_id, likes, views FROM programs")}
    assert stored == {"good1": (3, 10), "huge": (None, None), "negative": (3, None), "infinite": (None, 10),
                      "good2": (3, 10)}
    assert _rows(db, "SELECT status FROM crawl_runs") == [("finished",)]
    again = harvest("crawl", "--source", "local", "--path", str(dump), "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert _rows(db, "SELECT status FROM crawl_runs") == [("finished",), ("finished",)]


def test_an_api_answer_with_an_absurd_integer_is_stored_without_it(catalog):
    shaders = _shaders(2)
    shaders["id001"]["info"].update(likes=10**30, viewed=-(10**30))
    with FakeShadertoy(KEY, shaders) as api:
        summary = crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=api.url))
    assert (summary.new, summary.failed, summary.status) == (2, 0, "finished")
    assert {p.source_id: (p.likes, p.views) for p in programs(catalog)} == {"id000": (3, 10), "id001": (None, None)}


def test_a_record_the_catalog_cannot_store_is_a_failure_of_that_item_only(tmp_path):
    unstorable = api_shader("badName", IMAGE.format(v="0.2"))
    unstorable["renderpass"][0]["name"] = "\ud800"  # a lone surrogate: valid JSON, not encodable as UTF-8
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join([_api_line("before"), json.dumps({"Shader": unstorable}), _api_line("after")]) + "\n")
    db = tmp_path / "c.db"
    result = harvest("crawl", "--source", "local", "--path", str(dump), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert sorted(sid for (sid,) in _rows(db, "SELECT source_id FROM programs")) == ["after", "before"]
    assert _rows(db, "SELECT count(*) FROM program_passes") == [(2,)]  # nothing of the bad record is left behind
    [(source, item, reason)] = _rows(db, "SELECT source, item, reason FROM crawl_failures")
    assert (source, item) == ("local", "badName") and reason.startswith("could not be stored: UnicodeEncodeError")
    assert _rows(db, "SELECT status, new, failed FROM crawl_runs") == [("finished", 2, 1)]


# --- buffer passes with other names; an answer about another program ---------------------------------------


def test_buffer_passes_named_otherwise_still_count_as_buffers(catalog):
    shader = api_shader("bufs01", IMAGE.format(v="texture(iChannel0, p).x"), buffers={"A": IMAGE.format(v="0.1")})
    shader["renderpass"] += [
        {"inputs": [], "outputs": [{"id": 259, "channel": 0}], "code": IMAGE.format(v="0.3"), "name": "Feedback",
         "type": "buffer"},
        {"inputs": [], "outputs": [], "code": IMAGE.format(v="0.4"), "name": "", "type": "buffer"},
    ]
    with FakeShadertoy(KEY, {"bufs01": shader}) as api:
        summary = crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=api.url))
    assert summary.new == 1
    [program] = programs(catalog)
    assert program.buffer_passes == 3
    kinds = {p.kind: p.name for p in passes_of(catalog, program.id)}
    assert kinds == {"image": "Image", "buffer_a": "Buffer A", "buffer_c": "Feedback", "buffer_b": "Buffer B"}


def test_an_answer_about_another_id_is_a_failure_of_the_asked_id(catalog):
    with FakeShadertoy(KEY, _shaders()) as api:
        api.queue("/api/v1/shaders/id001", Reply.json({"Shader": api_shader("intruder", IMAGE.format(v="0.9"))}))
        summary = crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=api.url))
        assert (summary.new, summary.failed) == (2, 1)
        assert [(f.item, f.reason) for f in failures(catalog)] == [
            ("id001", "API answered with shader 'intruder' when asked for id001")
        ]
        assert sorted(p.source_id for p in programs(catalog)) == ["id000", "id002"]
        second = crawl(catalog, "shadertoy-public", SourceSettings(api_key=KEY, base_url=api.url))
    assert (second.new, second.skipped) == (1, 2)  # the asked id is fetched again next time


def test_one_integer_policy_for_counts():
    from corpus.ingest import stored_count

    assert [stored_count(v) for v in (0, 3, 2**63 - 1)] == [0, 3, 2**63 - 1]
    assert [stored_count(v) for v in (10**30, 2**63, -1, -(2**63), None, True, 7.9, "12")] == [None] * 8
