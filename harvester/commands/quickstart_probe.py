"""What quickstart prints after probing its short run against random init: the numbers, and what they mean."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from harvester.cli_common import console

# A probe's test split of 1,000 images has a standard error of about 1.5 points at these accuracies; seeds vary
# by about as much again.
NOISE_POINTS = 2.0
DOES_NOT_SHOW = (
    "Measured over 3 seeds on a CIFAR-10 subset (README, the quickstart's short run), the default short run (SupCon, "
    "600 steps) beat random init at the best stage on each seed, by 2.6 points on average (+6.3, +0.7, +0.8: two of "
    "them within noise), and at the last stage by 3.4: a few minutes on 18 programs improve the early stages a "
    "little. It says nothing about the seed's scaling result, which needs thousands of programs and far more images "
    "(see `harvest study`)."
)


@dataclass(frozen=True)
class ProbeSummary:
    best_stage: int
    best_linear: float  # top-1 on the test split of the stage chosen on held-out train images
    last_linear: float
    best_knn: float  # the kNN probe at that same stage

    @classmethod
    def read(cls, path: Path) -> ProbeSummary:
        report = json.loads(path.read_text())  # `harvest probe` names its chosen and last stages itself
        best, last = report["best_stage"], report["last_stage"]
        return cls(best["stage"], best["test_accuracy"], last["test_accuracy"], best["knn"]["test_accuracy"])


def plain_reading(pretrained: ProbeSummary, random_init: ProbeSummary) -> str:
    """This run's numbers in one sentence, worded from the numbers themselves, then what a short run cannot show."""
    best = (pretrained.best_linear - random_init.best_linear) * 100
    last = (pretrained.last_linear - random_init.last_linear) * 100
    if best > NOISE_POINTS:
        headline = f"This run beats random init at the best stage by {best:.1f} points"
    elif best >= -NOISE_POINTS:
        headline = f"At the best stage this run is level with random init ({best:+.1f} points, within noise)"
    else:
        headline = f"At the best stage this run is below random init ({best:+.1f} points)"
    return f"{headline}; at the last stage the difference is {last:+.1f} points. {DOES_NOT_SHOW}"


def print_comparison(pretrained_report: Path, random_report: Path) -> None:
    pretrained, random_init = ProbeSummary.read(pretrained_report), ProbeSummary.read(random_report)
    table = Table(title="pretrained vs random init (top-1 on the probe's test split)")
    for column in ("probe", "pretrained", "random init", "difference"):
        table.add_column(column, justify="right" if column != "probe" else "left")
    rows = (
        (f"linear, best stage ({pretrained.best_stage} vs {random_init.best_stage})", pretrained.best_linear,
         random_init.best_linear),
        ("linear, last stage", pretrained.last_linear, random_init.last_linear),
        ("kNN, at the best stage", pretrained.best_knn, random_init.best_knn),
    )
    for name, ours, theirs in rows:
        table.add_row(name, f"{ours:.1%}", f"{theirs:.1%}", f"{(ours - theirs) * 100:+.1f} points")
    console.print(table)
    console.print(plain_reading(pretrained, random_init), highlight=False)
