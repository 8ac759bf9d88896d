"""The Ray executor keeps the local pool's promises: same verdicts, timeouts, crashes, a run that goes on."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from corpus.normalize import sniff_dialect  # noqa: E402
from renderer.errors import RenderError  # noqa: E402
from renderer.executor_spec import make_executor  # noqa: E402
from renderer.executors import LocalExecutor  # noqa: E402
from renderer.frames import frame_specs  # noqa: E402
from renderer.jobs import ProgramSource, RenderJob, Verdict  # noqa: E402
from renderer.ray_executor import RayExecutor, import_ray  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "harvester" / "samples"
GOOD = "void mainImage(out vec4 c, in vec2 f) {{ vec2 uv = f / iResolution.xy; c = vec4(uv, 0.5 + 0.5 * sin(iTime + {k}.0), 1.0); }}"
SLOW = (SAMPLES / "slow_loop.frag").read_text()
SAMPLE_FILES = (
    "st_plasma.frag", "st_truchet.frag", "gs_waves.frag", "bos_shapes.frag", "raw_rings.frag",
    "bad_undeclared.frag", "bad_link.frag", "blank_solid.frag", "blank_nan.frag",
)


def _job(key: int, program: ProgramSource | str, timeout_s: float = 20.0, size: int = 32) -> RenderJob:
    if isinstance(program, str):
        program = ProgramSource("shadertoy", program)
    return RenderJob(key=key, program=program, frames=frame_specs(str(key), 2, size, size), width=size, height=size,
                     timeout_s=timeout_s)


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """True once `pid` has exited (or is a zombie) within `within_s` seconds."""
    stop_by = time.monotonic() + within_s
    while time.monotonic() < stop_by:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
        except (FileNotFoundError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module; executors built while it runs use it and leave it running."""
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    if started_here:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_pool(local_ray):
    with RayExecutor(workers=2) as executor:
        yield executor


def test_same_programs_get_identical_results_on_both_executors(ray_pool):
    programs = {}
    for key, name in enumerate(SAMPLE_FILES, start=1):
        code = (SAMPLES / name).read_text()
        programs[key] = ProgramSource(sniff_dialect(code), code)
    programs[20] = ProgramSource("shadertoy", GOOD.format(k=2), channels=("mic", None, None, None))
    programs[21] = ProgramSource("shadertoy", GOOD.format(k=3), buffer_passes=1)
    jobs = [_job(key, program) for key, program in programs.items()]

    with LocalExecutor(workers=2) as local:
        by_local = {r.key: r for r in local.run(jobs)}
    by_ray = {r.key: r for r in ray_pool.run(jobs)}

    assert sorted(by_ray) == sorted(by_local) == sorted(programs)
    verdicts = {key: by_ray[key].verdict for key in programs}
    assert {Verdict.OK, Verdict.COMPILE_ERROR, Verdict.LINK_ERROR, Verdict.BLANK, Verdict.NEEDS_INPUT,
            Verdict.UNSUPPORTED} <= set(verdicts.values())
    for key in programs:
        here, there = by_local[key], by_ray[key]
        assert (there.verdict, there.reason, there.error_line) == (here.verdict, here.reason, here.error_line), key
        assert there.frame_means == here.frame_means and there.thumbnail_png == here.thumbnail_png, key


def test_a_stuck_program_times_out_in_its_actor_and_the_run_goes_on(ray_pool):
    ray_pool.wait_ready()  # so the slow job's actor is known by its pid
    respawns, ray_pool_pids = ray_pool.respawns, ray_pool.worker_pids()
    results = {r.key: r for r in ray_pool.run([_job(2, SLOW, timeout_s=1.5), _job(3, GOOD.format(k=3)),
                                                 _job(4, GOOD.format(k=4))])}
    assert results[2].verdict == Verdict.TIMEOUT and "1.5 s" in results[2].reason
    assert results[3].verdict == results[4].verdict == Verdict.OK
    assert ray_pool.respawns == respawns + 1
    killed = [pid for pid in ray_pool_pids if pid not in ray_pool.worker_pids()]
    assert len(killed) == 1 and _gone(killed[0])


def test_a_dead_actor_is_a_crash_and_is_replaced(ray_pool):
    ray_pool.wait_ready()
    victims = ray_pool.worker_pids()
    assert len(victims) == 2

    def kill_busy_actors() -> None:
        stop_by = time.monotonic() + 120
        while len(ray_pool.busy_worker_pids()) < 2 and time.monotonic() < stop_by:
            time.sleep(0.1)  # until both actors have a slow job
        for pid in victims:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_busy_actors)
    killer.start()
    results = {r.key: r for r in ray_pool.run([_job(5, SLOW, timeout_s=60), _job(6, SLOW, timeout_s=60),
                                                 _job(7, GOOD.format(k=7))])}
    killer.join()
    assert results[5].verdict == results[6].verdict == Verdict.CRASH
    assert "process died" in results[5].reason and len(results[5].reason) <= 300
    assert results[7].verdict == Verdict.OK
    assert not set(victims) & set(ray_pool.worker_pids())


def test_leaving_a_run_early_kills_the_busy_actors_and_keeps_the_pool(ray_pool):
    ray_pool.wait_ready()
    before = ray_pool.worker_pids()
    run = ray_pool.run([_job(8, GOOD.format(k=8)), _job(9, SLOW, timeout_s=60), _job(10, SLOW, timeout_s=60)])
    first = next(run)
    run.close()  # what Ctrl-C or an error in the stage does to the generator
    assert first.key == 8 and first.verdict == Verdict.OK
    stopped = [pid for pid in before if pid not in ray_pool.worker_pids()]
    assert stopped and all(_gone(pid) for pid in stopped)
    assert [r.verdict for r in ray_pool.run([_job(11, GOOD.format(k=11))])] == [Verdict.OK]


def test_make_executor_builds_a_ray_executor_on_the_running_ray(local_ray):
    with make_executor("ray", workers=1) as executor:
        assert isinstance(executor, RayExecutor) and executor.workers == 1
    assert local_ray.is_initialized()  # not ours to shut down


def test_a_cluster_without_room_for_one_actor_is_a_clear_error(local_ray):
    with pytest.raises(RenderError, match="no room for an actor with 1 CPU and 1 GPU"):
        RayExecutor(workers=1, num_gpus_per_actor=1)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(RenderError, match=r"pip install 'harvest\[ray\]'"):
        import_ray()
    with pytest.raises(RenderError, match=r"pip install 'harvest\[ray\]'"):
        make_executor("ray", workers=1)
