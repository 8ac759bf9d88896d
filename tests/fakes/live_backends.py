"""Render backends for live data (pretrain/data.py) that cost time on a fake clock instead of drawing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from renderer.jobs import FrameSpec, ProgramSource
from tests.fake_clock import FakeClock


class TimedDrawable:
    """Every frame costs `cost_s` on the clock; its pixels are the frame's time in tenths of a second."""

    def __init__(self, clock: FakeClock, cost_s: float) -> None:
        self.clock, self.cost_s = clock, cost_s

    def render(self, frame: FrameSpec, width: int, height: int, budget_s: float) -> np.ndarray:
        self.clock.now += self.cost_s
        return np.full((height, width, 3), int(frame.time * 10) % 256, np.uint8)

    def render_many(self, frames, width: int, height: int, budget_s: float) -> list[np.ndarray]:
        return [self.render(frame, width, height, budget_s) for frame in frames]

    def release(self) -> None:
        pass


class FakeBackend:
    """Compiles a source into `make(clock, source)`, first moving the clock by `compile_s(source)`."""

    def __init__(self, clock: FakeClock, make: Callable[[FakeClock, ProgramSource], object],
                 compile_s: Callable[[ProgramSource], float] = lambda source: 0.0) -> None:
        self.clock, self.make, self.compile_s = clock, make, compile_s

    def compile(self, source: ProgramSource):
        self.clock.now += self.compile_s(source)
        return self.make(self.clock, source)

    def close(self) -> None:
        pass


def costs_by_name(costs: dict[str, float], default: float) -> Callable[[FakeClock, ProgramSource], TimedDrawable]:
    """A `make` whose drawable costs the value of the first name in `costs` that the program's code contains."""

    def make(clock: FakeClock, source: ProgramSource) -> TimedDrawable:
        cost = next((value for name, value in costs.items() if name in source.image), default)
        return TimedDrawable(clock, cost)

    return make
