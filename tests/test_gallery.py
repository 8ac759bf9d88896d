"""`harvest gallery`: one self-contained page, grouped by verdict, with everything from outside escaped."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from corpus.db import open_catalog
from corpus.errors import CorpusError
from corpus.export import ExportOptions, export_catalog
from corpus.gallery import write_gallery
from corpus.models import Score, Validation
from harvester.cli import app
from renderer.images import png_bytes
from tests.test_export_programs import add_program


def test_gallery_groups_escapes_and_embeds(catalog, tmp_path):
    good = add_program(catalog, "good", "void mainImage(out vec4 c, in vec2 p){ c = vec4(1.0); }",
                       title='<script>alert("x")</script>', author="a&b")
    add_program(catalog, "bad", "void mainImage(", verdict="compile_error", reason="0:1(1): error: <unexpected>")
    png = png_bytes(np.full((8, 8, 3), 200, np.uint8))
    with catalog.session() as session:
        row = session.get(Validation, good)
        row.thumbnail_png = png
        session.add(row)
        session.add(Score(program_id=good, diversity=0.42, colorfulness=12.0, fill=0.9))
    out = tmp_path / "g.html"
    assert write_gallery(catalog, out) == 2
    page = out.read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page and "a&amp;b" in page
    assert "&lt;unexpected&gt;" in page and "0.42" in page
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert page.index('id="v-ok"') < page.index('id="v-compile_error"')
    assert write_gallery(catalog, out, verdict="compile_error") == 1
    assert "alert" not in out.read_text()
    with pytest.raises(CorpusError, match="no programs with verdict 'timeout'"):
        write_gallery(catalog, tmp_path / "none.html", verdict="timeout")
    assert not (tmp_path / "none.html").exists()


def test_gallery_cli(catalog, tmp_path):
    add_program(catalog, "one", "void mainImage(out vec4 c, in vec2 p){ c = vec4(1.0); }")
    result = CliRunner().invoke(app, ["gallery", "--db", str(catalog.path), "--out", str(tmp_path / "g.html"), "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.html").read_text().startswith("<!DOCTYPE html>")


def _three_ok(catalog) -> list[int]:
    code = "void mainImage(out vec4 c, in vec2 p){{ c = vec4({}); }}"
    return [add_program(catalog, f"p{i}", code.format(i / 4), license="MIT" if i else "CC-BY-NC-SA-3.0") for i in range(3)]


def _exported_cards(page: str) -> list[int]:
    return [int(m) for m in re.findall(r'<figure class="card in-export" data-id="(\d+)"', page)]


def test_gallery_marks_the_programs_of_the_export_beside_the_catalog(catalog, tmp_path):
    ids = _three_ok(catalog)
    add_program(catalog, "bad", "void mainImage(", verdict="compile_error")
    out = tmp_path / "g.html"
    write_gallery(catalog, out)
    assert _exported_cards(out.read_text()) == [] and "in the export" not in out.read_text()  # no export yet
    export_catalog(catalog, ExportOptions(commercial_safe=True))  # the default folder: export/ beside the catalog
    write_gallery(catalog, out)
    page = out.read_text()
    assert _exported_cards(page) == ids[1:]
    assert "ok: 3 (2 in the export)" in page and "2 programs on this page marked" in page


def test_gallery_marks_a_given_export_and_refuses_another_catalogs(catalog, tmp_path):
    ids = _three_ok(catalog)
    export_catalog(catalog, ExportOptions(out=tmp_path / "published", limit=1, seed=1))
    out = tmp_path / "g.html"
    write_gallery(catalog, out, export=tmp_path / "published")
    [marked] = _exported_cards(out.read_text())
    assert marked in ids and "1 program on this page marked" in out.read_text()
    other = open_catalog(tmp_path / "other.db")
    try:
        add_program(other, "x", "void mainImage(out vec4 c, in vec2 p){ c = vec4(1.0); }")
        with pytest.raises(CorpusError, match="is an export of catalog harvest.db, not of other.db"):
            write_gallery(other, tmp_path / "o.html", export=tmp_path / "published")
    finally:
        other.close()
    with pytest.raises(CorpusError, match="does not exist"):
        write_gallery(catalog, out, export=tmp_path / "nowhere")
