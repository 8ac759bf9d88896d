"""The seed's scaling experiment: probe accuracy against the number of programs at a fixed image budget.

For every seed, random init is probed once (it is also where that seed's runs start: the trainer seeds its weights
the same way), then every (program count, method) pair is pretrained on a nested, seeded subset of the export and
its backbone probed. Finished runs are records in the study folder; a rerun does only the missing ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from corpus.export_format import ExportedProgram
from pretrain.checkpoints import backbone_from_checkpoint
from pretrain.distributed import DistEnv
from pretrain.models import BackboneSpec, ResNet, build_backbone
from pretrain.probe import ProbeData, ProbeReport, run_probe
from pretrain.stopping import StopRequest
from pretrain.study_config import StudyConfig
from pretrain.study_records import (
    RANDOM,
    STUDY_MD,
    STUDY_PNG,
    RunKey,
    RunRecord,
    StudyFolder,
    write_text_atomic,
)
from pretrain.study_report import (
    PLOT_MISSING,
    markdown,
    plot_available,
    write_markdown,
    write_plot,
)
from pretrain.train import (
    CHECKPOINT_NAME,
    PretrainConfig,
    StepMetrics,
    machine_defaults,
    run_pretraining,
)


@dataclass(frozen=True)
class StudyData:
    programs: list[ExportedProgram]  # the export's drawable programs, in export order
    probe: ProbeData
    export_name: str
    probe_name: str


@dataclass(frozen=True)
class RunEvent:
    """A run finished: the `done`-th of `total` (counting those finished by earlier invocations)."""

    record: RunRecord
    done: int
    total: int


@dataclass
class StudyOutcome:
    records: list[RunRecord]
    ran: list[RunKey] = field(default_factory=list)
    stopped_by: int = 0
    table: str = ""
    notes: list[str] = field(default_factory=list)


def plan(config: StudyConfig) -> list[RunKey]:
    """Seed by seed, so a stopped study has whole seeds first: random init, then every count and method."""
    keys = []
    for seed in range(config.seeds):
        keys.append(RunKey(seed, 0, RANDOM))
        keys += [RunKey(seed, count, method) for count in config.programs for method in config.methods]
    return keys


def nested_subset(programs: list[ExportedProgram], count: int, seed: int) -> list[ExportedProgram]:
    """The first `count` programs of a seeded permutation, in export order: a larger count holds every smaller."""
    order = np.random.default_rng([seed, 11]).permutation(len(programs))[:count]
    return [programs[i] for i in sorted(order.tolist())]


def swap_interval(programs: int, images_per_stream: int, pool_size: int, default: int, streams: int = 1) -> int:
    """How often a stream swaps a pool slot so that every one of `programs` enters a pool within the run.

    A stream holds `pool_size` programs and brings in one more per swap, so at the trainer's default interval a run
    of 16,000 images visits only 531 programs: every count above that would train on the same number of programs,
    and the top of the ladder would be flat by construction. A rank's streams share out one sequence of the
    programs (pretrain/data.py), so each needs to visit only its share. Swapping sooner costs a compile per swap
    (Mesa's shader cache makes the study's later runs over the same programs cheap)."""
    share = -(-programs // max(1, streams))
    if share <= pool_size:
        return default
    return max(1, min(default, (images_per_stream - 1) // (share - pool_size)))  # swaps come at images 1..n-1


def pretrain_config(config: StudyConfig, key: RunKey, device: torch.device) -> PretrainConfig:
    machine = machine_defaults(key.method, device)
    defaults = PretrainConfig()
    # The batch is per rank, so each rank's streams share steps x batch images whatever the number of ranks; batches
    # go to the streams in turn, so each stream draws at least steps // streams of them.
    streams = max(1, config.workers)
    swap_every = swap_interval(key.programs, (config.steps // streams) * config.batch_size, defaults.pool_size,
                               defaults.swap_every, streams)
    return PretrainConfig(
        method=key.method, arch=config.arch, width=config.width, size=config.size, batch_size=config.batch_size,
        steps=config.steps, workers=config.workers, mixup=config.mixup, lr=config.lr, seed=key.seed,
        swap_every=swap_every,
        checkpoint_every=max(1, config.steps // 5), log_every=max(1, min(5, config.steps // 10)),
        queue_size=machine["queue_size"], moco_momentum=machine["moco_momentum"],
    )


def _record(key: RunKey, report: ProbeReport, probe_s: float, **training: object) -> RunRecord:
    best = report.best
    return RunRecord(
        key=key, best_stage=best.stage, best_accuracy=best.test_accuracy,
        best_knn_accuracy=None if best.knn is None else best.knn.test_accuracy,
        last_accuracy=report.last.test_accuracy, probe=report.to_json(), probe_s=round(probe_s, 1), **training,
    )


class _Runner:
    """Runs one study's missing runs in order, writing each record as soon as it exists."""

    def __init__(self, config: StudyConfig, folder: StudyFolder, data: StudyData, env: DistEnv,
                 stop: StopRequest | None, on_step: Callable[[StepMetrics], None] | None) -> None:
        self.config, self.folder, self.data, self.env = config, folder, data, env
        self.stop, self.on_step = stop, on_step
        self.probe_threads = torch.get_num_threads()  # the trainer lowers it beside its render workers

    def _probe(self, key: RunKey, backbone: ResNet, label: str, **training: object) -> RunRecord:
        torch.set_num_threads(self.probe_threads)
        started = time.perf_counter()
        report = run_probe(backbone, self.data.probe, self.config.size, self.env.device, checkpoint=label,
                           data_name=self.data.probe_name)
        return _record(key, report, time.perf_counter() - started, **training)

    def random_init(self, key: RunKey) -> RunRecord:
        torch.manual_seed(key.seed)  # as the trainer seeds its network: the runs of this seed start from it
        backbone = build_backbone(BackboneSpec(self.config.arch, self.config.width))
        return self._probe(key, backbone, RANDOM)

    def pretrained(self, key: RunKey) -> RunRecord | None:
        """Train (continuing a killed run from its checkpoint) and probe; None when a stop signal came first."""
        programs = nested_subset(self.data.programs, key.programs, key.seed)
        run_dir = self.folder.run_dir(key)
        resume = (run_dir / CHECKPOINT_NAME).is_file()
        if not resume:
            self.folder.discard_run_dir(key)
        started = time.perf_counter()
        pretraining = pretrain_config(self.config, key, self.env.device)
        summary = run_pretraining(
            pretraining, run_dir, programs, self.env, resume=resume,
            origin=self.data.export_name, stop=self.stop, on_step=self.on_step,
        )
        if summary.stopped_by:
            return None
        train_s = time.perf_counter() - started
        # The mean over this invocation, start-up and compiles included: the trainer's own figure is its last
        # log interval's, which says little about a run whose pool swaps are compile-bound.
        trained = (summary.step - summary.start_step) * self.config.batch_size * self.env.world_size
        backbone, _ = backbone_from_checkpoint(summary.checkpoint)
        return self._probe(
            key, backbone, key.name, steps=summary.step, images=summary.step * self.config.batch_size,
            resumed_from=summary.start_step, final_loss=summary.final_loss,
            images_per_s=round(trained / train_s, 1) if train_s > 0 else None,
            train_s=round(train_s, 1), swap_every=pretraining.swap_every, program_keys=[p.key for p in programs],
        )

    def run(self, key: RunKey) -> RunRecord | None:
        record = self.random_init(key) if key.method == RANDOM else self.pretrained(key)
        if record is not None:
            self.folder.save_record(record)
            self.folder.discard_run_dir(key)  # the record holds what the study needs; checkpoints are large
        return record


def _stopped(stop: StopRequest | None) -> int:
    return stop.signum if stop is not None else 0


def run_study(
    config: StudyConfig, folder: StudyFolder, data: StudyData, env: DistEnv, *,
    stop: StopRequest | None = None, on_run: Callable[[RunEvent], None] | None = None,
    on_step: Callable[[StepMetrics], None] | None = None,
) -> StudyOutcome:
    """Every run of `config` that `folder` does not hold yet, then the table (and plot). Once `stop` holds a
    signal, the run in progress stops at a step boundary (its checkpoint kept) and the study returns."""
    config.validate()
    folder.open(config)
    done = folder.finished()
    keys = plan(config)
    outcome = StudyOutcome(records=[done[k] for k in keys if k in done])
    runner = _Runner(config, folder, data, env, stop, on_step)
    for key in (k for k in keys if k not in done):
        if _stopped(stop):
            break
        record = runner.run(key)
        if record is None:
            break
        outcome.records.append(record)
        outcome.ran.append(key)
        _write_summary(config, folder, data, outcome.records)
        if on_run is not None:
            on_run(RunEvent(record, len(outcome.records), len(keys)))
    outcome.stopped_by = _stopped(stop)
    outcome.records.sort(key=lambda r: r.key)
    outcome.table = markdown(config, outcome.records, data.probe_name)
    if not (folder.root / STUDY_MD).is_file():
        write_text_atomic(outcome.table, folder.root / STUDY_MD)
    if outcome.ran or not (folder.root / STUDY_PNG).is_file():
        outcome.notes += _plot(config, folder, data, outcome.records)
    return outcome


def _write_summary(config: StudyConfig, folder: StudyFolder, data: StudyData, records: list[RunRecord]) -> None:
    folder.write_summary(config, records, {"export": data.export_name, "probe": data.probe_name})
    write_markdown(folder.root / STUDY_MD, config, records, data.probe_name)


def _plot(config: StudyConfig, folder: StudyFolder, data: StudyData, records: list[RunRecord]) -> list[str]:
    if not records:
        return []
    if not plot_available():
        return [PLOT_MISSING]
    write_plot(folder.root / STUDY_PNG, config, records, data.probe_name)
    return []
