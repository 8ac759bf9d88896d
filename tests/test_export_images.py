"""Export's image pass as a stage of the runner: shards in export order whatever order results come in, no more
than one shard plus the programs in flight held at once, and nothing half-written left by Ctrl-C."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from corpus.export import ExportOptions, export_catalog
from corpus.export_format import MANIFEST_NAME, SHARDS_DIR, SampleMetadata
from corpus.export_images import KEPT, ExportFrames, ExportImagesStage
from corpus.export_shards import DatasetWriter
from corpus.models import Score
from corpus.scoring import METHOD as SCORE_METHOD
from corpus.stage_runner import BatchPolicy, CatalogProgram, run_stage
from renderer.executor_spec import ExecutorSpec
from renderer.jobs import ProgramSource, RenderResult, Verdict
from tests.slow_programs import ENDLESS_FRAME
from tests.test_export_programs import (
    ANIMATED,
    COLOURFUL_STATIC,
    GREY_STRIPES,
    STATIC_GRADIENT,
    add_program,
)

REPO = Path(__file__).resolve().parent.parent
FAST = (ANIMATED, COLOURFUL_STATIC, GREY_STRIPES, STATIC_GRADIENT)
DEADLINE_S = 300.0


def _sample(program_id: int, source: ProgramSource) -> SampleMetadata:
    return SampleMetadata(key=f"p-{program_id:04d}", id=program_id, source="local", source_id=str(program_id),
                          url=None, title=f"program {program_id}", author="tester", license="MIT",
                          license_origin="declared", dialect=source.dialect, channels=[None] * 4, buffer_passes=0,
                          verdict="ok", reason="", diversity=None, colorfulness=None, fill=None, likes=None,
                          published_at=None)


def _frame(program_id: int, index: int) -> np.ndarray:
    return np.full((8, 8, 3), (program_id * 37 + index * 11) % 256, dtype=np.uint8)


def _result(program_id: int) -> RenderResult:
    """Every fifth program fails to draw; the others return two frames of their own grey."""
    if program_id % 5 == 0:
        return RenderResult(key=program_id, verdict=Verdict.TIMEOUT, reason="no result")
    return RenderResult(key=program_id, verdict=Verdict.OK, frames=[_frame(program_id, 0), _frame(program_id, 1)])


def _drive(folder: Path, ids: list[int], shard_size: int, lookahead: int, pick) -> ExportImagesStage:
    """Run the stage as an executor with `lookahead` slots would: start jobs while the stage lets them, finish
    the one `pick` chooses among those in flight, save after each result as the export does."""
    (folder / SHARDS_DIR).mkdir(parents=True)
    with open(folder / MANIFEST_NAME, "w", encoding="utf-8") as manifest:
        writer = DatasetWriter(folder, True, manifest)
        stage = ExportImagesStage(ids, _sample, writer.write, shard_size, ExportFrames(2, 8, 0), lookahead)
        waiting, running = list(ids), []
        while waiting or running:
            while waiting and len(running) < lookahead and stage.may_start():
                program_id = waiting.pop(0)
                running.append(stage.job(CatalogProgram(program_id, "local", str(program_id),
                                                        ProgramSource("raw", f"// {program_id}"))).key)
            stage.consume(_result(running.pop(pick(running))))
            stage.save()
        stage.finish()
    return stage


def _exports(folder: Path) -> list[str]:
    """The export and whatever exports left beside it (staging, retired folders)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(("data", ".data")))


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_results_in_any_order_give_the_shards_of_the_in_order_run(tmp_path):
    ids = list(range(1, 40))
    in_order = _drive(tmp_path / "in-order", ids, shard_size=4, lookahead=1, pick=lambda running: 0)
    assert in_order.order.peak == 4
    for seed in range(3):
        chance = random.Random(seed)
        # The newest job finishes first most of the time: results come back far out of order.
        scrambled = _drive(tmp_path / f"scrambled-{seed}", ids, shard_size=4, lookahead=6,
                           pick=lambda running, chance=chance: len(running) - 1 if chance.random() < 0.8 else 0)
        assert _contents(tmp_path / f"scrambled-{seed}") == _contents(tmp_path / "in-order")
        # Never more images held than one shard and the programs in flight.
        assert scrambled.order.peak <= 4 + 6
    manifest = (tmp_path / "in-order" / MANIFEST_NAME).read_text().splitlines()
    kept = [json.loads(line)["id"] for line in manifest]
    assert kept == [i for i in ids if i % 5] and [json.loads(line)["shard"] for line in manifest][:5] == \
        ["shard-000000.tar"] * 4 + ["shard-000001.tar"]


def test_a_slow_program_at_the_head_holds_back_new_jobs_and_no_shard_skips_ahead(tmp_path):
    """The first program never finishes a frame: while the other worker runs ahead, the stage keeps at most one
    shard plus the programs in flight, and stops handing out jobs rather than hold more."""
    catalog_path = tmp_path / "harvest.db"
    from corpus.db import open_catalog

    catalog = open_catalog(catalog_path)
    ids = [add_program(catalog, "endless", ENDLESS_FRAME)]
    ids += [add_program(catalog, f"fast-{i}", FAST[i % 4] + f"\n// {i}") for i in range(9)]
    folder = tmp_path / "out"
    (folder / SHARDS_DIR).mkdir(parents=True)
    # With a media folder, as `--media-dir` gives: the executor that stamps it on jobs lets held-back ones through.
    spec = ExecutorSpec(workers=2, media_dir=str(tmp_path))
    with spec.build() as pool, open(folder / MANIFEST_NAME, "w", encoding="utf-8") as manifest:
        writer = DatasetWriter(folder, True, manifest)
        # 96 px: ENDLESS_FRAME takes minutes there; at 16 px a quiet machine can finish it within the timeout.
        stage = ExportImagesStage(ids, _sample, writer.write, 2, ExportFrames(1, 96, 0, timeout_s=3.0),
                                  lookahead=pool.workers)
        report = run_stage(catalog, pool, stage, BatchPolicy(results=1), program_ids=ids)
        stage.finish()
    catalog.close()
    assert report.counts["timeout"] >= 1 and report.done == len(ids), (dict(report.counts), report.done, report.selected)
    assert stage.order.peak <= 2 + 2
    manifest_ids = [json.loads(line)["id"] for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    assert ids[0] not in manifest_ids and manifest_ids == sorted(manifest_ids)
    assert len(manifest_ids) == report.counts[KEPT]
    shards = sorted((folder / SHARDS_DIR).iterdir())
    keys = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            keys.append([name.split(".")[0] for name in tar.getnames() if name.endswith(".frag")])
    assert [key for shard in keys for key in shard] == [f"p-{i:04d}" for i in manifest_ids]
    assert all(len(shard) == 2 for shard in keys[:-1]) and 1 <= len(keys[-1]) <= 2


def test_a_program_deleted_after_the_selection_is_left_out_and_its_place_filled(tmp_path):
    folder = tmp_path / "out"
    (folder / SHARDS_DIR).mkdir(parents=True)
    with open(folder / MANIFEST_NAME, "w", encoding="utf-8") as manifest:
        writer = DatasetWriter(folder, True, manifest)
        stage = ExportImagesStage([1, 2, 3, 4], _sample, writer.write, 2, None)
        for program_id in (1, 3):  # 2 and 4 were deleted: the runner never makes a job of them
            job = stage.job(CatalogProgram(program_id, "local", str(program_id), ProgramSource("raw", "// x")))
            assert job.frames == ()
            stage.consume(RenderResult(key=program_id, verdict=Verdict.OK))
            stage.save()
        stage.finish()
    assert [sample.id for sample in writer.samples] == [1, 3] and writer.shards == 1


@pytest.fixture()
def exportable(catalog):
    """Programs with a verdict and a current score, so that an export draws them and nothing else."""
    ids = [add_program(catalog, f"fast-{i}", FAST[i % 4] + f"\n// {i}") for i in range(4)]
    ids += [add_program(catalog, f"endless-{i}", ENDLESS_FRAME + f"\n// {i}") for i in range(3)]
    with catalog.session() as session:
        for program_id in ids:
            session.add(Score(program_id=program_id, diversity=0.5, colorfulness=10.0, fill=0.5, frames_used=8,
                              method=SCORE_METHOD))
    return catalog


def test_ctrl_c_after_a_shard_was_written_leaves_the_previous_export_alone(exportable, tmp_path):
    out = tmp_path / "data"
    export_catalog(exportable, ExportOptions(out=out, keep_duplicates=True))
    before = _contents(out)
    seen_shards: list[str] = []

    def interrupt_once_a_shard_is_written(event) -> None:
        shards = [p.name for p in tmp_path.glob(f".data.partial-*/{SHARDS_DIR}/*.tar")]
        if event.kind == "saved" and shards:
            seen_shards.extend(shards)
            raise KeyboardInterrupt

    options = ExportOptions(out=out, overwrite=True, keep_duplicates=True, images_per_program=1, image_size=16,
                            shard_size=1, executor=ExecutorSpec(workers=1))
    with pytest.raises(KeyboardInterrupt):
        export_catalog(exportable, options, on_event=interrupt_once_a_shard_is_written)
    assert seen_shards  # it was stopped half-way through writing
    assert _contents(out) == before and _exports(tmp_path) == ["data"]


def test_cli_export_stopped_with_ctrl_c_exits_130_and_writes_nothing(exportable, tmp_path):
    out = tmp_path / "data"
    command = [sys.executable, "-m", "harvester.cli", "export", "--db", str(exportable.path), "--out", str(out),
               "--keep-duplicates", "--images-per-program", "1", "--size", "16", "--shard-size", "1",
               "--workers", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        # The fast programs come first; once one's shard is on disk the worker is busy with an endless one.
        while (time.monotonic() < deadline and process.poll() is None
               and not list(tmp_path.glob(f".data.partial-*/{SHARDS_DIR}/*.tar"))):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: nothing of this export was written" in stderr and "Traceback" not in stderr
    assert _exports(tmp_path) == []
