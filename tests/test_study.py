"""`harvest study`: a tiny real study (live renders, real probes) on an export and an NPZ made here, its records,
table and plot, resuming after a stop or a lost record, and the one-line errors of bad input."""

from __future__ import annotations

import importlib.util
import itertools
import json
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from corpus.export_format import read_export  # noqa: E402
from harvester.cli import USER_ERRORS, app  # noqa: E402
from pretrain import study_report  # noqa: E402
from pretrain.data import LiveDataConfig, ProgramPool  # noqa: E402
from pretrain.distributed import DistEnv  # noqa: E402
from pretrain.errors import PretrainError  # noqa: E402
from pretrain.probe import load_probe_data  # noqa: E402
from pretrain.stopping import StopRequest  # noqa: E402
from pretrain.study import StudyData, nested_subset, plan, pretrain_config, run_study  # noqa: E402
from pretrain.study_config import (  # noqa: E402
    StudyConfig,
    fingerprint_probe,
    fingerprint_programs,
    log_ladder,
    parse_counts,
)
from pretrain.study_records import RunKey, StudyFolder  # noqa: E402
from pretrain.train import PretrainConfig  # noqa: E402
from tests.cli import harvest  # noqa: E402
from tests.test_pretrain import _one_torch_thread, write_tiny_export  # noqa: E402, F401 (an autouse fixture)

SIZE = 16
TINY = ("--programs", "1,2", "--seeds", "1", "--methods", "supervised,simclr", "--steps", "3", "--batch-size",
        "8", "--size", str(SIZE), "--width", "8", "--workers", "0", "--device", "cpu")
SINGLE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny tensors gain nothing from threads that spin on a busy machine


def _colour_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, reddish and bluish squares under noise: any backbone separates them somewhat."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    base = np.where(labels[:, None] == 0, [[200, 60, 50]], [[40, 70, 210]])[:, None, None, :]
    images = base + rng.normal(0, 30, (count, SIZE, SIZE, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_tiny_export(root / "export", count=4)
    x_train, y_train = _colour_images(40, 0)
    x_test, y_test = _colour_images(20, 1)
    np.savez(root / "probe.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return root


@pytest.fixture(scope="module")
def finished(workspace) -> tuple[Path, object]:
    """The tiny study, run once through the real command line."""
    result = harvest("study", "--data", str(workspace / "export"), "--probe-data", str(workspace / "probe.npz"),
                     *TINY, "--out", str(workspace / "study"), env=SINGLE_THREAD)
    return workspace / "study", result


def test_study_writes_records_table_and_plot(finished):
    folder, result = finished
    assert result.returncode == 0, result.stderr
    summary = json.loads((folder / "study.json").read_text())
    assert summary["config"]["programs"] == [1, 2] and summary["config"]["methods"] == ["supervised", "simclr"]
    names = sorted((r["key"]["method"], r["key"]["programs"]) for r in summary["runs"])
    assert names == [("random", 0), ("simclr", 1), ("simclr", 2), ("supervised", 1), ("supervised", 2)]
    for run in summary["runs"]:
        assert 0.0 <= run["best_accuracy"] <= 1.0 and run["best_stage"] in (1, 2, 3, 4)
        assert len(run["probe"]["stages"]) == 4 and run["probe"]["stages"][0]["knn"]["k"] == 20
        if run["key"]["method"] != "random":
            assert run["steps"] == 3 and run["images"] == 24 and len(run["program_keys"]) == run["key"]["programs"]
            # the run's mean rate, start-up included (train_s is rounded to 0.1 s)
            assert 24 / (run["train_s"] + 0.05) <= run["images_per_s"] <= 24 / max(0.01, run["train_s"] - 0.05)
    one, two = (next(r for r in summary["runs"] if r["key"] == {"seed": 0, "programs": n, "method": "supervised"})
                for n in (1, 2))
    assert set(one["program_keys"]) < set(two["program_keys"])  # nested subsets
    table = (folder / "study.md").read_text()
    assert "| programs | supervised | simclr |" in table and "| random init |" in table
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][:4] == \
        ["programs", "1", "2", "random init"]
    assert len(list((folder / "runs").glob("*.json"))) == 5
    assert not any((folder / "work").glob("*"))  # finished runs leave no checkpoints behind
    assert result.stdout.count("\nrun ") + result.stdout.startswith("run ") == 5
    if importlib.util.find_spec("matplotlib") is not None:
        assert (folder / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_prints_the_table_and_trains_nothing(finished, workspace):
    folder, first = finished
    assert first.returncode == 0, first.stderr
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    result = harvest("study", "--data", str(workspace / "export"), "--probe-data", str(workspace / "probe.npz"),
                     *TINY, "--out", str(folder), env=SINGLE_THREAD)
    assert result.returncode == 0, result.stderr
    assert "| random init |" in result.stdout and "every run was already done" in result.stdout
    assert "run 1/5" not in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == stamps


def test_other_options_in_the_same_folder_are_one_error(finished, workspace):
    folder, first = finished
    assert first.returncode == 0, first.stderr
    options = [*TINY]
    options[options.index("--steps") + 1] = "4"
    result = harvest("study", "--data", str(workspace / "export"), "--probe-data", str(workspace / "probe.npz"),
                     *options, "--out", str(folder), env=SINGLE_THREAD)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "other options" in result.stderr and "(steps: 3 there, 4 now)" in result.stderr
    result = harvest("study", "--data", str(workspace / "export"), "--probe-data", str(workspace / "probe.npz"),
                     *TINY, "--lr", "0.01", "--out", str(folder), env=SINGLE_THREAD)
    assert result.returncode == 1 and "(lr: None there, 0.01 now)" in result.stderr


def _bad_probe(path: Path) -> Path:
    images, labels = _colour_images(10, 2)
    np.savez(path, x_train=images[..., :2], y_train=labels, x_test=images[..., :2], y_test=labels)
    return path


def _missing_arrays(path: Path) -> Path:
    images, labels = _colour_images(10, 2)
    np.savez(path, x_train=images, y_train=labels)
    return path


def _options(workspace: Path, out: Path, **changes: str) -> list[str]:
    options = {"--data": str(workspace / "export"), "--probe-data": str(workspace / "probe.npz"),
               **dict(zip(TINY[::2], TINY[1::2])), "--out": str(out), **changes}
    return [word for pair in options.items() for word in pair]


def test_too_many_programs_is_one_line_and_exit_1(workspace, tmp_path):
    result = harvest("study", *_options(workspace, tmp_path / "study", **{"--programs": "1,5"}), env=SINGLE_THREAD)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, result.stderr
    assert "asks for 5 programs but the export has only 4" in result.stderr
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--programs", " , ", "--programs is empty"),
    ("--methods", "supervised,byol", "unknown method 'byol'"),
    ("--probe-data", _bad_probe, "(N, H, W, 3)"),
    ("--probe-data", _missing_arrays, "lacks x_test, y_test"),
    ("--lr", "0", "--lr must be above 0"),
])
def test_bad_input_is_a_user_error(workspace, tmp_path, option, value, expected):
    """In process (the CLI prints each of these errors as the one line above); nothing is written."""
    given = str(value(tmp_path / "probe.npz")) if callable(value) else value
    result = CliRunner().invoke(app, ["study", *_options(workspace, tmp_path / "study", **{option: given})])
    assert result.exit_code == 1 and isinstance(result.exception, USER_ERRORS)
    assert expected in str(result.exception)
    assert not (tmp_path / "study").exists()


def _study_inputs(workspace: Path, **changes) -> tuple[StudyConfig, StudyData]:
    programs = read_export(workspace / "export")
    probe = load_probe_data(workspace / "probe.npz", SIZE)
    config = StudyConfig(
        programs=(1, 2), seeds=1, methods=("supervised",), steps=4, batch_size=8, size=SIZE, width=8, workers=0,
        mixup=1, arch="resnet18", device="cpu", export_programs=len(programs),
        export_fingerprint=fingerprint_programs([p.key for p in programs]), probe_fingerprint=fingerprint_probe(probe),
    )
    return replace(config, **changes), StudyData(programs, probe, "tiny export", "probe.npz")


CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def test_stopped_study_continues_with_only_the_missing_runs(workspace, tmp_path, monkeypatch):
    monkeypatch.setattr("pretrain.study.plot_available", lambda: False)  # as without matplotlib
    config, data = _study_inputs(workspace)
    folder = StudyFolder(tmp_path / "study")
    stop = StopRequest()

    def stop_after_first_pretrained(event) -> None:
        if event.record.key.method != "random":
            stop.record(signal.SIGINT)

    first = run_study(config, folder, data, CPU, stop=stop, on_run=stop_after_first_pretrained)
    assert first.stopped_by == signal.SIGINT
    assert first.ran == [RunKey(0, 0, "random"), RunKey(0, 1, "supervised")]
    assert (folder.root / "study.json").is_file() and (folder.root / "study.md").is_file()
    assert study_report.PLOT_MISSING in first.notes and not (folder.root / "study.png").exists()
    assert "| 2 | – |" in first.table

    second = run_study(config, folder, data, CPU)
    assert second.ran == [RunKey(0, 2, "supervised")] and not second.stopped_by
    assert [r.key for r in second.records] == plan(config)

    (folder.root / "runs" / f"{RunKey(0, 1, 'supervised').name}.json").unlink()  # a lost record
    third = run_study(config, folder, data, CPU)
    assert third.ran == [RunKey(0, 1, "supervised")]


def test_a_run_stopped_mid_training_continues_from_its_checkpoint(workspace, tmp_path):
    config, data = _study_inputs(workspace, programs=(2,))
    folder = StudyFolder(tmp_path / "study")
    stop = StopRequest()

    def stop_at_step_two(metrics) -> None:
        if metrics.step == 2:
            stop.record(signal.SIGTERM)

    first = run_study(config, folder, data, CPU, stop=stop, on_step=stop_at_step_two)
    assert first.stopped_by == signal.SIGTERM and first.ran == [RunKey(0, 0, "random")]
    assert (folder.run_dir(RunKey(0, 2, "supervised")) / "checkpoint.pt").is_file()
    second = run_study(config, folder, data, CPU)
    (record,) = [r for r in second.records if r.key.method == "supervised"]
    assert second.ran == [record.key] and record.resumed_from == 2 and record.steps == 4


def test_a_folder_that_is_not_a_study_is_refused(workspace, tmp_path):
    config, data = _study_inputs(workspace)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for taken in (tmp_path / "study", tmp_path / "file"):
        with pytest.raises(PretrainError, match="is not a study folder"):
            run_study(config, StudyFolder(taken), data, CPU)
    assert (tmp_path / "study" / "notes.txt").read_text() == "mine" and (tmp_path / "file").read_text() == "mine"


def test_ladder_and_nested_subsets(workspace):
    assert log_ladder(18) == (1, 4, 16, 18) and log_ladder(64) == (1, 4, 16, 64) and log_ladder(1) == (1,)
    assert parse_counts("16, 1,4,4") == (1, 4, 16)
    with pytest.raises(PretrainError, match="whole numbers"):
        parse_counts("1,many")
    programs = read_export(workspace / "export")
    for seed in (0, 1):
        subsets = [[p.key for p in nested_subset(programs, n, seed)] for n in (1, 2, 3, 4)]
        assert all(set(small) < set(large) for small, large in itertools.pairwise(subsets))
        assert subsets[-1] == [p.key for p in programs]


def _programs_visited(swap_every: int, programs: int, images: int, streams: int = 1) -> int:
    """Distinct programs a rank's render streams hold at some point of a run of `images` images per stream."""
    config = LiveDataConfig(pool_size=32, swap_every=swap_every)
    visited: set[int] = set()
    for stream in range(streams):
        pool = ProgramPool([None] * programs, config, stream_seed=(0, 0, stream), backend=None, streams=streams)
        visited |= {program for program, _ in pool.occupants_at(0)} | set(pool.entering(1, images - 1))
    return len(visited)


@pytest.mark.parametrize("count", [1, 32, 100, 1842, 20_000])
def test_every_program_of_a_count_enters_the_pool_within_the_budget(count):
    config = StudyConfig(
        programs=(count,), seeds=1, methods=("supervised",), steps=250, batch_size=64, size=32, width=32, workers=1,
        mixup=1, arch="resnet18", device="cpu", export_programs=count, export_fingerprint="x", probe_fingerprint="y",
    )
    swap_every = pretrain_config(config, RunKey(0, count, "supervised"), torch.device("cpu")).swap_every
    visited = _programs_visited(swap_every, count, config.images_per_run)
    assert visited == min(count, 32 + config.images_per_run - 1)  # a swap at every image after the first at most
    if count <= 32:
        assert swap_every == PretrainConfig().swap_every
    # The trainer's own interval would leave most of a large count out of a study's run.
    assert _programs_visited(PretrainConfig().swap_every, 1842, config.images_per_run) == 32 + (16_000 - 1) // 32


def test_the_study_lr_reaches_every_run_and_none_keeps_each_methods_default(workspace):
    config, _ = _study_inputs(workspace, methods=("supervised", "supcon"), lr=0.07)
    for method in config.methods:
        assert pretrain_config(config, RunKey(0, 1, method), torch.device("cpu")).lr == 0.07
    assert pretrain_config(replace(config, lr=None), RunKey(0, 1, "supcon"), torch.device("cpu")).lr is None


@pytest.mark.parametrize("count", [100, 2796, 20_000])
def test_the_streams_of_a_rank_share_out_the_programs(count):
    """With 3 render workers each stream visits a third of the count, not all of it, so it swaps 3x less often."""
    config = StudyConfig(
        programs=(count,), seeds=1, methods=("supervised",), steps=250, batch_size=64, size=32, width=32, workers=3,
        mixup=1, arch="resnet18", device="cpu", export_programs=count, export_fingerprint="x", probe_fingerprint="y",
    )
    swap_every = pretrain_config(config, RunKey(0, count, "supervised"), torch.device("cpu")).swap_every
    images_per_stream = (250 // 3) * 64
    visited = _programs_visited(swap_every, count, images_per_stream, streams=3)
    assert visited == min(count, 3 * (32 + images_per_stream - 1))
    if count > 32 + (images_per_stream - 1) // swap_every:  # more than one stream alone visits at this interval
        assert _programs_visited(swap_every, count, images_per_stream, streams=1) < count
