"""A killed export never leaves the target without an export, and its leftovers are cleaned by the next export.

The kill states are made two ways: by building the folders a killed export leaves (and calling the internal steps),
and by a real export in a subprocess that is sent SIGKILL at the worst moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import corpus.export_staging as staging_module
from corpus.errors import CorpusError
from corpus.export import ExportOptions, export_catalog
from corpus.export_format import read_export
from corpus.export_staging import exchange, install, leftovers, make_staging, recover
from tests.test_export_programs import ANIMATED, COLOURFUL_STATIC, add_program

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 240.0


@pytest.fixture()
def two_programs(catalog):
    add_program(catalog, "animated", ANIMATED)
    add_program(catalog, "colourful", COLOURFUL_STATIC)
    return catalog


@pytest.fixture()
def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _folder(path: Path, marker: str) -> Path:
    path.mkdir()
    (path / "manifest.jsonl").write_text(marker)
    return path


def test_stale_partial_folders_of_dead_exports_are_removed(two_programs, tmp_path, dead_pid):
    out = tmp_path / "data"
    stale = _folder(tmp_path / f".data.partial-{dead_pid}-abc123", "half")
    running = _folder(tmp_path / f".data.partial-{os.getpid()}-def456", "still being written")
    other_target = _folder(tmp_path / f".database.partial-{dead_pid}-abc123", "not ours")
    export_catalog(two_programs, ExportOptions(out=out))
    assert not stale.exists() and running.exists() and other_target.exists()
    assert len(read_export(out)) == 2


def test_killed_between_the_two_renames_the_old_export_comes_back(two_programs, tmp_path, dead_pid):
    out = tmp_path / "data"
    export_catalog(two_programs, ExportOptions(out=out, limit=1))
    # What `install` leaves when killed after retiring the old export: no target, a retired folder, a finished
    # staging folder.
    os.replace(out, tmp_path / f".data.old-{dead_pid}-aaaa1111")
    _folder(tmp_path / f".data.partial-{dead_pid}-bbbb2222", "finished but never moved")
    with pytest.raises(CorpusError, match="not empty; pass --overwrite"):
        export_catalog(two_programs, ExportOptions(out=out))
    assert len(read_export(out)) == 1 and leftovers(out) == []  # restored, and the staging folder is gone
    export_catalog(two_programs, ExportOptions(out=out, overwrite=True))
    assert len(read_export(out)) == 2 and leftovers(out) == []


def test_a_retired_export_is_deleted_once_the_new_one_is_in_place(tmp_path, dead_pid):
    out = _folder(tmp_path / "data", "new")
    retired = _folder(tmp_path / f".data.old-{dead_pid}-cccc3333", "old")
    assert recover(out) == [retired]
    assert not retired.exists() and (out / "manifest.jsonl").read_text() == "new"


def test_what_older_exports_left_is_recognised(tmp_path, dead_pid):
    out = tmp_path / "data"
    _folder(tmp_path / f".data.old-{dead_pid}", "old")  # the retired name before pids had a suffix
    unknown_owner = _folder(tmp_path / ".data.partial-k2x9_q7a", "whose?")  # no pid: it may still be running
    assert recover(out) == [] and (out / "manifest.jsonl").read_text() == "old" and unknown_owner.exists()


def test_a_live_exports_retired_folder_is_left_alone(tmp_path):
    out = tmp_path / "data"
    retired = _folder(tmp_path / f".data.old-{os.getpid()}-dddd4444", "old")
    assert recover(out) == [] and retired.exists() and not out.exists()


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "two-renames"])
def test_install_replaces_the_old_export(tmp_path, monkeypatch, swap):
    out = _folder(tmp_path / "data", "old")
    if not swap:
        monkeypatch.setattr(staging_module, "exchange", lambda first, second: False)
    new = make_staging(out)
    (new / "manifest.jsonl").write_text("new")
    install(new, out)
    assert (out / "manifest.jsonl").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_exchange_swaps_two_folders_or_says_it_cannot(tmp_path):
    first, second = _folder(tmp_path / "a", "first"), _folder(tmp_path / "b", "second")
    if not exchange(first, second):
        pytest.skip("this file system has no atomic exchange; install falls back to two renames")
    assert (first / "manifest.jsonl").read_text() == "second" and (second / "manifest.jsonl").read_text() == "first"


def test_a_failed_second_rename_puts_the_old_export_back(tmp_path, monkeypatch):
    out = _folder(tmp_path / "data", "old")
    monkeypatch.setattr(staging_module, "exchange", lambda first, second: False)
    new = make_staging(out)
    real_replace = os.replace

    def replace(source, target):
        if Path(source) == new:
            raise OSError("disk trouble")
        real_replace(source, target)

    monkeypatch.setattr(staging_module.os, "replace", replace)
    with pytest.raises(OSError, match="disk trouble"):
        install(new, out)
    assert (out / "manifest.jsonl").read_text() == "old"


# --- a real export killed with SIGKILL -------------------------------------------------------------------------

_KILLED_EXPORT = """
import sys, time
from pathlib import Path
import corpus.export as export_module
import corpus.export_staging as staging
from corpus.db import open_catalog
from corpus.export import ExportOptions, export_catalog

db, out, ready, moment = sys.argv[1:5]

def wait_here():
    Path(ready).write_text("ready")
    time.sleep(600)

if moment == "writing":
    def attribution(samples):
        wait_here()
    export_module.attribution_markdown = attribution
else:
    staging.exchange = lambda first, second: False
    real_retire = staging.retire
    def retire(target, retired):
        real_retire(target, retired)
        wait_here()
    staging.retire = retire
export_catalog(open_catalog(db), ExportOptions(out=Path(out), overwrite=True))
"""


def _export_killed_at(catalog, out: Path, moment: str, tmp_path: Path) -> None:
    ready = tmp_path / f"ready-{moment}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_KILLED_EXPORT), str(catalog.path), str(out),
                              str(ready), moment], env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"the export never reached {moment!r} (exit status {child.poll()})"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_export_killed_while_writing_is_cleaned_up_by_the_next(two_programs, tmp_path):
    out = tmp_path / "data"
    export_catalog(two_programs, ExportOptions(out=out, limit=1))
    _export_killed_at(two_programs, out, "writing", tmp_path)
    assert [leftover.kind for leftover in leftovers(out)] == ["partial"]
    assert len(read_export(out)) == 1  # the previous export is untouched
    export_catalog(two_programs, ExportOptions(out=out, overwrite=True))
    assert leftovers(out) == [] and len(read_export(out)) == 2


def test_export_killed_between_the_renames_keeps_the_old_export(two_programs, tmp_path):
    out = tmp_path / "data"
    export_catalog(two_programs, ExportOptions(out=out, limit=1))
    _export_killed_at(two_programs, out, "retired", tmp_path)
    assert not out.exists() and sorted(leftover.kind for leftover in leftovers(out)) == ["old", "partial"]
    assert recover(out) and len(read_export(out)) == 1 and leftovers(out) == []
    info = json.loads((out / "export.json").read_text())
    assert info["exported"] == 1
