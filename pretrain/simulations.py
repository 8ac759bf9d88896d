"""Which frame live data draws of a simulation (a multi-pass program, see renderer/passes.py), at which image.

A simulation has no frame at a random time: frame n is only defined after frames 0..n-1, with iFrame n and iTime
n / 60. So a pool slot holding one keeps it running, on the stream's image clock: from the image at which the
program entered its slot, the clock advances `stride * K / slots` frames per image (K programs blended per image),
so a draw lands on average `stride` frames after the previous draw of the same program; the frames in between are
simulated, not drawn. After a seeded number of frames (`run_frames`, 1..600 by default) the simulation starts again
from frame 0, so images cover its first frames as well as its late states. Each run holds one seeded mouse from its
first frame to its last: the state at frame n depends on the input at every frame before it.

Everything here is computed from (stream seed, program, the image it entered its slot, run number), never from
which frames were drawn before: the frame at image n is the same in a resumed run as in an uninterrupted one, and the
renderer simulates up to it from wherever its simulation is (from frame 0 after a restart or a fresh compile).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from renderer.jobs import FrameSpec
from renderer.passes import simulation_frame

_RUN_TAG, _MOUSE_TAG = 3, 4  # seed-stream tags, apart from pretrain/data.py's

Mouse = tuple[float, float, float, float]


def seeded_mouse(rng: np.random.Generator, size: int) -> Mouse:
    """A position on the canvas, pressed half of the time (Shadertoy's iMouse: z, w negative when released)."""
    x, y = rng.uniform(0, size, 2)
    pressed = rng.random() < 0.5
    return float(x), float(y), float(x) if pressed else -float(x), float(y) if pressed else -float(y)


@dataclass(frozen=True)
class SimulationDraw:
    run: tuple[int, int]  # (image the program entered its slot, run number): a new value restarts the simulation
    frame: FrameSpec  # frame n of that run: iFrame n, iTime n / 60, the run's mouse


class SimulationClock:
    """The runs of one stream's simulations, computed on demand and remembered while their programs are held."""

    def __init__(self, stream_seed: tuple[int, ...], stride: int, draws_per_image: int, slots: int,
                 run_frames: tuple[int, int], size: int) -> None:
        if not 1 <= run_frames[0] <= run_frames[1]:
            raise ValueError(f"simulation runs need 1 <= shortest <= longest frames, not {run_frames}")
        self.stream_seed = stream_seed
        # Frames per image as a fraction, so the clock is exact integer arithmetic however long the run.
        self._numerator = max(1, stride) * max(1, draws_per_image)
        self._denominator = max(1, slots)
        self.run_frames = run_frames
        self.size = size
        self._run_ends: dict[tuple[int, int], list[int]] = {}  # (program, entered) -> each run's last clock frame + 1

    def draw(self, program: int, entered: int, image_number: int) -> SimulationDraw:
        clock = max(0, image_number - entered) * self._numerator // self._denominator
        ends = self._ends(program, entered, clock)
        run = bisect.bisect_right(ends, clock)
        start = ends[run - 1] if run else 0
        rng = np.random.default_rng([*self.stream_seed, _MOUSE_TAG, program, entered, run])
        return SimulationDraw((entered, run), simulation_frame(clock - start, seeded_mouse(rng, self.size)))

    def _ends(self, program: int, entered: int, clock: int) -> list[int]:
        ends = self._run_ends.setdefault((program, entered), [])
        while not ends or ends[-1] <= clock:
            rng = np.random.default_rng([*self.stream_seed, _RUN_TAG, program, entered, len(ends)])
            length = int(rng.integers(self.run_frames[0], self.run_frames[1] + 1))
            ends.append((ends[-1] if ends else 0) + length)
        return ends

    def keep_only(self, held: set[tuple[int, int]]) -> None:
        """Forget the runs of (program, entered) tenures that are over."""
        for tenure in set(self._run_ends) - held:
            del self._run_ends[tenure]
