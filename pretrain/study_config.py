"""What a scaling study is: its options, resolved for the machine, and the data it was made on.

Two invocations belong to the same study folder exactly when their `StudyConfig`s are equal, so every option that
changes a result is a field here, and the export and probe set are fingerprinted by content, not by path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from pretrain.errors import PretrainError
from pretrain.probe import ProbeData
from pretrain.train import METHODS

DEFAULT_METHODS = ("supervised", "simclr", "supcon")  # the seed's scaling figure: cross-entropy, SimCLR, SupCon
LADDER_FACTOR = 4


@dataclass(frozen=True)
class StudyBudget:
    """The per-run budget and network, sized for the machine the study runs on."""

    steps: int
    batch_size: int
    size: int
    width: int
    seeds: int
    workers: int


def machine_budget(device_type: str, cores: int) -> StudyBudget:
    """On 2 CPU cores the default study over the shared samples' export takes about an hour; on a GPU every run
    sees 8x the images (batch 256, 2,000 steps) at 64 px with the standard width, over 3 seeds."""
    if device_type == "cuda":
        return StudyBudget(steps=2000, batch_size=256, size=64, width=64, seeds=3, workers=max(1, min(cores - 2, 16)))
    return StudyBudget(steps=250, batch_size=64, size=32, width=32, seeds=1, workers=max(1, min(cores - 1, 8)))


def log_ladder(total: int) -> tuple[int, ...]:
    """1, 4, 16, 64, ... below `total`, then `total` itself."""
    ladder, count = [], 1
    while count < total:
        ladder.append(count)
        count *= LADDER_FACTOR
    return (*ladder, total)


def parse_counts(text: str) -> tuple[int, ...]:
    """`--programs 1,4,16`: sorted, without repeats; anything else is one clear error."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    if not words:
        raise PretrainError("--programs is empty: give program counts such as 1,4,16")
    try:
        counts = sorted({int(word) for word in words})
    except ValueError:
        raise PretrainError(f"--programs must be whole numbers separated by commas, not {text!r}") from None
    if counts[0] < 1:
        raise PretrainError("--programs counts must be at least 1")
    return tuple(counts)


def parse_methods(text: str) -> tuple[str, ...]:
    methods = tuple(dict.fromkeys(word.strip() for word in text.split(",") if word.strip()))
    if not methods:
        raise PretrainError(f"--methods is empty: choose from {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise PretrainError(f"unknown method {unknown[0]!r} (choose from {', '.join(METHODS)})")
    return methods


def fingerprint_programs(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:16]


def fingerprint_probe(data: ProbeData) -> str:
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        digest.update(str(array.shape).encode("ascii"))
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class StudyConfig:
    programs: tuple[int, ...]  # the ladder of program counts
    seeds: int  # seeds 0 .. seeds-1
    methods: tuple[str, ...]
    steps: int  # per run: steps x batch_size images, whatever the program count
    batch_size: int
    size: int
    width: int
    workers: int  # render workers (the images drawn depend on how the work is split)
    mixup: int
    arch: str
    device: str  # cpu or cuda: MoCo's queue and momentum follow the machine
    export_programs: int
    export_fingerprint: str
    probe_fingerprint: str
    # The peak learning rate of every run; None: each method's default rate scaled to the batch. A study folder
    # written before the option existed holds no `lr` and reads as None, which is what it ran with.
    lr: float | None = None

    @property
    def images_per_run(self) -> int:
        return self.steps * self.batch_size

    def validate(self) -> None:
        if not self.programs:
            raise PretrainError("the ladder of program counts is empty")
        if self.programs[-1] > self.export_programs:
            raise PretrainError(f"--programs asks for {self.programs[-1]} programs but the export has only "
                                f"{self.export_programs} drawable ones")
        for name in ("seeds", "steps", "batch_size", "mixup"):
            if getattr(self, name) < 1:
                raise PretrainError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr is not None and not self.lr > 0:
            raise PretrainError("--lr must be above 0")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> StudyConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("programs", "methods"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        try:
            return cls(**values)
        except TypeError:
            raise PretrainError("the study folder's study.json is not from this version of harvest") from None

    def differences(self, other: StudyConfig) -> list[str]:
        """The fields where `other` differs from this (stored) configuration, as `name: stored there, other now`."""
        return [f"{f.name}: {getattr(self, f.name)} there, {getattr(other, f.name)} now" for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)]
