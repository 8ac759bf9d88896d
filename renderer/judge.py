"""From rendered frames to a verdict and per-frame statistics. Pure: no GL, no I/O.

The blank rule (documented in README-render.md):
- NaN output counts as black and infinities as 0 or 1 (what GPUs show), before this is applied;
- a frame is *flat* when at most FLAT_MAX_OUTLIER_SHARE (0.1 %) of its pixels differ from the
  frame's median colour by more than FLAT_TOLERANCE (8 of 255) in any channel;
- a program is `blank` when every frame is flat. The reason names NaN/Inf when more than
  NONFINITE_REPORT_SHARE (50 %) of the pixels of every frame were NaN or infinite.
`animated` is true when some frame differs from the first by a mean absolute difference of more
than ANIMATED_MIN_MEAN_DIFF (0.5 of 255) over all channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from renderer.jobs import Verdict

FLAT_TOLERANCE = 8
FLAT_MAX_OUTLIER_SHARE = 0.001
NONFINITE_REPORT_SHARE = 0.5
ANIMATED_MIN_MEAN_DIFF = 0.5


@dataclass
class FrameStats:
    means: list[float] = field(default_factory=list)  # per frame, over all pixels and channels, 0..255
    stds: list[float] = field(default_factory=list)
    animated: bool | None = None
    reason: str = ""


def outlier_share(frame: np.ndarray) -> float:
    """Share of pixels farther than FLAT_TOLERANCE from the frame's median colour in some channel."""
    pixels = frame.reshape(-1, frame.shape[-1]).astype(np.int16)
    median = np.median(pixels, axis=0)
    far = (np.abs(pixels - median) > FLAT_TOLERANCE).any(axis=1)
    return float(far.mean())


def is_flat(frame: np.ndarray) -> bool:
    return outlier_share(frame) <= FLAT_MAX_OUTLIER_SHARE


def is_animated(frames: Sequence[np.ndarray]) -> bool:
    first = frames[0].astype(np.int16)
    return any(float(np.abs(f.astype(np.int16) - first).mean()) > ANIMATED_MIN_MEAN_DIFF for f in frames[1:])


def judge(frames: Sequence[np.ndarray], nonfinite: Sequence[float] | None = None) -> tuple[Verdict, FrameStats]:
    """`ok` or `blank` for frames (HxWx3 uint8) that rendered; `nonfinite[i]` is frame i's NaN/Inf share."""
    if not frames:
        return Verdict.BLANK, FrameStats(reason="no frames were rendered")
    shares = list(nonfinite) if nonfinite is not None else [0.0] * len(frames)
    stats = FrameStats(
        means=[round(float(f.mean()), 3) for f in frames],
        stds=[round(float(f.std()), 3) for f in frames],
        animated=is_animated(frames),
    )
    if all(is_flat(f) for f in frames):
        if all(share > NONFINITE_REPORT_SHARE for share in shares):
            stats.reason = "NaN or Inf output in every frame"
        else:
            colour = np.median(frames[0].reshape(-1, 3), axis=0).astype(int).tolist()
            stats.reason = f"every frame is nearly one colour (first: rgb{tuple(colour)})"
        return Verdict.BLANK, stats
    return Verdict.OK, stats
