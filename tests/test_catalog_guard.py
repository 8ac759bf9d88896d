"""The catalog defends itself: one writer at a time, a newer schema or a damaged file is one clear line."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from corpus import writer_lock
from corpus.db import open_catalog
from tests.cli import harvest

SAMPLES = Path(__file__).resolve().parent.parent / "harvester" / "samples"


def _one_error_line(result) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_second_writer_is_refused_with_the_holders_pid_and_touches_nothing(tmp_path):
    db = tmp_path / "harvest.db"
    writer_lock.acquire(db)  # as a running crawl or validate holds it
    try:
        line = _one_error_line(harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", str(db)))
        assert f"another harvest is writing this catalog (pid {os.getpid()})" in line
        assert not db.exists()  # refused before the schema was even created: no half-migrated file
        _one_error_line(harvest("validate", "--db", str(db)))
    finally:
        writer_lock.release(db)
    assert harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", str(db)).returncode == 0


def test_readers_work_while_a_writer_holds_the_catalog(tmp_path):
    db = tmp_path / "harvest.db"
    assert harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", str(db)).returncode == 0
    catalog = open_catalog(db, writer=True)
    try:
        result = harvest("stats", "--json", "--db", str(db))
        assert result.returncode == 0 and '"programs"' in result.stdout
    finally:
        catalog.close()
    assert not writer_lock._HELD  # closing the last handle released it


def test_the_lock_dies_with_its_holder(tmp_path):
    db = tmp_path / "harvest.db"
    script = (f"from corpus import writer_lock; from pathlib import Path; writer_lock.acquire(Path({str(db)!r}));"
              "import os; os._exit(0)")  # exits without releasing, as kill -9 would
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parent.parent)
    open_catalog(db, writer=True).close()


def test_a_catalog_from_a_newer_harvest_says_so(tmp_path):
    db = tmp_path / "harvest.db"
    open_catalog(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
        conn.execute("PRAGMA user_version = 20304")
    line = _one_error_line(harvest("stats", "--db", str(db)))
    assert "made by harvest 2.3.4" in line and "0099" in line and "upgrade harvest" in line
    _one_error_line(harvest("db", "upgrade", "--db", str(db)))


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        page = 4096
        data[page : page * 6] = b"\x5a" * (page * 5)  # header intact, tables scribbled over
        path.write_bytes(bytes(data))


def test_a_damaged_catalog_is_one_line_with_the_integrity_check(tmp_path):
    for how in ("truncated", "scribbled"):
        db = tmp_path / f"{how}.db"
        assert harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", str(db)).returncode == 0
        _corrupt(db, how)
        for command in (("stats",), ("validate", "--workers", "1")):
            line = _one_error_line(harvest(*command, "--db", str(db)))
            assert f"{db} is damaged" in line and "integrity check:" in line, line
