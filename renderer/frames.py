"""Deterministic frame times and mouse positions, seeded by the program."""

from __future__ import annotations

import hashlib
import random

from renderer.jobs import FrameSpec

MIN_TIME_S = 0.1
MAX_TIME_S = 10.0
FRAME_RATE = 60.0
# Programs built on fract(iTime) look static at whole seconds: keep this far from them.
MIN_DISTANCE_FROM_WHOLE_SECOND = 0.05


def seeded_random(seed_key: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed_key.encode("utf-8", "replace")).digest()[:8], "big"))


def _off_whole_seconds(t: float) -> float:
    nearest = round(t)
    if abs(t - nearest) < MIN_DISTANCE_FROM_WHOLE_SECOND:
        t = nearest + MIN_DISTANCE_FROM_WHOLE_SECOND * (1 if t >= nearest else -1)
    return min(max(t, MIN_TIME_S), MAX_TIME_S - MIN_DISTANCE_FROM_WHOLE_SECOND)


def frame_specs(seed_key: str, count: int, width: int, height: int) -> tuple[FrameSpec, ...]:
    """`count` frames at times from U(0.1, 10) s (never near a whole second), in increasing time.

    The mouse is a press at a random point inside the canvas (iMouse = x, y, x, y), except in the
    first frame, which keeps the untouched mouse (0, 0, 0, 0) the website starts with: many programs
    only look right before anyone clicks. iFrame follows the time at 60 frames per second. Same key,
    same frames.
    """
    rng = seeded_random(seed_key)
    times = sorted(_off_whole_seconds(rng.uniform(MIN_TIME_S, MAX_TIME_S)) for _ in range(count))
    frames = []
    for index, t in enumerate(times):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        mouse = (x, y, x, y) if index > 0 else (0.0, 0.0, 0.0, 0.0)
        frames.append(FrameSpec(time=t, mouse=mouse, frame=int(t * FRAME_RATE)))
    return tuple(frames)


def first_load_frames(count: int, start: float = 0.0, interval: float = 0.5) -> tuple[FrameSpec, ...]:
    """The website's state when a program first loads (mouse untouched), at `count` evenly spaced times."""
    return tuple(
        FrameSpec(time=start + k * interval, mouse=(0.0, 0.0, 0.0, 0.0), frame=int(round((start + k * interval) * FRAME_RATE)))
        for k in range(count)
    )
