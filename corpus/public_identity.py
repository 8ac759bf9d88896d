"""What an export may say about where a program came from: never the curator's own directory layout.

Loose files and local git checkouts were long stored with their absolute path as `source_id` and a `file://` URL.
A published dataset must not carry either, whatever catalog it comes from, so every exported identity passes
through `public_identity`: an absolute path becomes the path relative to the folder it was imported from (when
the catalog's crawl runs name that folder; else just the file name) plus the start of the code hash, which keeps
two files of the same name apart. Only http(s) URLs are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlsplit

from sqlmodel import select

from corpus.models import CrawlRun

HASH_CHARS = 12
_PUBLIC_URL = re.compile(r"^https?://[^\s<>()]+$", re.IGNORECASE)


@dataclass(frozen=True)
class PublicIdentity:
    source_id: str
    url: str | None  # None: the program has no public address


def import_roots(session) -> tuple[PurePosixPath, ...]:
    """Every absolute path a crawl run started from (a folder or a single file), longest first."""
    scopes = session.exec(select(CrawlRun.scope).distinct()).all()
    roots = {_local_path(scope) for scope in scopes}
    return tuple(sorted((r for r in roots if r is not None), key=lambda r: len(r.parts), reverse=True))


def public_identity(source_id: str, url: str, code_hash: str, roots: tuple[PurePosixPath, ...]) -> PublicIdentity:
    public_url = url.strip() if _PUBLIC_URL.match(url.strip()) else None
    path = _local_path(source_id)
    if path is None:
        return PublicIdentity(source_id, public_url)
    return PublicIdentity(f"{_relative_name(path, roots)}@{code_hash[:HASH_CHARS]}", public_url)


def _local_path(text: str) -> PurePosixPath | None:
    """`text` as an absolute path when it is one (POSIX, Windows or file:// spelling), else None."""
    text = text.strip()
    if text.lower().startswith("file:"):
        text = unquote(urlsplit(text).path)
    if PurePosixPath(text).is_absolute():
        return PurePosixPath(text)
    windows = PureWindowsPath(text)
    if windows.is_absolute() or windows.drive:
        return PurePosixPath("/", *windows.parts[1:])
    return None


def _relative_name(path: PurePosixPath, roots: tuple[PurePosixPath, ...]) -> str:
    for root in roots:
        if path == root:
            break  # a single file was imported: its name is all that identifies it
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name or "program"
