"""`harvest gallery`: one static HTML page showing what the catalog kept and threw away.

Thumbnails are embedded as PNG data URIs, so the page is a single file that opens without a server. Every string
that came from outside (titles, authors, licences, reasons, URLs) is HTML-escaped; links are kept only for
http(s) URLs.

Programs in the last export are marked. The catalog keeps no record of exports, so the export's own manifest says
which: the folder passed as `export`, else `export/` beside the catalog when it holds one made from this catalog.
"""

from __future__ import annotations

import base64
import html
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from corpus.errors import CorpusError
from corpus.export_format import (
    DEFAULT_OUT_NAME,
    MANIFEST_NAME,
    ExportListing,
    program_key,
    read_listing,
)
from corpus.models import Program, Score, Validation
from corpus.stats import PENDING
from corpus.wording import counted

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Good programs first, then the ways a program can fail.
VERDICT_ORDER = ("ok", "blank", "needs_input", "unsupported", "timeout", "crash", "compile_error", "link_error", PENDING)


@dataclass(frozen=True)
class GalleryEntry:
    program_id: int
    title: str
    author: str
    license: str
    url: str
    source: str
    verdict: str
    reason: str
    thumbnail_png: bytes | None
    diversity: float | None
    colorfulness: float | None
    fill: float | None
    duplicate_of: int | None
    exported: bool = False  # in the export the page was made against


def load_entries(
    session, verdict: str | None = None, limit: int | None = None, exported_keys: frozenset[str] = frozenset()
) -> dict[str, list[GalleryEntry]]:
    """Entries grouped by verdict (`pending` when not validated), each group by id, at most `limit` per group;
    those whose key is in `exported_keys` are marked exported."""
    rows = session.exec(
        select(Program, Validation, Score)
        .join(Validation, Validation.program_id == Program.id, isouter=True)
        .join(Score, Score.program_id == Program.id, isouter=True)
        .order_by(Program.id)
    ).all()
    groups: dict[str, list[GalleryEntry]] = {}
    for program, validation, score in rows:
        program_verdict = validation.verdict if validation else PENDING
        if verdict is not None and program_verdict != verdict:
            continue
        group = groups.setdefault(program_verdict, [])
        if limit is not None and len(group) >= limit:
            continue
        group.append(
            GalleryEntry(
                program_id=program.id, title=program.title, author=program.author, license=program.license,
                url=program.url, source=program.source, verdict=program_verdict,
                reason=validation.reason if validation else "",
                thumbnail_png=validation.thumbnail_png if validation else None,
                diversity=score.diversity if score else None,
                colorfulness=score.colorfulness if score else None,
                fill=score.fill if score else None,
                duplicate_of=program.duplicate_of or program.near_duplicate_of,
                exported=program_key(program.source, program.id) in exported_keys,
            )
        )
    return dict(sorted(groups.items(), key=lambda kv: (_verdict_rank(kv[0]), kv[0])))


def _verdict_rank(verdict: str) -> int:
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _thumbnail(png: bytes | None) -> str:
    if not png or not png.startswith(PNG_SIGNATURE):
        return '<div class="nothumb">no image</div>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img loading="lazy" alt="" src="data:image/png;base64,{data}">'


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _card(entry: GalleryEntry) -> str:
    title = _e(entry.title or "untitled")
    if re.match(r"^https?://", entry.url.strip()):
        title = f'<a href="{_e(entry.url.strip())}" rel="noopener noreferrer">{title}</a>'
    reason = f'<div class="reason">{_e(entry.reason)}</div>' if entry.reason else ""
    duplicate = f'<div class="dup">duplicate of #{entry.duplicate_of}</div>' if entry.duplicate_of else ""
    exported = '<div class="exported">in the export</div>' if entry.exported else ""
    sort_keys = (
        f'data-id="{entry.program_id}" data-diversity="{entry.diversity if entry.diversity is not None else -1}" '
        f'data-colorfulness="{entry.colorfulness if entry.colorfulness is not None else -1}" '
        f'data-fill="{entry.fill if entry.fill is not None else -1}"'
    )
    return (
        f'<figure class="card{" in-export" if entry.exported else ""}" {sort_keys}>{_thumbnail(entry.thumbnail_png)}<figcaption>'
        f'<div class="title">{title}</div><div>by {_e(entry.author or "unknown")} · {_e(entry.source)} #{entry.program_id}</div>'
        f'<div>licence {_e(entry.license)}</div><div class="verdict v-{_e(entry.verdict)}">{_e(entry.verdict)}</div>{reason}'
        f'<div class="scores">diversity {_number(entry.diversity, 2)} · colour {_number(entry.colorfulness, 0)} · '
        f'fill {_number(entry.fill, 2)}</div>{duplicate}{exported}</figcaption></figure>'
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#111;color:#ddd}
a{color:#9cf}h2{border-bottom:1px solid #444;padding-bottom:.2em}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{width:180px;margin:0;background:#1c1c1c;border-radius:6px;padding:8px;font-size:12px}
.card img,.nothumb{width:164px;height:164px;display:block;image-rendering:pixelated;background:#000}
.nothumb{display:flex;align-items:center;justify-content:center;color:#666}
.title{font-weight:bold;margin-top:4px;overflow-wrap:anywhere}.reason{color:#f99;overflow-wrap:anywhere}
.v-ok{color:#8e8}.dup{color:#fc6}.scores{color:#aaa}
.in-export{outline:2px solid #8e8}.exported{color:#8e8;font-weight:bold}
"""

# Sorting reorders the cards inside each verdict group; nothing leaves the page.
_SCRIPT = """
function sortBy(key){document.querySelectorAll('.grid').forEach(function(g){
 var cards=Array.prototype.slice.call(g.children);
 cards.sort(function(a,b){return key==='id'?a.dataset.id-b.dataset.id:parseFloat(b.dataset[key])-parseFloat(a.dataset[key]);});
 cards.forEach(function(c){g.appendChild(c);});});}
"""


def _export_note(groups: dict[str, list[GalleryEntry]], export: ExportListing | None) -> str:
    if export is None:
        return ""
    shown = sum(e.exported for g in groups.values() for e in g)
    return (f"<p>{counted(shown, 'program')} on this page marked <span class=\"exported\">in the export</span> "
            f"{_e(export.folder.name)} (which holds {counted(len(export.keys), 'program')})</p>")


def _group_heading(verdict: str, entries: list[GalleryEntry], export: ExportListing | None) -> str:
    exported = f" ({sum(e.exported for e in entries)} in the export)" if export is not None and verdict == "ok" else ""
    return f'<h2 id="v-{_e(verdict)}">{_e(verdict)}: {len(entries)}{exported}</h2>'


def render_gallery(groups: dict[str, list[GalleryEntry]], catalog_name: str, export: ExportListing | None = None) -> str:
    total = sum(len(g) for g in groups.values())
    toc = " · ".join(f'<a href="#v-{_e(v)}">{_e(v)} ({len(g)})</a>' for v, g in groups.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>harvest gallery: {_e(catalog_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{counted(total, 'program')} from {_e(catalog_name)}</h1><p>{toc}</p>{_export_note(groups, export)}",
        '<p>sort by: <button onclick="sortBy(\'id\')">id</button> <button onclick="sortBy(\'diversity\')">diversity</button> '
        '<button onclick="sortBy(\'colorfulness\')">colourfulness</button> <button onclick="sortBy(\'fill\')">fill</button></p>',
    ]
    for verdict, entries in groups.items():
        parts.append(f'{_group_heading(verdict, entries, export)}<div class="grid">')
        parts.extend(_card(e) for e in entries)
        parts.append("</div>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def find_export(catalog, export: Path | None = None) -> ExportListing | None:
    """The export whose programs the page marks: `export` (an error when it is not an export of this catalog),
    else the default export folder beside the catalog when it holds one of this catalog's."""
    if export is None:
        default = catalog.folder / DEFAULT_OUT_NAME
        if not (default / MANIFEST_NAME).is_file():
            return None
        try:
            listing = read_listing(default)
        except CorpusError:
            return None  # not an export after all; nothing to mark
        return listing if listing.catalog_name in (None, catalog.path.name) else None
    listing = read_listing(export)
    if listing.catalog_name not in (None, catalog.path.name):
        raise CorpusError(f"{export} is an export of catalog {listing.catalog_name}, not of {catalog.path.name}")
    return listing


def write_gallery(
    catalog, out: Path, verdict: str | None = None, limit: int | None = None, export: Path | None = None
) -> int:
    """Write the page to `out` (temporary name, then rename), marking the programs of `export` (see
    `find_export`); returns how many programs it shows."""
    out = Path(out)
    if limit is not None and limit < 1:
        raise CorpusError(f"--limit must be at least 1, got {limit}")
    if out.is_dir():
        raise CorpusError(f"{out} is a folder; --out names the HTML file to write")
    if not out.resolve().parent.is_dir():
        raise CorpusError(f"folder {out.resolve().parent} for the gallery does not exist")
    listing = find_export(catalog, export)
    with catalog.session() as session:
        groups = load_entries(session, verdict, limit, listing.keys if listing else frozenset())
    if not groups:
        what = f"with verdict {verdict!r}" if verdict else "in the catalog"
        raise CorpusError(f"no programs {what}; nothing was written")
    page = render_gallery(groups, catalog.path.name, listing)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.resolve().parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(temporary, 0o644)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return sum(len(g) for g in groups.values())
