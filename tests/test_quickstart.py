"""The main command end to end (without the pretraining): every step runs, and each program is compiled once."""

from __future__ import annotations

import re

from tests.cli import harvest


def test_quickstart_curates_the_samples_compiling_each_program_once(tmp_path):
    result = harvest("quickstart", "--pretrain-steps", "0", "--workers", "2", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in ("crawl the bundled samples", "validate", "score", "dedup", "export", "gallery", "stats"):
        assert f"== {step}" in out, step
    # Validation scores and hashes each ok program in the compile that judges it (how many depends only on
    # whether their frames fit the time left, which the unit tests pin down).
    assert "ok programs scored on the way" in out
    assert re.search(r"\d+ drawn now, the rest when validated", out)
    assert (tmp_path / "export" / "manifest.jsonl").is_file() and (tmp_path / "gallery.html").is_file()
    assert "quickstart done" in out and "Traceback" not in result.stderr
