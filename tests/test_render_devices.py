"""`--render-device`: EGL's device list, choosing devices, a missing one, and the renderer line of validate."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import select

from corpus.db import open_catalog
from corpus.ingest import ingest_program
from corpus.models import Validation
from corpus.records import FetchedPass, FetchedProgram
from renderer.devices import EglDevice, describe_render_devices, egl_devices, resolve_render_devices
from renderer.errors import RenderError
from renderer.executors import LocalExecutor, WorkerSettings
from tests.cli import harvest

GRADIENT = "void mainImage(out vec4 c, in vec2 f) {{ c = vec4(f / iResolution.xy, 0.{k}, 1.0); }}"
BROKEN = "void mainImage(out vec4 c, in vec2 f) { c = vec4(undeclared); }"
VALIDATE = ("--workers", "1", "--size", "16", "--frames", "1", "--timeout", "60", "--no-score")


def _catalog_with_programs(path) -> str:
    catalog = open_catalog(path)
    programs = {"gradient1": GRADIENT.format(k=1), "gradient2": GRADIENT.format(k=2), "broken": BROKEN}
    with catalog.session() as session:
        for source_id, code in programs.items():
            ingest_program(session, FetchedProgram(
                source="test", source_id=source_id, url="", title=source_id, author="harvest contributors",
                passes=[FetchedPass("image", code, [])], license="CC0-1.0"))
    catalog.close()
    return str(path)


def _verdicts(db: str) -> dict[int, str]:
    catalog = open_catalog(db)
    try:
        with catalog.session() as session:
            return {row.program_id: row.verdict for row in session.exec(select(Validation)).all()}
    finally:
        catalog.close()


def test_egl_lists_llvmpipe_as_a_software_device():
    devices = egl_devices()
    assert [device.index for device in devices] == list(range(len(devices)))
    assert any(device.software for device in devices)
    software = next(device for device in devices if device.software)
    [line] = describe_render_devices((software.index,))
    assert line.endswith(f"[device {software.index}]")
    assert "llvmpipe" in line or "softpipe" in line


def test_render_device_choices_resolve_to_indices():
    gpu, cpu = EglDevice(0, False, ()), EglDevice(1, True, ("EGL_MESA_device_software",))
    assert resolve_render_devices("auto", [gpu, cpu]) == ()
    assert resolve_render_devices("cpu", [gpu, cpu]) == (1,)
    assert resolve_render_devices("1,0,1", [gpu, cpu]) == (1, 0)
    with pytest.raises(RenderError, match="render device 2 does not exist"):
        resolve_render_devices("0,2", [gpu, cpu])
    with pytest.raises(RenderError, match="no software"):
        resolve_render_devices("cpu", [gpu])
    for bad in ("", "-1", "gpu", "0,,1"):
        with pytest.raises(RenderError, match="--render-device must be"):
            resolve_render_devices(bad, [gpu, cpu])


@dataclass
class _StartedWorker:
    settings: WorkerSettings


def test_workers_take_turns_over_the_devices_and_a_respawn_keeps_the_spread():
    executor = LocalExecutor(workers=4, device_indices=(1, 0))
    for _ in range(4):  # what _fill_pool does, without starting processes
        executor._pool.append(_StartedWorker(executor._next_worker_settings()))
    assert [worker.settings.device_index for worker in executor._pool] == [1, 0, 1, 0]
    executor._pool.pop(1)  # a worker on device 0 died: its replacement goes back there
    assert executor._next_worker_settings().device_index == 0
    executor._pool.clear()
    assert LocalExecutor(workers=2)._next_worker_settings().device_index is None


def test_a_device_that_does_not_exist_is_one_error_line(tmp_path):
    db = _catalog_with_programs(tmp_path / "harvest.db")
    missing = str(len(egl_devices()))
    for command in (("validate", "--db", db), ("score", "--db", db), ("dedup", "--db", db),
                    ("export", "--db", db, "--out", str(tmp_path / "export"))):
        done = harvest(*command, "--render-device", missing)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"error: render device {missing} does not exist: EGL reports {missing} device(s), numbered from 0"]
        assert "Traceback" not in done.stderr
    assert _verdicts(db) == {}
    program = tmp_path / "gradient.frag"
    program.write_text(GRADIENT.format(k=3))
    done = harvest("render", "--file", str(program), "--out", str(tmp_path / "g.png"), "--render-device", "cpu,x")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "error: --render-device must be auto, cpu, N or N,M,..., not 'cpu,x'"]
    assert not (tmp_path / "g.png").exists()


def test_render_device_0_validates_like_the_default_and_names_the_renderer(tmp_path):
    default_db = _catalog_with_programs(tmp_path / "default.db")
    chosen_db = _catalog_with_programs(tmp_path / "chosen.db")
    default = harvest("validate", "--db", default_db, *VALIDATE)
    chosen = harvest("validate", "--db", chosen_db, *VALIDATE, "--render-device", "0")
    assert default.returncode == 0 and chosen.returncode == 0, (default.stderr, chosen.stderr)
    assert _verdicts(chosen_db) == _verdicts(default_db)
    assert sorted(_verdicts(chosen_db).values()) == ["compile_error", "ok", "ok"]
    renderer = describe_render_devices((0,))[0]
    assert f"rendering on: {renderer}" in chosen.stderr.splitlines()
    assert chosen.stderr.count("rendering on:") == 1
    assert f"rendering on: {renderer.split(' [')[0]} [default EGL device]" in default.stderr.splitlines()
    assert "rendering on:" not in chosen.stdout


def test_render_draws_on_the_software_device(tmp_path):
    program = tmp_path / "gradient.frag"
    program.write_text(GRADIENT.format(k=4))
    out = tmp_path / "cpu.png"
    done = harvest("render", "--file", str(program), "--size", "16x16", "--out", str(out), "--render-device", "cpu")
    assert done.returncode == 0, done.stderr
    assert out.is_file()
