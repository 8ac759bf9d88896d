"""Progress of long commands: a rich bar on a terminal, plain uncut lines every few seconds elsewhere.

Drivers draw nothing: they emit events (corpus.stage_runner.StageEvent, or plain counts), and the
command hands them to one of these. In a CI log, under nohup or through a pipe, a bar would be
redrawn into one line cut at 80 columns at the very end; periodic lines say the same as they go.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_EVERY_S = 10.0


def format_counts(counts: dict[str, int], order: Iterable[str] = ()) -> str:
    ordered = [name for name in order if counts.get(name)] + sorted(k for k in counts if k not in set(order) and counts[k])
    return "  ".join(f"{name} {counts[name]}" for name in ordered)


def _clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class _BarWithCounts(Progress):
    """A rich progress bar with the outcome counts on their own line, so they never squeeze the bar."""

    counts_line = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.counts_line:
            yield Text(self.counts_line)


class ProgressView:
    """Shows `done of total` for one long step; `update` as often as you like, it draws when it should."""

    def __init__(self, label: str, console: Console, unit: str = "programs", order: Iterable[str] = (),
                 plain_every_s: float = PLAIN_EVERY_S, stream: TextIO | None = None) -> None:
        self.label, self.unit, self.order = label, unit, tuple(order)
        self.plain = not console.is_terminal
        self.stream = stream or (sys.stderr if console.stderr else sys.stdout)
        self.plain_every_s = plain_every_s
        self.started = time.monotonic()
        self.last_line = 0.0
        self.done, self.total, self.counts = 0, None, {}
        self._bar: _BarWithCounts | None = None
        self._printed: tuple[int, int | None] | None = None
        if not self.plain:
            self._bar = _BarWithCounts(
                TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
            )
            self._task = self._bar.add_task(label, total=None, rate="")

    def __enter__(self) -> ProgressView:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif (self.done or self.total) and self._printed != (self.done, self.total):
            self._line(final=True)

    def update(self, done: int, total: int | None = None, counts: dict[str, int] | None = None) -> None:
        self.done, self.total = done, total if total is not None else self.total
        self.counts = counts if counts is not None else self.counts
        if self._bar is not None:
            self._bar.counts_line = format_counts(self.counts, self.order)
            self._bar.update(self._task, completed=done, total=self.total, rate=self._rate_text())
        elif time.monotonic() - self.last_line >= self.plain_every_s:
            self._line()

    def _rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _rate_text(self) -> str:
        rate = self._rate()
        return f"{rate:.1f} {self.unit}/s" if rate > 0 else ""

    def _line(self, final: bool = False) -> None:
        self.last_line = time.monotonic()
        self._printed = (self.done, self.total)
        elapsed = self.last_line - self.started
        parts = [f"{self.label}: {self.done}" + (f"/{self.total}" if self.total is not None else "")]
        if self.total:
            parts.append(f"({100.0 * self.done / self.total:.0f} %)")
        if self.done:
            parts.append(self._rate_text())
        parts.append(f"elapsed {_clock(elapsed)}")
        rate = self._rate()
        if self.total and rate > 0 and not final and self.done < self.total:
            parts.append(f"eta {_clock((self.total - self.done) / rate)}")
        counts = format_counts(self.counts, self.order)
        print("  ".join(p for p in parts if p) + (f"  {counts}" if counts else ""), file=self.stream, flush=True)


class StepsProgress:
    """Progress of a command made of named steps that report `(step, done, total)`, one view per step."""

    def __init__(self, console: Console, labels: dict[str, str] | None = None) -> None:
        self.console, self.labels = console, labels or {}
        self.step: str | None = None
        self.view: ProgressView | None = None

    def __call__(self, step: str, done: int, total: int | None, counts: dict[str, int] | None = None) -> None:
        if step != self.step:
            self.close()
            self.step = step
            self.view = ProgressView(self.labels.get(step, step), self.console).__enter__()
        assert self.view is not None
        self.view.update(done, total, counts)

    def close(self) -> None:
        if self.view is not None:
            self.view.__exit__(None, None, None)
            self.view = None

    def __enter__(self) -> StepsProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
