"""Writing an export's programs batch by batch: load, render and encode one shard's worth, write it, forget it.

Memory holds at most one batch of sources and PNG-encoded images (plus the frames the render workers are
returning), never the whole export. Shards go through `webdataset.TarWriter` with a fixed member time, owner and
mode, so the same selection gives byte-identical tar files.
"""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from corpus.export_format import SHARDS_DIR, SampleMetadata, joined_code, shard_name
from renderer.executors import Executor
from renderer.frames import frame_specs
from renderer.jobs import ProgramSource, RenderJob, Verdict

MEMBER_MTIME = 0
MEMBER_MODE = 0o644
RENDER_TIMEOUT_S = 10.0

Progress = Callable[[str, int, int], None]
# ids -> (metadata, source) for each of them
Loader = Callable[[list[int]], dict[int, tuple[SampleMetadata, ProgramSource]]]


@dataclass
class ExportItem:
    """One program ready to be written."""

    sample: SampleMetadata
    code: str
    pngs: list[bytes] = field(default_factory=list)


@dataclass
class ImageRenderer:
    """Draws each program's export frames on an open executor and keeps them as PNG bytes."""

    pool: Executor
    count: int
    size: int
    seed: int
    total: int
    progress: Progress | None = None
    done: int = 0
    failed: int = 0

    def render(self, sources: dict[int, ProgramSource]) -> dict[int, list[bytes]]:
        """PNGs of every program that rendered; the others are counted in `failed`."""
        jobs = (
            RenderJob(key=pid, program=source, frames=frame_specs(f"export:{self.seed}:{pid}", self.count, self.size, self.size),
                      width=self.size, height=self.size, timeout_s=RENDER_TIMEOUT_S, keep_frames=True)
            for pid, source in sources.items()
        )
        pngs: dict[int, list[bytes]] = {}
        for result in self.pool.run(jobs):
            if result.verdict == Verdict.OK and result.frames:
                # Encoded on arrival: a PNG is far smaller than the frame it replaces.
                pngs[result.key] = [png_bytes(frame) for frame in result.frames]
            self.done += 1
            if self.progress:
                self.progress("render", self.done, self.total)
        self.failed += len(sources) - len(pngs)
        return pngs


def png_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def program_batches(ids: list[int], batch_size: int, load: Loader, renderer: ImageRenderer | None) -> Iterator[list[ExportItem]]:
    """Items in id order, `batch_size` to a batch (the last may be shorter). A program whose images fail is left
    out and its place filled from the ids that follow, so the batches are what they would be had it never been
    selected."""
    queue = deque(ids)
    batch: list[ExportItem] = []
    while queue:
        wanted = [queue.popleft() for _ in range(min(batch_size - len(batch), len(queue)))]
        batch += _prepare(wanted, load, renderer)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prepare(ids: list[int], load: Loader, renderer: ImageRenderer | None) -> list[ExportItem]:
    loaded = load(ids)
    pngs = renderer.render({pid: source for pid, (_, source) in loaded.items()}) if renderer else {}
    items: list[ExportItem] = []
    for pid in ids:
        if renderer is not None and pid not in pngs:
            continue
        sample, source = loaded[pid]
        sample.images = [f"f{i}.png" for i in range(len(pngs.get(pid, [])))]
        items.append(ExportItem(sample, joined_code(source), pngs.get(pid, [])))
    return items


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
