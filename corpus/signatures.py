"""Near-duplicate image signatures kept in the catalog, so the compile that validates a program also serves dedup.

The signature is the one `corpus.dedup` defines (perceptual hashes and mean colours at its shared points);
this module only says which frames to ask the renderer for, and how a signature is stored and read back.
"""

from __future__ import annotations

from sqlmodel import Session, select

from corpus.dedup import IMAGE_FRAMES, IMAGE_SEED_KEY, IMAGE_SIZE, ImageSignature, image_signature
from corpus.models import ImageSignatureRow, utcnow
from renderer.frames import frame_specs
from renderer.jobs import FrameSet

SIGNATURE_SET = "signature"
# Changes whenever the points, the size or the hash change: older rows are then drawn again.
SIGNATURE_METHOD = f"{IMAGE_SEED_KEY}-{IMAGE_FRAMES}x{IMAGE_SIZE}-phash64"


def signature_frame_set() -> FrameSet:
    return FrameSet(SIGNATURE_SET, frame_specs(IMAGE_SEED_KEY, IMAGE_FRAMES, IMAGE_SIZE, IMAGE_SIZE),
                    IMAGE_SIZE, IMAGE_SIZE)


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
