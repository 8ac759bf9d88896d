"""What an image of live data draws, decided before anything is drawn, so a whole batch's frames can be drawn ahead.

An image's programs, MixUp weights and frames come from one seeded generator per (stream, image, attempt), in a
fixed order: the K programs, the weights, then for each program its mouse and time. `plan_image` is that order, in
one place: the stream draws from it, and `draw_ahead` reads the plans of a batch's first attempts to draw every
single-pass program's frames of the batch in atlas draws (renderer/atlas.py) of up to `atlas_tiles` frames. The
pool hands those frames out when the images ask for them, in the images' own order, so the images are the same bit
for bit as when each frame is drawn on its own. Simulations are not drawn ahead: their frames follow each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pretrain.simulations import seeded_mouse
from renderer.jobs import FrameSpec

if TYPE_CHECKING:
    from pretrain.data import LiveDataConfig, ProgramPool

IMAGE_TAG = 2  # seed-stream tag of an image's draws (pretrain/data.py's sequence tag is 1)


@dataclass(frozen=True)
class ImagePlan:
    programs: tuple[int, ...]  # the K programs blended, in drawing order
    weights: tuple[float, ...]  # their Dirichlet weights
    frames: tuple[FrameSpec, ...]  # each one's random time and mouse (a simulation draws its run's frame instead)


def plan_image(stream_seed: Sequence[int], image_number: int, attempt: int, live: Sequence[int],
               config: LiveDataConfig) -> ImagePlan:
    rng = np.random.default_rng([*stream_seed, IMAGE_TAG, image_number, attempt])
    k = config.mixup
    chosen = rng.choice(live, size=k, replace=len(live) < k).tolist()
    weights = rng.dirichlet([config.dirichlet_alpha] * k) if k > 1 else np.ones(1)
    frames = []
    for _ in chosen:  # drawn for every program, simulated or not: the same seeds either way
        mouse = seeded_mouse(rng, config.size)
        frames.append(FrameSpec(time=float(rng.uniform(*config.time_range)), mouse=mouse))
    return ImagePlan(tuple(int(p) for p in chosen), tuple(float(w) for w in weights), tuple(frames))


def single_pass_frames(pool: ProgramPool, first_image: int, count: int,
                       config: LiveDataConfig) -> dict[int, list[FrameSpec]]:
    """Program -> the frames the first attempts of images first_image.. draw of it, for single-pass programs."""
    wanted: dict[int, list[FrameSpec]] = {}
    for image_number in range(first_image, first_image + count):
        live = pool.preview_live(image_number)
        plan = plan_image(pool.stream_seed, image_number, 0, live, config)
        for program, frame in zip(plan.programs, plan.frames):
            if not pool.simulated(program):
                wanted.setdefault(program, []).append(frame)
    return wanted


def draw_ahead(pool: ProgramPool, first_image: int, count: int, config: LiveDataConfig) -> int:
    """Draw the single-pass frames of images first_image.. in atlas draws, for the pool to hand out; the number of
    atlas draws made."""
    pool.forget_drawn_ahead()
    draws = 0
    for program, frames in single_pass_frames(pool, first_image, count, config).items():
        for start in range(0, len(frames), config.atlas_tiles):
            if not pool.draw_ahead(program, frames[start:start + config.atlas_tiles], config.size):
                break  # it left the pool: the images that chose it draw again, as they would have
            draws += 1
    return draws
