"""`harvest gallery`: one self-contained page, grouped by verdict, with everything from outside escaped."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from typer.testing import CliRunner

from corpus.gallery import write_gallery
from corpus.models import Score, Validation
from harvester.cli import app
from harvester.errors import HarvestError
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
    with pytest.raises(HarvestError, match="no programs with verdict 'timeout'"):
        write_gallery(catalog, tmp_path / "none.html", verdict="timeout")
    assert not (tmp_path / "none.html").exists()


def test_gallery_cli(catalog, tmp_path):
    add_program(catalog, "one", "void mainImage(out vec4 c, in vec2 p){ c = vec4(1.0); }")
    result = CliRunner().invoke(app, ["gallery", "--db", str(catalog.path), "--out", str(tmp_path / "g.html"), "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.html").read_text().startswith("<!DOCTYPE html>")
