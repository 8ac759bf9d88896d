"""Records a source yields: what was fetched, before the catalog sees it.

Sources know nothing of SQL; the catalog's ingest turns these into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

PassKind = Literal["image", "common", "buffer_a", "buffer_b", "buffer_c", "buffer_d", "cubemap", "sound"]
PASS_KINDS: tuple[str, ...] = ("image", "common", "buffer_a", "buffer_b", "buffer_c", "buffer_d", "cubemap", "sound")
LicenseOrigin = Literal["declared", "detected", "source-default"]


@dataclass(frozen=True)
class ChannelInput:
    """One `iChannelN` binding of a pass.

    ctype follows Shadertoy's names: texture, cubemap, volume, buffer, keyboard, music, musicstream,
    mic, video, webcam. src is the asset path or buffer name (never a URL with credentials).
    """

    channel: int
    ctype: str
    src: str = ""
    # The channel's sampler as the record sets it; empty / None: the record does not say (the site's default).
    filter: str = ""  # nearest | linear | mipmap
    wrap: str = ""  # clamp | repeat
    vflip: bool | None = None

    def stored(self) -> dict:
        """The binding as the catalog keeps it: the sampler fields only where the record set them."""
        kept = {"channel": self.channel, "ctype": self.ctype, "src": self.src}
        sampler = {"filter": self.filter, "wrap": self.wrap, "vflip": self.vflip}
        return kept | {name: value for name, value in sampler.items() if value not in ("", None)}


@dataclass
class FetchedPass:
    kind: str  # one of PASS_KINDS
    code: str
    inputs: list[ChannelInput] = field(default_factory=list)
    name: str = ""


@dataclass
class FetchedProgram:
    source: str
    source_id: str
    url: str
    title: str
    author: str
    passes: list[FetchedPass]
    license: str = "unknown"
    license_origin: str = "source-default"
    description: str = ""
    tags: list[str] = field(default_factory=list)
    published_at: datetime | None = None  # timezone-aware (UTC)
    likes: int | None = None
    views: int | None = None
    dialect: str | None = None  # None: sniffed from the image pass at ingest
    raw: object | None = None  # the original record, JSON-serialisable; stored compressed

    def pass_of(self, kind: str) -> FetchedPass | None:
        return next((p for p in self.passes if p.kind == kind), None)


@dataclass(frozen=True)
class FetchFailure:
    """An item a source could not turn into a program; the crawl records it and goes on."""

    source: str
    item: str
    reason: str
