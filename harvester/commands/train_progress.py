"""Progress of `harvest pretrain`: rich's live bar on a terminal, plain periodic lines anywhere else.

A CI log, `nohup` or a pipe cannot show a live bar: it used to print nothing until the run ended. There, one
uncut line is written every `every_steps` steps or `every_s` seconds, whichever comes first.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:  # pretrain imports torch, which the rest of the CLI must start without
    from pretrain.train import StepMetrics

StepReporter = Callable[["StepMetrics"], None]
LINES_PER_RUN = 20  # at most this many lines from the step count alone; the clock adds more on slow runs
PLAIN_EVERY_S = 15.0


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # a pipe is block-buffered: without this the line would wait for the next 4 KiB


def eta_text(metrics: StepMetrics, images_per_step: int) -> str:
    if metrics.images_per_s <= 0:
        return "?"
    seconds = (metrics.steps - metrics.step) * images_per_step / metrics.images_per_s
    return str(timedelta(seconds=round(seconds)))


def plain_line(metrics: StepMetrics, images_per_step: int) -> str:
    return (f"pretrain step {metrics.step}/{metrics.steps}  {metrics.images_per_s:.0f} img/s  "
            f"loss {metrics.loss:.4f}  acc {metrics.accuracy:.3f}  ETA {eta_text(metrics, images_per_step)}")


@dataclass
class PlainProgress:
    """Writes a line for the first reported step, then whenever `every_steps` steps or `every_s` seconds have
    passed since the last line, and for the last step."""

    images_per_step: int
    every_steps: int
    every_s: float = PLAIN_EVERY_S
    clock: Callable[[], float] = time.monotonic
    write: Callable[[str], None] = _write_line
    _last_step: int | None = field(default=None, init=False)
    _last_time: float = field(default=0.0, init=False)

    def __call__(self, metrics: StepMetrics) -> None:
        now = self.clock()
        due = (
            self._last_step is None
            or metrics.step >= metrics.steps
            or metrics.step - self._last_step >= self.every_steps
            or now - self._last_time >= self.every_s
        )
        if due:
            self.write(plain_line(metrics, self.images_per_step))
            self._last_step, self._last_time = metrics.step, now


@contextlib.contextmanager
def _live_bar(console: Console, total: int) -> Iterator[StepReporter]:
    with Progress(
        TextColumn("[bold]pretrain"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[loss]}"), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task("train", total=total, rate="", loss="")

        def on_step(metrics: StepMetrics) -> None:
            progress.update(task, completed=metrics.step, rate=f"{metrics.images_per_s:.0f} img/s",
                            loss=f"loss {metrics.loss:.3f} acc {metrics.accuracy:.2f}")

        yield on_step


@contextlib.contextmanager
def step_reporter(console: Console, total: int, images_per_step: int, log_every: int) -> Iterator[StepReporter]:
    """The reporter that suits where `console` writes to."""
    if console.is_terminal:
        with _live_bar(console, total) as on_step:
            yield on_step
    else:
        yield PlainProgress(images_per_step, every_steps=max(log_every, total // LINES_PER_RUN))
