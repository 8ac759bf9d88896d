"""Executors and the validate stage: timeouts, crashes, resume, Ctrl-C, and the commands end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from corpus.ingest import ingest_program
from corpus.models import Validation
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from corpus.validation import ValidateOptions, select_pending, validate
from renderer.executor_spec import make_executor
from renderer.executors import LocalExecutor
from renderer.frames import frame_specs
from renderer.jobs import ProgramSource, RenderJob, Verdict
from tests.processes import alive, children

REPO = Path(__file__).resolve().parent.parent
GOOD = "void mainImage(out vec4 c, in vec2 f) {{ vec2 uv = f / iResolution.xy; c = vec4(uv, 0.5 + 0.5 * sin(iTime + {k}.0), 1.0); }}"
# Far too slow for any timeout used here on llvmpipe.
SLOW = (REPO / "harvester" / "samples" / "slow_loop.frag").read_text()
HUGE_ARRAY = "float big[100000000];\nvoid mainImage(out vec4 c, in vec2 f) { big[int(f.x)] = f.y; c = vec4(big[int(f.y)]); }"
LOOP_65535 = (
    "void mainImage(out vec4 c, in vec2 f) {\n    float s = 0.0;\n"
    "    for (int i = 0; i < 65535; i++) { s += sin(float(i) * f.x * 0.001 + iTime); }\n"
    "    c = vec4(fract(s), 0.5, 0.5, 1.0);\n}\n"
)


def _wait_for(probe, what: str, deadline_s: float = 120.0):
    """Poll `probe` until it returns something truthy: waits for a state, never for a guessed time."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {deadline_s:g} s")


def _job(key: int, code: str, timeout_s: float = 20.0, size: int = 32) -> RenderJob:
    return RenderJob(key=key, program=ProgramSource("shadertoy", code), frames=frame_specs(str(key), 2, size, size),
                     width=size, height=size, timeout_s=timeout_s)


def test_timeout_kills_and_respawns_the_worker():
    with LocalExecutor(workers=1) as pool:
        jobs = [_job(1, SLOW, timeout_s=1.5), _job(2, GOOD.format(k=2)), _job(3, GOOD.format(k=3))]
        results = {r.key: r for r in pool.run(jobs)}
        pids = pool.worker_pids()
        assert results[1].verdict == Verdict.TIMEOUT and "1.5 s" in results[1].reason
        assert results[2].verdict == results[3].verdict == Verdict.OK
        assert pool.respawns == 1
    assert pids and not any(alive(pid) for pid in pids)


def test_a_dead_worker_is_a_crash_and_the_run_goes_on():
    with LocalExecutor(workers=1) as pool:
        def kill_busy_worker() -> None:
            for pid in _wait_for(pool.busy_worker_pids, what="a busy worker"):
                os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_busy_worker)
        killer.start()
        results = {r.key: r for r in pool.run([_job(1, SLOW, timeout_s=60), _job(2, GOOD.format(k=1))])}
        killer.join()
    assert results[1].verdict == Verdict.CRASH and "SIGKILL" in results[1].reason
    assert results[2].verdict == Verdict.OK


def test_hostile_programs_each_get_a_verdict_within_the_timeout():
    programs = {
        1: HUGE_ARRAY,
        2: LOOP_65535,
        3: "void mainImage(out vec4 c, in vec2 f) { c = vec4(0.0 / 0.0); }",
        4: "// " + "y" * 1_000_000 + "\n" + GOOD.format(k=4),
        5: "\udcff\udcfe\x00void mainImage(",
        6: "",
        7: "#version 300 es\n#extension GL_OES_standard_derivatives : enable\n" + GOOD.format(k=7),
        8: "float a[65536];\nvoid mainImage(out vec4 c, in vec2 f) { a[int(f.x)] = 1.0; c = vec4(a[int(f.y)]); }",
    }
    timeout_s = 4.0
    with make_executor("local", workers=2) as pool:
        results = {r.key: r for r in pool.run(_job(k, code, timeout_s=timeout_s, size=64) for k, code in programs.items())}
    assert sorted(results) == sorted(programs)
    assert results[3].verdict == Verdict.BLANK
    assert results[4].verdict == results[7].verdict == Verdict.OK
    assert results[5].verdict == results[6].verdict == Verdict.COMPILE_ERROR
    for result in results.values():
        assert result.verdict in set(Verdict) and (result.verdict == Verdict.OK or result.reason)
        if result.verdict == Verdict.TIMEOUT:
            assert f"{timeout_s:g} s" in result.reason


def test_make_executor_rejects_unknown_kinds():
    from renderer.errors import RenderError

    with pytest.raises(RenderError, match="unknown executor 'cluster'"):
        make_executor("cluster")


# --- the validate stage -------------------------------------------------------------------------


def _add(catalog, source_id: str, code: str, inputs=(), dialect: str | None = None, extra_passes=()) -> int:
    fetched = FetchedProgram(
        source="test", source_id=source_id, url="", title=source_id, author="harvest contributors",
        passes=[FetchedPass("image", code, list(inputs)), *extra_passes], dialect=dialect, license="CC0-1.0",
    )
    with catalog.session() as session:
        return ingest_program(session, fetched).program_id


@pytest.fixture(scope="module")
def pool():
    with LocalExecutor(workers=2) as executor:
        yield executor


def test_validate_stores_every_verdict_and_reruns_resume(catalog, pool):
    ids = {
        "ok": _add(catalog, "ok", GOOD.format(k=1)),
        "compile": _add(catalog, "compile", "void mainImage(out vec4 c, in vec2 f) {\n  c = nope;\n}"),
        "keyboard": _add(catalog, "keyboard", GOOD.format(k=2), [ChannelInput(0, "keyboard")]),
        "buffer": _add(catalog, "buffer", GOOD.format(k=3), extra_passes=[FetchedPass("buffer_a", GOOD.format(k=9))]),
        "texture": _add(catalog, "texture", "void mainImage(out vec4 c, in vec2 f) { c = texture(iChannel0, f / 64.0); }",
                        [ChannelInput(0, "texture", "/media/a/x.png")]),
    }
    options = ValidateOptions(size=32, frames=3, timeout_s=20)
    report = validate(catalog, pool, options)
    assert report.done == report.selected == 5 and not report.interrupted
    with catalog.session() as session:
        rows = {row.program_id: row for row in session.exec(select(Validation)).all()}
    assert rows[ids["ok"]].verdict == "ok" and rows[ids["ok"]].animated is True
    assert len(rows[ids["ok"]].render_ms) == 3 and len(rows[ids["ok"]].frame_means) == 3
    assert rows[ids["ok"]].thumbnail_png.startswith(b"\x89PNG") and rows[ids["ok"]].size == 32
    assert rows[ids["compile"]].verdict == "compile_error" and rows[ids["compile"]].error_line == 2
    assert rows[ids["keyboard"]].verdict == "ok"  # a keyboard with no key down stands in for the live one
    assert rows[ids["buffer"]].verdict == "ok"  # simulated (renderer/passes.py)
    assert rows[ids["texture"]].verdict == "ok"
    assert validate(catalog, pool, options).selected == 0  # nothing left
    assert validate(catalog, pool, ValidateOptions(size=32, frames=1, revalidate=True, limit=2)).done == 2


# Extra frames are drawn when they fit in half of the time left: a generous timeout keeps these tests from
# depending on how busy the machine is.
def test_validate_scores_ok_programs_as_harvest_score_would(catalog, pool):
    from corpus.models import Score
    from corpus.scoring import METHOD, score_catalog
    from renderer.executor_spec import ExecutorSpec

    ok = _add(catalog, "ok", GOOD.format(k=1))
    other = _add(catalog, "other", GOOD.format(k=7))
    broken = _add(catalog, "broken", "void mainImage(out vec4 c, in vec2 f) { c = nope; }")
    report = validate(catalog, pool, ValidateOptions(timeout_s=120, score=True))
    assert report.scored == 2
    with catalog.session() as session:
        from_validate = {row.program_id: (row.diversity, row.colorfulness, row.fill) for row in session.exec(select(Score))}
        assert set(from_validate) == {ok, other} and session.get(Score, ok).method == METHOD
    assert broken not in from_validate
    # The same frames rendered by `harvest score` give the same scores.
    assert score_catalog(catalog, executor=ExecutorSpec(workers=1), rescore=True).scored == 2
    with catalog.session() as session:
        rescored = {row.program_id: (row.diversity, row.colorfulness, row.fill) for row in session.exec(select(Score))}
    assert rescored == from_validate
    # At another verdict size the scoring frames keep their own size: the same scores.
    assert validate(catalog, pool, ValidateOptions(size=64, revalidate=True, timeout_s=120)).scored == 2
    with catalog.session() as session:
        again = {row.program_id: (row.diversity, row.colorfulness, row.fill) for row in session.exec(select(Score))}
    assert again == from_validate
    assert validate(catalog, pool, ValidateOptions(revalidate=True, score=False)).scored == 0


def test_validate_stores_the_image_signature_dedup_would_draw(catalog, pool):
    from corpus.dedup import IMAGE_FRAMES, IMAGE_SEED_KEY, IMAGE_SIZE, image_signature
    from corpus.render_source import load_program_sources
    from corpus.signatures import stored_signatures
    from renderer.executor_spec import ExecutorSpec
    from tests.rendering import render_frames

    ids = [_add(catalog, f"p{k}", GOOD.format(k=k)) for k in range(3)]
    flat = _add(catalog, "flat", "void mainImage(out vec4 c, in vec2 f) { c = vec4(0.2, 0.4, 0.6, 1.0); }")
    validate(catalog, pool, ValidateOptions(timeout_s=120))
    with catalog.session() as session:
        stored = stored_signatures(session, [*ids, flat])
        sources = load_program_sources(session, ids)
    assert set(stored) == set(ids) or set(stored) == {*ids, flat}  # a flat program is `blank`, or has no picture
    assert stored.get(flat) is None
    specs = frame_specs(IMAGE_SEED_KEY, IMAGE_FRAMES, IMAGE_SIZE, IMAGE_SIZE)
    for result in render_frames(sources, specs, IMAGE_SIZE, ExecutorSpec(workers=1)):
        assert stored[result.key] == image_signature(result.frames), result.key


def test_scoring_frames_never_push_an_ok_program_into_a_timeout():
    from renderer.jobs import FrameSet
    from renderer.worker import _extra_frames_fit

    scoring = FrameSet("score", frame_specs("score", 8, 128, 128), 128, 128)
    job = RenderJob(key=1, program=ProgramSource("shadertoy", GOOD.format(k=1)), frames=frame_specs("1", 4, 128, 128),
                    timeout_s=10.0, extras=(scoring,))
    now = time.perf_counter()
    assert _extra_frames_fit(job, scoring, started=now, render_ms=[5.0, 6.0, 5.0, 5.0])  # 48 ms of 10 s
    assert not _extra_frames_fit(job, scoring, started=now, render_ms=[700.0, 600.0, 650.0, 640.0])  # 5.6 s > 5 s
    assert not _extra_frames_fit(job, scoring, started=now - 9.5, render_ms=[50.0])  # 0.4 s > half of the 0.5 s left
    bigger = FrameSet("big", frame_specs("big", 2, 256, 256), 256, 256)  # 4x the pixels: 4x the time expected
    assert not _extra_frames_fit(job, bigger, started=now, render_ms=[700.0])
    with LocalExecutor(workers=1) as executor:  # a frame of ~1 s: its scoring frames are left for later
        heavy = RenderJob(key=2, program=ProgramSource("shadertoy", LOOP_65535), frames=frame_specs("2", 2, 128, 128),
                          timeout_s=6.0, extras=(scoring,))
        [result] = list(executor.run([heavy]))
    assert result.verdict in (Verdict.OK, Verdict.TIMEOUT)  # depends on this machine's speed, never on scoring
    if result.verdict == Verdict.OK and max(result.render_ms) * 8 > 3000:
        assert "score" not in result.extras


class _InterruptAfter:
    """An executor that behaves like Ctrl-C arriving after `count` results."""

    def __init__(self, inner, count: int) -> None:
        self.inner, self.count = inner, count

    def run(self, jobs, on_wait=None):
        for index, result in enumerate(self.inner.run(jobs, on_wait=on_wait)):
            if index == self.count:
                raise KeyboardInterrupt
            yield result


def test_interrupted_run_keeps_results_and_the_rerun_finishes(catalog, pool):
    for k in range(6):
        _add(catalog, f"p{k}", GOOD.format(k=k))
    options = ValidateOptions(size=16, frames=1, batch_size=100)
    first = validate(catalog, _InterruptAfter(pool, 3), options)
    assert first.interrupted and first.done == 3
    with catalog.session() as session:
        assert len(session.exec(select(Validation)).all()) == 3  # saved although the batch was not full
        assert len(select_pending(session, options)) == 3
    second = validate(catalog, pool, options)
    assert second.done == 3 and not second.interrupted
    with catalog.session() as session:
        assert {row.verdict for row in session.exec(select(Validation)).all()} == {"ok"}


# --- the commands -------------------------------------------------------------------------------


def _harvest(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harvester.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_render_command_writes_a_png_and_a_grid(tmp_path):
    program = tmp_path / "gradient.frag"
    program.write_text(GOOD.format(k=0))
    single = tmp_path / "one.png"
    done = _harvest("render", "--file", str(program), "--size", "64x32", "--time", "1.25", "--out", str(single))
    assert done.returncode == 0, done.stderr
    assert Image.open(single).size == (64, 32)
    sheet = tmp_path / "grid.png"
    done = _harvest("render", "--file", str(program), "--size", "40x30", "--frames", "4", "--mouse", "1,2,3,4",
                    "--out", str(sheet))
    assert done.returncode == 0, done.stderr
    assert Image.open(sheet).size == (2 * 40 + 4, 2 * 30 + 4)
    assert not list(tmp_path.glob(".*.tmp"))


def test_render_command_reports_user_mistakes_in_one_line(tmp_path):
    broken = tmp_path / "broken.frag"
    broken.write_text("void mainImage(out vec4 c, in vec2 f) {\n\n  c = vec4(missing);\n}\n")
    out = tmp_path / "x.png"
    done = _harvest("render", "--file", str(broken), "--out", str(out))
    assert done.returncode == 1 and "compile_error: line 3: " in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
    for args, message in (
        (["--size", "big"], "--size"),
        (["--mouse", "1,2"], "--mouse"),
        (["--dialect", "hlsl"], "unknown dialect"),
    ):
        done = _harvest("render", "--file", str(broken), "--out", str(out), *args)
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    done = _harvest("render", "--out", str(out))
    assert done.returncode == 1 and "either a program ID or --file" in done.stderr


def test_validate_and_render_commands_on_a_catalog(tmp_path):
    from corpus.db import open_catalog

    catalog = open_catalog(tmp_path / "harvest.db")
    good = _add(catalog, "good", GOOD.format(k=5))
    _add(catalog, "bad", "void mainImage(out vec4 c, in vec2 f) { c = vec4(x); }")
    catalog.close()
    db = str(tmp_path / "harvest.db")
    done = _harvest("validate", "--db", db, "--workers", "1", "--size", "32", "--frames", "2", "--timeout", "20")
    assert done.returncode == 0, done.stderr
    assert "compile_error" in done.stdout and "ok" in done.stdout
    assert (tmp_path / ".harvest-cache" / "mesa").is_dir()
    done = _harvest("validate", "--db", db)
    assert done.returncode == 0 and "nothing to validate" in done.stdout
    out = tmp_path / "good.png"
    done = _harvest("render", str(good), "--db", db, "--size", "48x48", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (48, 48)
    done = _harvest("validate", "--db", db, "--size", "2")
    assert done.returncode == 1 and "--size" in done.stderr


def _start_validation_behind_slow_programs(tmp_path, workers: int):
    """A validate run whose 3 fast programs finish at once and whose slow ones hold every worker for minutes."""
    from corpus.db import open_catalog

    catalog = open_catalog(tmp_path / "harvest.db")
    for k in range(3):
        _add(catalog, f"fast{k}", GOOD.format(k=k))
    for k in range(4):
        _add(catalog, f"slow{k}", SLOW.replace("harvest contributors", f"harvest contributors {k}"))
    db = str(tmp_path / "harvest.db")
    process = subprocess.Popen(
        [sys.executable, "-m", "harvester.cli", "validate", "--db", db, "--workers", str(workers), "--size", "32",
         "--timeout", "600"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return catalog, process


def _saved_verdicts(catalog) -> int:
    with catalog.session() as session:
        return len(session.exec(select(Validation)).all())


def test_finished_verdicts_are_saved_while_slow_programs_run_and_survive_kill_9(tmp_path):
    catalog, process = _start_validation_behind_slow_programs(tmp_path, workers=1)
    try:
        # The next result is minutes away: the verdicts must be saved on time, not when it comes.
        _wait_for(lambda: _saved_verdicts(catalog) == 3, what="3 saved verdicts")
        workers = children(process.pid)
        process.kill()
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert _saved_verdicts(catalog) == 3
    _wait_for(lambda: not any(alive(pid) for pid in workers), what="exit of the orphaned workers")
    catalog.close()


def test_ctrl_c_stops_cleanly_keeping_finished_results(tmp_path):
    catalog, process = _start_validation_behind_slow_programs(tmp_path, workers=2)
    try:
        _wait_for(lambda: _saved_verdicts(catalog) == 3 and len(children(process.pid)) >= 2,
                  what="3 saved verdicts with both workers busy")
        workers = children(process.pid)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _wait_for(lambda: not any(alive(pid) for pid in workers), what="exit of the workers")
    assert _saved_verdicts(catalog) == 3
    catalog.close()


def test_dedup_after_validation_compiles_nothing_and_marks_what_its_own_frames_would(catalog, pool):
    from sqlmodel import delete

    from corpus.dedup import dedup_catalog
    from corpus.models import ImageSignatureRow, Program
    from renderer.executor_spec import ExecutorSpec

    for k in range(3):
        _add(catalog, f"twin{k}", GOOD.format(k=1) + f"\n// twin {k}\nfloat unused{k}() {{ return {k}.0; }}\n")
    _add(catalog, "other", "void mainImage(out vec4 c, in vec2 f) { c = vec4(fract(f.x / 7.0), 0.3, 0.9, 1.0); }")
    validate(catalog, pool, ValidateOptions(timeout_s=120))
    first = dedup_catalog(catalog, executor=ExecutorSpec(workers=1))
    assert first.image_rendered == 0 and first.image_programs == 4

    def marks() -> dict[str, tuple[int | None, str | None]]:
        with catalog.session() as session:
            return {p.source_id: (p.near_duplicate_of, p.near_duplicate_kind) for p in session.exec(select(Program))}

    from_validation = marks()
    with catalog.session() as session:
        session.exec(delete(ImageSignatureRow))
    second = dedup_catalog(catalog, executor=ExecutorSpec(workers=1))
    assert second.image_rendered == 4 and second.image_pairs == first.image_pairs
    assert marks() == from_validation
