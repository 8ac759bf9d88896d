"""The crawl driver: batches, cursors, resume after a crash, run records."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from corpus.db import open_catalog
from harvester.crawl import CrawlOptions, run_crawl, summary_table
from harvester.errors import HarvestError
from harvester.sources.local import LocalSource
from tests.fakes.crawling import programs, runs
from tests.fakes.servers import FakeShadertoy, api_shader

IMAGE = "void mainImage(out vec4 c, in vec2 p){{ c = vec4({v}); }}"


def _dump(path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"Shader": api_shader(f"s{i:04d}", IMAGE.format(v=f"{i}.0/{n}.0"))}) + "\n")


@dataclass
class Crashing:
    """A source that dies after `after` items, as a crash mid-crawl would."""

    inner: LocalSource
    after: int
    error: type[BaseException] = RuntimeError
    seen: list = field(default_factory=list)

    @property
    def name(self):
        return self.inner.name

    @property
    def scope(self):
        return self.inner.scope

    @property
    def total(self):
        return self.inner.total

    @property
    def exhausted(self):
        return self.inner.exhausted

    def params(self):
        return self.inner.params()

    def items(self, cursor, wanted):
        for count, item in enumerate(self.inner.items(cursor, wanted)):
            if count == self.after:
                raise self.error("source died")
            self.seen.append(item)
            yield item


@pytest.mark.parametrize("error", [RuntimeError, HarvestError, KeyboardInterrupt])
def test_resume_after_interrupted_crawl(catalog, tmp_path, error):
    _dump(tmp_path / "dump.jsonl", 25)
    options = CrawlOptions(batch_size=4)
    crashing = Crashing(LocalSource(tmp_path / "dump.jsonl"), after=10, error=error)
    with pytest.raises(error):
        run_crawl(catalog, crashing, options)
    stored = len(programs(catalog))
    # An unexpected error drops the uncommitted batch; a fatal source error or ^C commits what was done.
    assert stored == (8 if error is RuntimeError else 10)
    assert runs(catalog)[-1].status == ("interrupted" if error is KeyboardInterrupt else "failed")

    rest = run_crawl(catalog, LocalSource(tmp_path / "dump.jsonl"), options)
    assert rest.status == "finished" and rest.new == 25 - stored
    assert rest.skipped == 0  # resumed from the cursor, not re-read from the start
    ids = [p.source_id for p in programs(catalog)]
    assert len(ids) == len(set(ids)) == 25


def test_finished_crawl_starts_over_and_skips_known(catalog, tmp_path):
    _dump(tmp_path / "dump.jsonl", 6)
    options = CrawlOptions(batch_size=4)
    first = run_crawl(catalog, LocalSource(tmp_path / "dump.jsonl"), options)
    second = run_crawl(catalog, LocalSource(tmp_path / "dump.jsonl"), options)
    assert (first.new, second.new, second.skipped) == (6, 0, 6)
    refreshed = run_crawl(catalog, LocalSource(tmp_path / "dump.jsonl"), CrawlOptions(refresh=True))
    assert refreshed.unchanged == 6
    last = runs(catalog)[-1]
    assert (last.status, last.unchanged, last.params["refresh"]) == ("finished", 6, True)


def test_limit_then_continue(catalog, tmp_path):
    _dump(tmp_path / "dump.jsonl", 10)
    first = run_crawl(catalog, LocalSource(tmp_path / "dump.jsonl"), CrawlOptions(limit=4))
    assert first.new == 4 and first.limit_reached and "--limit 4" in runs(catalog)[-1].message
    second = run_crawl(catalog, LocalSource(tmp_path / "dump.jsonl"), CrawlOptions(limit=4))
    assert (second.new, second.skipped) == (4, 0)


def test_summary_table_lists_failure_reasons(catalog, tmp_path):
    (tmp_path / "d.jsonl").write_text("{bad\n{bad again\n" + json.dumps({"x": 1}) + "\n")
    summary = run_crawl(catalog, LocalSource(tmp_path / "d.jsonl"), CrawlOptions())
    assert summary.failed == 3 and summary.failure_reasons["malformed JSON"] == 2
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "malformed JSON" in text and "record of unknown shape" in text


def test_kill_9_then_rerun_no_duplicates_no_loss(tmp_path):
    key = "kill-test-key-42"
    shaders = {f"k{i:04d}": api_shader(f"k{i:04d}", IMAGE.format(v=f"{i}.0/300.0")) for i in range(300)}
    db = tmp_path / "harvest.db"
    command = [sys.executable, "-m", "harvester.cli", "crawl", "--source", "shadertoy-public", "--db", str(db),
               "--rate", "200", "--concurrency", "2"]
    env = dict(os.environ, SHADERTOY_API_KEY=key)
    env.pop("HARVEST_DB", None)
    with FakeShadertoy(key, shaders) as api:
        command += ["--base-url", api.url]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if db.exists():
                try:
                    stored = sqlite3.connect(db).execute("select count(*) from programs").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
                if stored >= 100:
                    break
        assert proc.poll() is None, "the crawl finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 100 <= stored < 300
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
    catalog = open_catalog(db)
    ids = [p.source_id for p in programs(catalog)]
    assert len(ids) == len(set(ids)) == 300
    statuses = [r.status for r in runs(catalog)]
    assert statuses == ["interrupted", "finished"]  # the rerun records how the killed run ended
    catalog.close()
