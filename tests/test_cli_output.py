"""What the commands print: uncut plain lines off a terminal, flags without placeholders, words in the singular."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import harvest
from tests.processes import children

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "harvester" / "samples"
FAST = "void mainImage(out vec4 c, in vec2 f) { c = vec4(f / iResolution.xy, 0.5, 1.0); }\n"
BROKEN = "void mainImage(out vec4 c, in vec2 f) {\n  c = vec4(1.0);\n  c = nope;\n}\n"


def _plain_env() -> dict[str, str]:
    return {"COLUMNS": ""}  # as under nohup or in a CI log: no terminal and no width to go by


def test_validate_off_a_terminal_prints_whole_progress_lines(tmp_path):
    deep = tmp_path / ("a-very-long-folder-name-" * 4)
    deep.mkdir()
    db = deep / "harvest.db"
    assert harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", str(db), env=_plain_env()).returncode == 0
    result = harvest("validate", "--workers", "2", "--size", "32", "--frames", "1", "--db", str(db), env=_plain_env())
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("validating: ")]
    assert progress, result.stderr
    last = progress[-1]
    assert "35/35" in last and "programs/s" in last and "ok " in last  # counts and rate on one uncut line
    assert "…" not in result.stderr + result.stdout
    assert not any(set(line) & set("━─") for line in result.stderr.splitlines())  # no bar fragments


def test_crawl_off_a_terminal_shows_the_whole_command_output(tmp_path):
    deep = tmp_path / ("another-long-folder-name-" * 5)
    deep.mkdir()
    result = harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", str(deep / "h.db"), env=_plain_env())
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stderr + result.stdout
    assert not any(set(line) & set("━⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") for line in result.stderr.splitlines())  # no bar, no spinner
    assert "crawl local: 35" in result.stderr and "new 35" in result.stderr


def test_flags_show_no_value_placeholder_and_help_says_what_quickstart_does():
    validate_help = harvest("validate", "--help").stdout
    assert "--revalidate" in validate_help and "<bool>" not in validate_help
    assert "harvest[ray]" in validate_help  # not eaten as markup
    quickstart_help = " ".join(harvest("quickstart", "--help").stdout.split())
    assert "--probe-data" in quickstart_help and "given --probe-data, probe" in quickstart_help


def test_a_compile_error_names_its_line_once(tmp_path):
    program = tmp_path / "broken.frag"
    program.write_text(BROKEN)
    result = harvest("render", "--file", str(program), "--dialect", "shadertoy", "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: compile_error: line 3") and line.count("line 3") == 1, line


def test_empty_catalog_stats_say_so_in_one_line(tmp_path):
    result = harvest("stats", "--db", str(tmp_path / "empty.db"))
    assert result.returncode == 0
    assert "holds no programs yet" in result.stdout and "┃" not in result.stdout


def test_one_program_is_singular_and_workers_have_bounds(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "only.frag").write_text("// Author: harvest contributors\n// License: CC0-1.0\n" + FAST)
    db = str(tmp_path / "harvest.db")
    assert harvest("crawl", "--source", "local", "--path", str(folder), "--db", db).returncode == 0
    result = harvest("validate", "--workers", "16", "--size", "32", "--db", db)
    assert result.returncode == 0, result.stderr
    assert "(1 program)" in result.stdout and not re.search(r"(?<![\d.])1 programs\b", result.stdout)
    too_many = harvest("validate", "--workers", "100000", "--db", db)
    assert too_many.returncode == 1 and "--workers must be between 1 and" in too_many.stderr


def test_harvest_started_with_sigint_ignored_still_stops_on_ctrl_c(tmp_path):
    """A background shell starts jobs with SIGINT ignored; harvest puts the default handling back."""
    db = str(tmp_path / "harvest.db")
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "slow.frag").write_text((SAMPLES / "slow_loop.frag").read_text())
    assert harvest("crawl", "--source", "local", "--path", str(slow), "--db", db).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "harvester.cli", "validate", "--workers", "1", "--timeout", "600", "--db", db],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not children(process.pid):
            time.sleep(0.1)  # until its render worker runs the slow program
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr


def test_ctrl_c_that_reaches_no_handler_of_its_command_still_says_interrupted(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the renderer is described, before the command's own interrupt handling: one line, exit 130."""
    import renderer.devices
    from harvester import cli

    def ctrl_c(indices):
        raise KeyboardInterrupt

    db = str(tmp_path / "harvest.db")
    assert harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", db).returncode == 0
    monkeypatch.setattr(renderer.devices, "describe_render_devices", ctrl_c)
    monkeypatch.setattr(sys, "argv", ["harvest", "validate", "--workers", "1", "--db", db])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_gallery_marks_the_programs_of_an_export_named_on_the_command_line(tmp_path):
    db = str(tmp_path / "harvest.db")
    assert harvest("crawl", "--source", "local", "--path", str(SAMPLES), "--db", db).returncode == 0
    assert harvest("validate", "--workers", "2", "--size", "32", "--frames", "1", "--db", db).returncode == 0
    elsewhere = tmp_path / "published" / "v1"
    elsewhere.parent.mkdir()
    exported = harvest("export", "--out", str(elsewhere), "--db", db)
    assert exported.returncode == 0, exported.stderr
    assert re.search(r"exported \d+ programs \(1 shard, 0 images\)", exported.stdout)
    page = tmp_path / "gallery.html"
    plain = harvest("gallery", "--out", str(page), "--db", db)
    assert plain.returncode == 0 and "in the export" not in page.read_text()
    marked = harvest("gallery", "--out", str(page), "--export", str(elsewhere), "--db", db)
    assert marked.returncode == 0, marked.stderr
    assert "in the export" in page.read_text()


def test_on_a_120_column_terminal_the_counts_get_their_own_line_below_the_bar():
    import io

    from rich.console import Console

    from harvester.progress import ProgressView

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    counts = {"ok": 16079, "needs_input": 1007, "blank": 104, "timeout": 10, "compile_error": 8}
    with ProgressView("validating", console, order=("ok", "blank", "compile_error", "timeout", "needs_input")) as view:
        view.update(17208, 17208, counts)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # cursor and erase codes
    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    bar = next(line for line in reversed(lines) if line.startswith("validating"))
    assert "━" * 20 in bar and "17208/17208" in bar  # the bar keeps its room
    assert "ok 16079  blank 104  compile_error 8  timeout 10  needs_input 1007" in lines[-1]
