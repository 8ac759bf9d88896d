"""ATTRIBUTION.md of an export: every program with its author and licence, grouped by licence.

Titles, authors and licence ids come from outside, so each is flattened to one line with Markdown and HTML
characters escaped; only http(s) URLs become links.
"""

from __future__ import annotations

import re

from corpus.export_format import SampleMetadata
from corpus.licenses import KNOWN_LICENSES
from corpus.wording import counted

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
_LINKABLE = re.compile(r"^https?://[^\s<>()]+$")


def _md(text: str) -> str:
    """Text from outside, safe inside a Markdown line: one line, Markdown and HTML characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split())) or "untitled"


def _md_url(url: str | None) -> str | None:
    url = (url or "").strip()
    return url if _LINKABLE.match(url) else None


def attribution_markdown(samples: list[SampleMetadata]) -> str:
    lines = [
        "# Attribution",
        "",
        f"This dataset holds {counted(len(samples), 'program')} by their authors, each under its own licence, "
        "grouped below.",
        "",
    ]
    by_license: dict[str, list[SampleMetadata]] = {}
    for sample in samples:
        by_license.setdefault(sample.license, []).append(sample)
    for license_id in sorted(by_license):
        info = KNOWN_LICENSES.get(license_id)
        name = f" ({info.name})" if info else ""
        group = sorted(by_license[license_id], key=lambda s: s.id)
        lines += [f"## {_md(license_id)}{name}: {counted(len(group), 'program')}", ""]
        for sample in group:
            url = _md_url(sample.url)
            title = f"[{_md(sample.title)}]({url})" if url else _md(sample.title)
            lines.append(f"- {title} by {_md(sample.author or 'unknown author')} ({_md(sample.source)}, `{sample.key}`)")
        lines.append("")
    return "\n".join(lines)
