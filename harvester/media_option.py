"""`--media-dir DIR`: the folder Shadertoy media channels are read from (validate, render, score, dedup, export,
pretrain). harvest ships no media; see README "Media channels"."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from harvester.errors import HarvestError

MediaDirOption = Annotated[
    Optional[Path],
    typer.Option("--media-dir", help="Folder with Shadertoy media: a channel reading /media/a/NAME.png is bound from "
                 "DIR/NAME.png when it is there, else a stand-in that the verdict records.", show_default=False),
]


def checked_media_dir(media_dir: Path | None) -> str | None:
    """The folder as an absolute path for the workers; one clear error when it is not a folder."""
    if media_dir is None:
        return None
    if not media_dir.exists():
        raise HarvestError(f"--media-dir {media_dir} does not exist")
    if not media_dir.is_dir():
        raise HarvestError(f"--media-dir {media_dir} is not a folder")
    return str(media_dir.resolve())


def with_media(spec, media_dir: Path | None):
    """The ExecutorSpec `spec` with its jobs reading media from `media_dir`."""
    return replace(spec, media_dir=checked_media_dir(media_dir))
