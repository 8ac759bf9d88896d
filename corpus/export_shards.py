"""Writing an export's programs: one batch of items becomes the next shard (or loose images) and its manifest lines.

Shards go through `webdataset.TarWriter` with a fixed member time, owner and mode, so the same selection gives
byte-identical tar files. Which programs make a batch, and when, is corpus/export_images.py's business.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from PIL import Image

from corpus.export_format import SHARDS_DIR, SampleMetadata, shard_name

MEMBER_MTIME = 0
MEMBER_MODE = 0o644


@dataclass
class ExportItem:
    """One program ready to be written."""

    sample: SampleMetadata
    code: str
    pngs: list[bytes] = field(default_factory=list)


def png_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@dataclass
class DatasetWriter:
    """Writes each batch it is given as the next shard (`webdataset`) or as loose images, and their manifest lines."""

    folder: Path
    webdataset: bool
    manifest: TextIO
    samples: list[SampleMetadata] = field(default_factory=list)
    shards: int = 0
    images: int = 0

    def write(self, items: list[ExportItem]) -> None:
        lines = write_shard(self.folder, self.shards, items) if self.webdataset else write_loose(self.folder, items)
        self.manifest.writelines(f"{line}\n" for line in lines)
        self.samples += [item.sample for item in items]
        self.images += sum(len(item.pngs) for item in items)
        self.shards += int(self.webdataset)


def _json_line(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def write_shard(folder: Path, index: int, items: list[ExportItem]) -> list[str]:
    """`shards/shard-NNNNNN.tar` of `items`; returns their manifest lines."""
    from webdataset import TarWriter  # imports torch: only exports that write shards pay for it

    shard = shard_name(index)
    with TarWriter(str(folder / SHARDS_DIR / shard), user="", group="", mode=MEMBER_MODE, mtime=MEMBER_MTIME,
                   encoder=False) as tar:
        for item in items:
            members = [("frag", item.code.encode("utf-8", "surrogatepass")),
                       ("json", _json_line(item.sample.to_json()).encode())]
            members += [(f"f{i}.png", png) for i, png in enumerate(item.pngs)]
            # One member a call: TarWriter sorts a sample's members by name, and the format puts .frag first.
            for suffix, data in members:
                tar.write({"__key__": item.sample.key, suffix: data})
    return [_json_line({**item.sample.to_json(), "shard": shard}) for item in items]


def write_loose(folder: Path, items: list[ExportItem]) -> list[str]:
    """`--format jsonl`: images as files under `images/`, code inside the manifest lines returned."""
    for item in items:
        if item.pngs:
            (folder / "images").mkdir(exist_ok=True)
        for i, png in enumerate(item.pngs):
            (folder / "images" / f"{item.sample.key}.f{i}.png").write_bytes(png)
    return [_json_line({**item.sample.to_json(), "code": item.code}) for item in items]
