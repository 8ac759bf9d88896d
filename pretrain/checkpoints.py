"""Checkpoint files: written atomically, read back with one-line errors for anything that is not ours."""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from pretrain.errors import PretrainError
from pretrain.models import ARCHS, BackboneSpec, ResNet, build_backbone

CHECKPOINT_FORMAT = "harvest-pretrain/1"
BACKBONE_PREFIX = "backbone."


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename: a crash leaves the old file.
    One writer per path (rank 0 of a run): the temporaries a killed writer left behind are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise PretrainError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise PretrainError(f"{path} is not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise PretrainError(f"{path} is not a harvest pretraining checkpoint")
    return payload


def backbone_spec(payload: dict[str, Any]) -> BackboneSpec:
    spec = payload.get("backbone_spec") or {}
    return BackboneSpec(**{k: spec[k] for k in ("arch", "width", "stem") if k in spec})


def backbone_from_checkpoint(path: Path, arch: str | None = None) -> tuple[ResNet, dict[str, Any]]:
    """The pretrained backbone of a checkpoint (eval mode, on CPU); `arch`, when given, must match it."""
    payload = load_checkpoint(path)
    spec = backbone_spec(payload)
    if arch is not None and arch != spec.arch:
        raise PretrainError(f"checkpoint {path} holds a {spec.arch} backbone, not {arch}")
    if spec.arch not in ARCHS:
        raise PretrainError(f"checkpoint {path} names an unknown architecture {spec.arch!r}")
    model = build_backbone(spec)
    state = {
        key[len(BACKBONE_PREFIX):]: value
        for key, value in payload["objective"].items()
        if key.startswith(BACKBONE_PREFIX)
    }
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise PretrainError(f"checkpoint {path} does not fit a {spec.arch} of width {spec.width}") from None
    return model.eval(), payload
