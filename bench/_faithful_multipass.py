"""The multi-pass half of bench/faithful.py: which programs to compare, and the per-frame report.

Only like is compared with like. wgpu-shadertoy 0.2.0 downloads `texture` media from shadertoy.com (not
reachable here, and harvest stands in noise for them), draws no Cube A pass, and binds an 8x8 black
texture for every other kind (keyboard, cubemap, volume, video...). So a program is compared when it has
Buffer A-D passes, no Cube A pass, and its channels read only buffers and the keyboard: the keyboard
with no key down reads 0 on both sides. Programs that need other inputs are counted as left out, by kind.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path

from _faithful_causes import MULTIPASS_CAUSES, multipass_causes

FRAMES = (0, 9, 59)
COMPARED_CHANNELS = frozenset({"buffer", "keyboard"})


@dataclass(frozen=True)
class MultipassSample:
    id: str
    shader: dict  # the API record's `Shader`
    causes: tuple[str, ...]  # bench/_faithful_causes.py patterns, frame-independent


@dataclass
class Selection:
    samples: list[MultipassSample] = field(default_factory=list)
    multipass: int = 0
    left_out: collections.Counter = field(default_factory=collections.Counter)  # reason -> programs


def _left_out_reason(shader: dict) -> str | None:
    passes = [p for p in shader.get("renderpass") or [] if isinstance(p, dict)]
    if any(p.get("type") == "cubemap" for p in passes):
        return "Cube A pass"
    kinds = sorted({str(i.get("ctype")) for p in passes for i in p.get("inputs") or [] if isinstance(i, dict)}
                   - COMPARED_CHANNELS)
    return f"reads {kinds[0]}" if kinds else None


def multipass_samples(folder: Path, pattern: str = "2022-*.jsonl") -> Selection:
    """The API dumps' programs with Buffer A-D passes that both renderers can be given the same inputs for."""
    selection = Selection()
    for path in sorted(folder.glob(pattern)):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                shader = json.loads(line).get("Shader") or {}
                if not any(p.get("type") == "buffer" for p in shader.get("renderpass") or []):
                    continue
                selection.multipass += 1
                reason = _left_out_reason(shader)
                if reason:
                    selection.left_out[reason] += 1
                    continue
                identifier = str((shader.get("info") or {}).get("id"))
                selection.samples.append(MultipassSample(identifier, shader, tuple(multipass_causes(shader))))
    return selection


def frame_file(folder: Path, sample_id: str, frame: int) -> Path:
    return folder / f"{sample_id}-f{frame}.npy"


def simulation_request(sample: MultipassSample, folder: Path) -> dict:
    """The snapshot servers' request for every compared frame of one simulation."""
    return {"key": sample.id, "shader": sample.shader, "frames": list(FRAMES),
            "outs": [str(frame_file(folder, sample.id, n)) for n in FRAMES]}


def causes_at(sample: MultipassSample, frame: int) -> list[str]:
    """At frame 0 every buffer read of an earlier frame reads zero: nothing has fed back yet."""
    return [c for c in sample.causes if not (frame == 0 and c == "feedback")]


def describe_selection(selection: Selection) -> str:
    left = ", ".join(f"{reason} {n}" for reason, n in selection.left_out.most_common())
    return (f"{len(selection.samples)} of the {selection.multipass} multi-pass programs read only buffers and the "
            f"keyboard (left out: {left})")


def cause_texts() -> dict[str, str]:
    return dict(MULTIPASS_CAUSES)
