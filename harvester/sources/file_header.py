"""The leading comment header of a loose program file: who wrote it, its title, the licence it declares.

Only the comments before the first line of code count (`//` lines and `/* */` blocks, blank lines between),
so a `by` or `License` deep in the code is never taken for the file's own metadata. Lines recognised:
`Author: NAME` (also `Authors`, `Author - NAME`), `by NAME` / `Created by NAME` (short names only),
`Title: ...`, `License: ...` / `Licence: ...`, `SPDX-License-Identifier: ...`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.licenses import (
    KNOWN_LICENSES,
    UNKNOWN,
    detect_license_in_text,
    normalize_license_id,
)

MAX_HEADER_LINES = 80
_SEPARATOR = r"\s*(?::|=|\s-|\u2013|\u2014)\s*"
_AUTHOR = re.compile(r"^authors?" + _SEPARATOR + r"(?P<value>.+)$", re.IGNORECASE)
_BY = re.compile(r"^(?:(?:created|written|made|coded)\s+)?by\s+(?P<value>[^.!?]{1,80})$", re.IGNORECASE)
# "by NAME" is also how prose starts ("by folding space into itself..."), so only a short name counts.
MAX_BY_NAME_WORDS = 4
_TITLE = re.compile(r"^title" + _SEPARATOR + r"(?P<value>.+)$", re.IGNORECASE)
_LICENSE = re.compile(r"^(?:licen[cs]e[ds]?" + _SEPARATOR + r"|spdx-license-identifier\s*:\s*)(?P<value>.+)$",
                      re.IGNORECASE)
# What follows a name on the same line: "iq - 2013", "Jane (jane.example)", "Joe <joe@example.org>".
_AFTER_NAME = re.compile(r"\s+-\s.*$|\s*[(<\[].*$|\s*/\s*\d.*$|,\s*\d{4}.*$")


@dataclass(frozen=True)
class FileHeader:
    author: str = ""
    title: str = ""
    license: str | None = None  # our licence id, when a licence line is there


def header_lines(code: str) -> list[str]:
    """The text of each comment line before the first line of code, comment markers removed."""
    found: list[str] = []
    in_block = False
    for raw in code.lstrip("\ufeff").splitlines()[:MAX_HEADER_LINES]:
        line = raw.strip()
        if in_block:
            text, closed, _ = line.partition("*/")
            found.append(text)
            in_block = not closed
        elif not line:
            continue
        elif line.startswith("//"):
            found.append(line[2:])
        elif line.startswith("/*"):
            text, closed, _ = line[2:].partition("*/")
            found.append(text)
            in_block = not closed
        else:
            break
    return [text.strip().lstrip("*/!").strip() for text in found if text.strip()]


def _declared_license(value: str) -> str:
    """A licence line's value as our id: an id we know, else the licence its words name, else kept as declared."""
    normalized = normalize_license_id(value.strip().rstrip("."))
    if all(part in KNOWN_LICENSES for part in normalized.split(" ")[0::2]) and normalized != UNKNOWN:
        return normalized
    return detect_license_in_text(f"License: {value}") or normalized


def _name(value: str) -> str:
    return _AFTER_NAME.sub("", value).strip(" \t-:,;")[:200]


def _author(line: str) -> str:
    if match := _AUTHOR.match(line):
        return _name(match.group("value"))
    if match := _BY.match(line):
        name = _name(match.group("value"))
        return name if len(name.split()) <= MAX_BY_NAME_WORDS else ""
    return ""


def parse_header(code: str) -> FileHeader:
    author = title = ""
    license_id: str | None = None
    for line in header_lines(code):
        if not author and (found := _author(line)):
            author = found
        elif not title and (match := _TITLE.match(line)):
            title = match.group("value").strip()[:500]
        elif license_id is None and (match := _LICENSE.match(line)):
            license_id = _declared_license(match.group("value"))
    return FileHeader(author=author, title=title, license=license_id)
