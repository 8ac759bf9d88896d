"""A program's image signature for near-duplicate search: what it is, how it is drawn, stored and read back.

Every program is drawn at the same IMAGE_FRAMES (time, mouse) points at IMAGE_SIZE px (a simulation: at frames
SIMULATION_IMAGE_FRAMES of one run from frame 0); each frame gives a 64-bit perceptual hash (imagehash.phash) and a
mean colour. Validation draws these frames in the compile that judges a
program and stores the signature, so `harvest dedup` only draws programs that lack one.
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image
from sqlmodel import Session, select

from corpus.models import ImageSignatureRow, Program, Validation, utcnow
from corpus.stage_runner import CatalogProgram
from renderer.frames import frame_specs
from renderer.jobs import FrameSet, RenderJob, RenderResult, Verdict
from renderer.passes import simulation_frame

IMAGE_FRAMES = 2
IMAGE_SIZE = 64
FLAT_LUMA_STD = 2.0 / 255.0
# The same points for every program: image hashes are only comparable at the same time and mouse.
IMAGE_SEED_KEY = "harvest-dedup-v1"
# A simulation's frames, mouse untouched: the last two of validation's checkpoints, well past a start-up frame but
# cheap to reach again at IMAGE_SIZE (60 steps at a quarter of the default verdict size's pixels).
SIMULATION_IMAGE_FRAMES = (29, 59)

@dataclass(frozen=True)
class ImageSignature:
    """Perceptual hashes (64-bit ints) and mean colours (0-1) of a program's frames at the shared points."""

    hashes: tuple[int, ...]
    mean_colours: tuple[tuple[float, float, float], ...]


def image_signature(frames: list[np.ndarray]) -> ImageSignature | None:
    """None when no frame has a picture to compare (every frame nearly uniform in luma)."""
    hashes: list[int] = []
    colours: list[tuple[float, float, float]] = []
    informative = False
    for frame in frames:
        rgb = np.asarray(frame)[:, :, :3]
        scaled = rgb.astype(np.float32) / 255.0
        luma = scaled @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        informative = informative or float(luma.std()) >= FLAT_LUMA_STD
        bits = imagehash.phash(Image.fromarray(rgb.astype(np.uint8), "RGB")).hash.ravel()
        hashes.append(int("".join("1" if b else "0" for b in bits), 2))
        mean = scaled.reshape(-1, 3).mean(axis=0)
        colours.append((float(mean[0]), float(mean[1]), float(mean[2])))
    if not informative:
        return None
    return ImageSignature(tuple(hashes), tuple(colours))


SIGNATURE_SET = "signature"
# Changes whenever the points, the size or the hash change: older rows are then drawn again.
SIGNATURE_METHOD = (f"{IMAGE_SEED_KEY}-{IMAGE_FRAMES}x{IMAGE_SIZE}-phash64"
                    f"-sim{'+'.join(map(str, SIMULATION_IMAGE_FRAMES))}")


def signature_frame_set(simulation: bool = False) -> FrameSet:
    """The frames a signature is drawn from, by validation or by `harvest dedup` alike."""
    if simulation:
        frames = tuple(simulation_frame(n) for n in SIMULATION_IMAGE_FRAMES)
    else:
        frames = frame_specs(IMAGE_SEED_KEY, IMAGE_FRAMES, IMAGE_SIZE, IMAGE_SIZE)
    return FrameSet(SIGNATURE_SET, frames, IMAGE_SIZE, IMAGE_SIZE)


def signature_row(program_id: int, frames: list) -> ImageSignatureRow:
    """The stored form of the signature of `frames` (no hashes when they carry no picture)."""
    signature = image_signature(frames)
    return ImageSignatureRow(
        program_id=program_id,
        method=SIGNATURE_METHOD,
        hashes=[f"{h:016x}" for h in signature.hashes] if signature else [],
        mean_colours=[list(c) for c in signature.mean_colours] if signature else [],
        computed_at=utcnow(),
    )


def stored_signatures(session: Session, program_ids: list[int]) -> dict[int, ImageSignature | None]:
    """Current signatures of those of `program_ids` that have one (None: drawn, but nothing to compare)."""
    found: dict[int, ImageSignature | None] = {}
    wanted = set(program_ids)
    query = select(ImageSignatureRow).where(ImageSignatureRow.method == SIGNATURE_METHOD)
    for row in session.exec(query):
        if row.program_id not in wanted:
            continue
        found[row.program_id] = (
            ImageSignature(tuple(int(h, 16) for h in row.hashes), tuple(tuple(c) for c in row.mean_colours))
            if row.hashes else None
        )
    return found


class SignatureStage:
    """Draw the signature frames of the `ok` programs that have no current signature, and store them."""

    name = "signatures"

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.rows: list[ImageSignatureRow] = []

    def select(self, session: Session) -> list[int]:
        current = select(ImageSignatureRow.program_id).where(ImageSignatureRow.method == SIGNATURE_METHOD)
        query = (
            select(Program.id)
            .join(Validation, Validation.program_id == Program.id)
            .where(Validation.verdict == Verdict.OK.value, Program.duplicate_of.is_(None))
            .where(Program.id.not_in(current))
            .order_by(Program.id)
        )
        return list(session.exec(query).all())

    def job(self, program: CatalogProgram) -> RenderJob:
        frame_set = signature_frame_set(program.code.multipass)
        return RenderJob(key=program.id, program=program.code, frames=frame_set.frames, width=frame_set.width,
                         height=frame_set.height, timeout_s=self.timeout_s, keep_frames=True)

    def consume(self, result: RenderResult) -> str:
        if result.verdict == Verdict.OK and result.frames:
            self.rows.append(signature_row(result.key, result.frames))
            return "hashed"
        return str(result.verdict)

    def save(self, session: Session) -> None:
        for row in self.rows:
            session.merge(row)
        self.rows = []
