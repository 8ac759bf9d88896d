"""The study folder: its configuration, one record file per finished run, and the folders of runs in progress.

Each record is written to a temporary name and renamed, so a killed study keeps every finished run whole and
loses at most the one in progress (whose pretraining checkpoint lets even that one continue).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pretrain.errors import PretrainError
from pretrain.study_config import StudyConfig

STUDY_JSON = "study.json"
STUDY_MD = "study.md"
STUDY_PNG = "study.png"
RECORDS_DIR = "runs"
WORK_DIR = "work"
RANDOM = "random"  # the method name of the untrained baseline


@dataclass(frozen=True, order=True)
class RunKey:
    seed: int
    programs: int  # 0 for random init
    method: str

    @property
    def name(self) -> str:
        if self.method == RANDOM:
            return f"random-seed{self.seed}"
        return f"{self.method}-{self.programs:06d}-seed{self.seed}"

    @property
    def label(self) -> str:
        if self.method == RANDOM:
            return f"random init, seed {self.seed}"
        return f"{self.method}, {self.programs} program{'s' if self.programs != 1 else ''}, seed {self.seed}"


@dataclass(frozen=True)
class RunRecord:
    key: RunKey
    best_stage: int  # picked on held-out train images
    best_accuracy: float  # linear probe, test split, at the best stage
    best_knn_accuracy: float | None  # kNN probe at the same stage
    last_accuracy: float
    probe: dict  # the whole ProbeReport
    steps: int = 0
    images: int = 0
    resumed_from: int = 0  # the step a killed run continued from
    final_loss: float | None = None
    images_per_s: float | None = None  # mean over the invocation that finished the run, all ranks
    train_s: float = 0.0
    probe_s: float = 0.0
    swap_every: int = 32  # images between pool swaps in each render stream (see study.swap_interval)
    program_keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunRecord:
        return cls(**{**data, "key": RunKey(**data["key"])})


def write_text_atomic(text: str, path: Path) -> None:
    """Write beside `path` under a temporary name, then rename: a reader sees the old file or the new one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(payload: object, path: Path) -> None:
    write_text_atomic(json.dumps(payload, indent=2, sort_keys=True) + "\n", path)


class StudyFolder:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.records = self.root / RECORDS_DIR
        self.work = self.root / WORK_DIR

    def open(self, config: StudyConfig) -> None:
        """Create the folder for `config`, or check that the one there was made with the same options."""
        stored = self.stored_config()
        if stored is None:
            if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
                raise PretrainError(f"{self.root} exists and is not a study folder (no {STUDY_JSON}): "
                                    "choose another --out")
            self.records.mkdir(parents=True, exist_ok=True)
            self.write_summary(config, [], {})
            return
        if stored != config:
            changed = "; ".join(stored.differences(config))
            raise PretrainError(f"{self.root} holds a study with other options ({changed}): rerun it with its own "
                                "options, or choose another --out")
        self.records.mkdir(parents=True, exist_ok=True)

    def stored_config(self) -> StudyConfig | None:
        path = self.root / STUDY_JSON
        if not path.is_file():
            return None
        try:
            return StudyConfig.from_json(json.loads(path.read_text(encoding="utf-8"))["config"])
        except (ValueError, KeyError, TypeError):
            raise PretrainError(f"{path} is not a readable study file") from None

    def record_path(self, key: RunKey) -> Path:
        return self.records / f"{key.name}.json"

    def finished(self) -> dict[RunKey, RunRecord]:
        done = {}
        for path in sorted(self.records.glob("*.json")):
            try:
                record = RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError):
                raise PretrainError(f"{path} is not a readable run record: delete it to run it again") from None
            done[record.key] = record
        return done

    def save_record(self, record: RunRecord) -> None:
        write_json_atomic(record.to_json(), self.record_path(record.key))

    def run_dir(self, key: RunKey) -> Path:
        return self.work / key.name

    def discard_run_dir(self, key: RunKey) -> None:
        """The run folder of a finished run (its record holds what the study needs), or of a run killed before
        its first checkpoint (nothing in it can be continued)."""
        shutil.rmtree(self.run_dir(key), ignore_errors=True)

    def write_summary(self, config: StudyConfig, records: list[RunRecord], data: dict[str, str]) -> None:
        payload = {"config": config.to_json(), "data": data, "runs": [r.to_json() for r in sorted(
            records, key=lambda r: r.key)]}
        write_json_atomic(payload, self.root / STUDY_JSON)
