"""`local`: the four formats, detected per file, from fixture files written here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harvester.errors import HarvestError
from harvester.sources import SourceSettings
from tests.fakes.crawling import crawl, failures, passes_of, programs
from tests.fakes.servers import api_shader

IMAGE = "void mainImage(out vec4 c, in vec2 p){{ c = vec4({v}); }}"


def _flat(shader_id: str, v: str, **extra) -> dict:
    record = {
        "id": shader_id, "name": f"flat {shader_id}", "author": "flatter", "description": "", "tags": ["a"],
        "likes": 4, "viewed": 40, "published": "Public", "date": "1393353675",
        "image_code": IMAGE.format(v=v), "image_inputs": [
            {"id": "x", "src": "/media/a/noise.png", "ctype": "texture", "channel": 0, "sampler": {}, "published": 1},
            {"id": "y", "src": "/presets/keyboard.png", "ctype": "keyboard", "channel": 3, "sampler": {}, "published": 1}],
        "common_code": "", "buffer_a_code": "void mainImage(out vec4 c, in vec2 p){ c = vec4(1); }",
        "buffer_a_inputs": [], "buffer_b_code": "", "buffer_b_inputs": [], "buffer_c_code": "", "buffer_c_inputs": [],
        "buffer_d_code": "", "buffer_d_inputs": [], "cube_a_code": "", "cube_a_inputs": [], "sound_code": "",
        "sound_inputs": [], "license": "cc-by-nc-sa-3.0",
    }
    record.update(extra)
    return record


def _export(shader_id: str, v: str) -> dict:
    shader = api_shader(shader_id, IMAGE.format(v=v), username="exporter")
    shader["renderpass"][0]["inputs"] = [
        {"id": 17, "filepath": "/media/a/cube.png", "previewfilepath": "/media/ap/cube.png", "type": "cubemap",
         "channel": 1, "sampler": {}, "published": 1}]
    return shader


@pytest.fixture()
def dumps(tmp_path):
    root = tmp_path / "dumps"
    (root / "api").mkdir(parents=True)
    (root / "api" / "one.json").write_text(json.dumps({"Shader": api_shader("apiOne", IMAGE.format(v="0.1"))}))
    (root / "api" / "list.json").write_text(json.dumps([{"Shader": api_shader(f"apiL{i}", IMAGE.format(v=f"0.{i}2"))}
                                                         for i in range(2)]))
    (root / "api" / "lines.jsonl").write_text("\n".join(
        json.dumps({"Shader": api_shader(f"apiJ{i}", IMAGE.format(v=f"0.{i}3"))}) for i in range(2)) + "\n")
    (root / "export.json").write_text(json.dumps([_export("expA", "0.4"), _export("expB", "0.5")]))
    (root / "flat.jsonl").write_text("\n".join([
        json.dumps(_flat("flatA", "0.6")),
        json.dumps(_flat("flatB", "0.7", license="mit")),
        "{this is not json",
        json.dumps({"id": "noCode", "image_code": ""}),
        json.dumps({"something": "else"}),
    ]) + "\n")
    (root / "progs").mkdir()
    (root / "progs" / "sandbox.frag").write_text(
        "// Released under the MIT License\nuniform float time;\nuniform vec2 resolution;\n"
        "void main(){ gl_FragColor = vec4(sin(time)); }\n")
    (root / "progs" / "book.glsl").write_text(
        "uniform vec2 u_resolution;\nvoid main(){ gl_FragColor = vec4(gl_FragCoord.xy/u_resolution, 0., 1.); }\n")
    (root / "progs" / "vertex.glsl").write_text("attribute vec3 p; void main(){ gl_Position = vec4(p, 1.); }\n")
    (root / "README.md").write_text("not a program, ignored")
    return root


def test_folder_of_every_format(catalog, dumps):
    summary = crawl(catalog, "local", SourceSettings(path=dumps))
    rows = {p.source_id.rsplit("/", 1)[-1]: p for p in programs(catalog)}
    assert set(rows) == {"apiOne", "apiL0", "apiL1", "apiJ0", "apiJ1", "expA", "expB", "flatA", "flatB",
                         "sandbox.frag", "book.glsl"}
    assert (summary.new, summary.failed) == (11, 4)
    reasons = {f.item: f.reason for f in failures(catalog)}
    assert reasons["flat.jsonl:3"].startswith("malformed JSON")
    assert reasons["flat.jsonl:4"] == "flat record noCode has no image_code"
    assert "unknown shape" in reasons["flat.jsonl:5"]
    assert reasons["progs/vertex.glsl"].startswith("not a fragment program")

    flat = rows["flatA"]
    assert (flat.source, flat.url) == ("shadertoy", "https://www.shadertoy.com/view/flatA")
    assert (flat.license, flat.license_origin, flat.buffer_passes) == ("CC-BY-NC-SA-3.0", "declared", 1)
    assert flat.published_at.replace(tzinfo=UTC) == datetime.fromtimestamp(1393353675, tz=UTC)
    assert (flat.likes, flat.views, flat.author, flat.tags) == (4, 40, "flatter", ["a"])
    flat_passes = {p.kind: p for p in passes_of(catalog, flat.id)}
    assert set(flat_passes) == {"image", "buffer_a"}
    assert flat_passes["image"].inputs == [{"channel": 0, "ctype": "texture", "src": "/media/a/noise.png"},
                                           {"channel": 3, "ctype": "keyboard", "src": "/presets/keyboard.png"}]
    assert rows["flatB"].license == "MIT"

    export = rows["expA"]
    assert export.author == "exporter" and export.license == "CC-BY-NC-SA-3.0"
    assert passes_of(catalog, export.id)[0].inputs == [{"channel": 1, "ctype": "cubemap", "src": "/media/a/cube.png"}]

    sandbox, book = rows["sandbox.frag"], rows["book.glsl"]
    assert (sandbox.source, sandbox.dialect, sandbox.license, sandbox.license_origin) == ("local", "glslsandbox", "MIT", "detected")
    # Identified by the path under --path, with no file:// URL: nothing of this machine's layout is stored.
    assert (sandbox.source_id, sandbox.url, sandbox.title) == ("progs/sandbox.frag", "", "sandbox")
    assert (book.dialect, book.license) == ("bookofshaders", "unknown")


def test_single_files_and_rerun(catalog, dumps):
    one = crawl(catalog, "local", SourceSettings(path=dumps / "api" / "one.json"))
    assert one.new == 1
    again = crawl(catalog, "local", SourceSettings(path=dumps))
    assert again.skipped == 1 and again.new == 10


def test_extensionless_dump_is_sniffed(catalog, tmp_path):
    dump = tmp_path / "dump"
    dump.write_text(json.dumps(_flat("sniffA", "0.1")) + "\n" + json.dumps(_flat("sniffB", "0.2")) + "\n")
    assert crawl(catalog, "local", SourceSettings(path=dump)).new == 2


MULTI_HOST = """// #define GLSLSANDBOX
#ifdef GLSLSANDBOX
uniform float time;
#define iTime time
#endif
void mainImage(out vec4 c, in vec2 p) { c = vec4(fract(iTime)); }
#ifdef GLSLSANDBOX
void main() { mainImage(gl_FragColor, gl_FragCoord.xy); }
#endif
"""


def test_shadertoy_records_keep_their_dialect_whatever_their_ifdefs_serve(catalog, tmp_path):
    dump = tmp_path / "multi.jsonl"
    dump.write_text(json.dumps(_flat("multiA", "0", image_code=MULTI_HOST)) + "\n")
    assert crawl(catalog, "local", SourceSettings(path=dump)).new == 1
    assert [p.dialect for p in programs(catalog)] == ["shadertoy"]


def test_missing_path_is_one_clear_error(catalog, tmp_path):
    with pytest.raises(HarvestError, match="no such file or folder"):
        crawl(catalog, "local", SourceSettings(path=tmp_path / "nope"))
    with pytest.raises(HarvestError, match="needs --path"):
        crawl(catalog, "local", SourceSettings())
    with pytest.raises(HarvestError, match="--url does not apply"):
        crawl(catalog, "local", SourceSettings(path=tmp_path, url="x"))
    with pytest.raises(HarvestError, match="unknown source 'nope'"):
        crawl(catalog, "nope", SourceSettings())


SAMPLES = Path(__file__).resolve().parent.parent / "harvester" / "samples"
BODY = "void mainImage(out vec4 c, in vec2 p) {{ c = vec4({v}); }}\n"


def test_loose_file_headers_give_author_title_and_declared_licence(catalog, tmp_path):
    files = {
        "block.frag": "/*\n * Title: Rings\n * Author - Jane Doe <jane@example.org>\n * Licence: CC BY 4.0\n */\n",
        "spdx.frag": "// by Bob\n// SPDX-License-Identifier: MIT OR Apache-2.0\n",
        "words.frag": "// Created by Ann Lee - 2021\n// License: Creative Commons Attribution-ShareAlike 4.0 International\n",
        "own.frag": "// Author: Kim\n// License: do what you like\n",
        "prose.frag": "// by folding space into itself we get a fractal\n// Released under the MIT License\n",
        "late.frag": "",  # the comments below the code are not a header
    }
    for index, (name, header) in enumerate(files.items()):
        (tmp_path / name).write_text(header + BODY.format(v=f"0.{index}") + ("// Author: nobody\n// License: MIT\n"
                                                                                if name == "late.frag" else ""))
    assert crawl(catalog, "local", SourceSettings(path=tmp_path)).new == len(files)
    got = {p.source_id: (p.title, p.author, p.license, p.license_origin) for p in programs(catalog)}
    assert got == {
        "block.frag": ("Rings", "Jane Doe", "CC-BY-4.0", "declared"),
        "spdx.frag": ("spdx", "Bob", "MIT OR Apache-2.0", "declared"),
        "words.frag": ("words", "Ann Lee", "CC-BY-SA-4.0", "declared"),
        "own.frag": ("own", "Kim", "LicenseRef-do-what-you-like", "declared"),
        "prose.frag": ("prose", "", "MIT", "detected"),
        "late.frag": ("late", "", "MIT", "detected"),
    }


def test_bundled_samples_keep_the_author_and_licence_they_declare(catalog):
    crawl(catalog, "local", SourceSettings(path=SAMPLES))
    loose = [p for p in programs(catalog) if p.source == "local"]
    assert len(loose) == len(list(SAMPLES.glob("*.frag")))
    assert {(p.author, p.license, p.license_origin) for p in loose} == {("harvest contributors", "CC0-1.0", "declared")}
    assert {p.source_id for p in loose} == {path.name for path in SAMPLES.glob("*.frag")}
    assert all(p.url == "" for p in loose)
