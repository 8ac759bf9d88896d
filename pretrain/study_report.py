"""The study's results as a Markdown table and a plot: probe accuracy against the number of programs."""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pretrain.study_config import StudyConfig
from pretrain.study_records import RANDOM, RunRecord, write_text_atomic

PLOT_MISSING = "study.png not written: matplotlib is not installed (pip install 'harvest[plot]')"


@dataclass(frozen=True)
class Cell:
    """Accuracies (in %) of one method at one program count, one per finished seed."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def text(self, seeds: int) -> str:
        if not self.values:
            return "–"
        shown = f"{self.mean:.1f} ± {self.std:.1f}" if len(self.values) > 1 else f"{self.mean:.1f}"
        return shown if len(self.values) == seeds else f"{shown} ({len(self.values)} of {seeds} seeds)"


Metric = Callable[[RunRecord], float | None]


def linear_best(record: RunRecord) -> float | None:
    return record.best_accuracy


def knn_at_best(record: RunRecord) -> float | None:
    return record.best_knn_accuracy


def cell(records: list[RunRecord], method: str, programs: int, metric: Metric) -> Cell:
    values = [metric(r) for r in records if r.key.method == method and r.key.programs == programs]
    return Cell(tuple(100.0 * v for v in values if v is not None))


def _table(config: StudyConfig, records: list[RunRecord], metric: Metric) -> list[str]:
    lines = ["| programs | " + " | ".join(config.methods) + " |", "|---" * (len(config.methods) + 1) + "|"]
    for count in config.programs:
        cells = [cell(records, m, count, metric).text(config.seeds) for m in config.methods]
        lines.append(f"| {count} | " + " | ".join(cells) + " |")
    baseline = cell(records, RANDOM, 0, metric).text(config.seeds)
    lines.append("| random init | " + " | ".join([baseline] * len(config.methods)) + " |")
    return lines


def markdown(config: StudyConfig, records: list[RunRecord], probe_name: str) -> str:
    seeds = f"mean ± std over {config.seeds} seeds" if config.seeds > 1 else "1 seed"
    budget = (f"{config.steps} steps × {config.batch_size} images = {config.images_per_run:,} images per run, "
              f"{config.arch} width {config.width} at {config.size} px, MixUp {config.mixup}"
              + ("" if config.lr is None else f", peak learning rate {config.lr:g}"))
    heading = (f"Linear probe top-1 % on {probe_name} (test split, at the stage picked on held-out train images), "
               f"{seeds}; {budget}.")
    lines = [
        heading, "", *_table(config, records, linear_best), "",
        "kNN probe top-1 % (k = 20, cosine, at the same stage):", "", *_table(config, records, knn_at_best),
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, config: StudyConfig, records: list[RunRecord], probe_name: str) -> str:
    text = markdown(config, records, probe_name)
    write_text_atomic(text, path)
    return text


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write_plot(path: Path, config: StudyConfig, records: list[RunRecord], probe_name: str) -> None:
    """Accuracy against the number of programs (log axis), one line per method, random init as a band."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the study runs headless
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    baseline = cell(records, RANDOM, 0, linear_best)
    if baseline.values:
        axes.axhspan(baseline.mean - baseline.std, baseline.mean + baseline.std, color="0.85")
        spread = " (band: ± std over seeds)" if len(baseline.values) > 1 else ""
        axes.axhline(baseline.mean, color="0.45", linestyle="--", linewidth=1, label=f"random init{spread}")
    for method in config.methods:
        points = [(n, cell(records, method, n, linear_best)) for n in config.programs]
        points = [(n, c) for n, c in points if c.values]
        if points:
            axes.errorbar([n for n, _ in points], [c.mean for _, c in points], yerr=[c.std for _, c in points],
                          marker="o", capsize=3, label=method)
    axes.set_xscale("log")
    axes.set_xticks(list(config.programs), [str(n) for n in config.programs])
    axes.minorticks_off()
    axes.set_xlabel("programs pretrained on (log scale)")
    axes.set_ylabel(f"linear probe top-1 % ({probe_name})")
    axes.set_title(f"{config.images_per_run:,} images per run, {config.seeds} seed{'s' if config.seeds > 1 else ''}")
    axes.legend()
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png")
    plt.close(figure)
    temporary.replace(path)
