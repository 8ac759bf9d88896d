"""Media channels: `--media-dir` binding (textures, vflip, cubemaps, volumes), typed stand-ins at the website's
sizes, stand-in recording in verdicts and the export manifest, `export --exact-only`, and hostile media."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import select

from corpus.errors import CorpusError
from corpus.export import ExportOptions, export_catalog
from corpus.ingest import ingest_program
from corpus.models import Validation
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from corpus.validation import ValidateOptions, validate
from renderer.drawing_process import DrawingProcess
from renderer.executor_spec import ExecutorSpec
from renderer.jobs import ChannelBinding, ChannelSampler, FrameSpec, ProgramSource, RenderJob, RenderResult, Verdict
from renderer.media import MEDIA_DIR_ENV, MEDIA_PRESETS, media_name
from renderer.worker import render_job
from tests.cli import harvest

GRAY_NOISE_SMALL = "/media/a/0a40562379b63dfb89227e6d172f39fdce9022cba76623f1054a2c83d6c0ba5d.png"
RGBA_NOISE_3D = "/media/a/aea6b99da1d53055107966b59ac5444fc8bc7b3ce2d0bbb6a4a3cbae1d97f3aa.bin"
# Copies channel 0's texels to the canvas one for one (a 4x4 canvas shows a 4x4 image whole).
SHOW_TEXELS = "void mainImage(out vec4 c, in vec2 f) { c = vec4(texelFetch(iChannel0, ivec2(f), 0).rgb, 1.0); }\n"
# Channel 0's iChannelResolution as colours: red = width, green = height, blue = depth (clamped to 255).
# The texel read adds nothing (a texel is never above 2) but keeps the channel in use.
SHOW_RESOLUTION = ("void mainImage(out vec4 c, in vec2 f) {\n"
                   "    c = vec4(iChannelResolution[0] / 255.0 + step(2.0, texture(iChannel0, vec2(0.5)).r), 1.0);\n}\n")


@pytest.fixture()
def ctx(gl_context):
    return gl_context


def _checker(folder: Path, name: str = "x.png") -> np.ndarray:
    """A 4x4 RGB image, every texel its own colour: rows top to bottom, as a PNG stores them."""
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    for y in range(4):
        for x in range(4):
            pixels[y, x] = (40 + 60 * x, 40 + 60 * y, 200 if (x + y) % 2 else 10)
    Image.fromarray(pixels).save(folder / name)
    return pixels


def _draw(ctx, code: str, binding: ChannelBinding, media_dir: Path | None, size: tuple[int, int] = (4, 4)) -> RenderResult:
    source = ProgramSource("shadertoy", code, channels=(binding.kind, None, None, None), inputs=(binding, None, None, None))
    job = RenderJob(key=1, program=source, frames=(FrameSpec(time=0.0),), width=size[0], height=size[1],
                    keep_frames=True, media_dir=str(media_dir) if media_dir else None)
    result = render_job(ctx, job)
    assert result.verdict in (Verdict.OK, Verdict.BLANK), result.reason
    return result


def _texture(media: str, vflip: bool = True, kind: str = "texture") -> ChannelBinding:
    return ChannelBinding(kind, sampler=ChannelSampler("nearest", "clamp", vflip), media=media)


def test_a_media_channel_is_bound_from_the_folder_with_vflip(ctx, tmp_path):
    image = _checker(tmp_path)
    flipped = _draw(ctx, SHOW_TEXELS, _texture("/media/a/x.png", vflip=True), tmp_path)
    # vflip (the website's default for textures) uploads the image upright: the canvas, top row first, is the image.
    assert np.array_equal(flipped.frames[0], image)
    assert flipped.standins == []
    unflipped = _draw(ctx, SHOW_TEXELS, _texture("/media/a/x.png", vflip=False), tmp_path)
    assert np.array_equal(unflipped.frames[0], image[::-1])
    size = _draw(ctx, SHOW_RESOLUTION, _texture("/media/a/x.png"), tmp_path)
    assert tuple(size.frames[0][0, 0]) == (4, 4, 1)


def test_without_the_file_a_preset_stands_in_at_its_real_size_and_is_recorded(ctx, tmp_path):
    missing = _draw(ctx, SHOW_RESOLUTION, _texture(GRAY_NOISE_SMALL), tmp_path)
    assert tuple(missing.frames[0][0, 0]) == (64, 64, 1)  # Gray Noise Small is 64x64
    [standin] = missing.standins
    assert (standin.pass_kind, standin.channel, standin.kind, standin.media) == ("image", 0, "texture", GRAY_NOISE_SMALL)
    assert standin.reason == "not in --media-dir"
    assert _draw(ctx, SHOW_RESOLUTION, _texture(GRAY_NOISE_SMALL), None).standins[0].reason == "no --media-dir"
    # The stand-in is grey noise, as the website reads its grey image: red, green and blue agree.
    grey = _draw(ctx, SHOW_TEXELS, _texture(GRAY_NOISE_SMALL), None, size=(16, 16)).frames[0]
    assert np.array_equal(grey[..., 0], grey[..., 1]) and grey[..., 0].std() > 20
    volume = _draw(ctx, SHOW_RESOLUTION.replace("vec2(0.5)", "vec3(0.5)"), _texture(RGBA_NOISE_3D, kind="volume"), None)
    assert tuple(volume.frames[0][0, 0]) == (32, 32, 32)


def test_a_channel_the_code_never_reads_is_not_a_standin(ctx):
    unused = _draw(ctx, "void mainImage(out vec4 c, in vec2 f) { c = vec4(f.x / 4.0, 0.5, 0.2, 1.0); }\n",
                   _texture(GRAY_NOISE_SMALL), None)
    assert unused.standins == []


def test_names_that_escape_the_folder_are_never_read(ctx, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    secret = np.full((4, 4, 3), 77, dtype=np.uint8)
    Image.fromarray(secret).save(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", media / "link.png")
    assert media_name("/media/a/../secret.png") is None and media_name("/media/a/../../etc/passwd") is None
    for src in ("/media/a/../secret.png", "/media/a/../../etc/passwd", "/media/a/link.png", str(tmp_path / "secret.png")):
        result = _draw(ctx, SHOW_TEXELS, _texture(src), media)
        assert not (result.frames[0] == 77).all(), src
        [standin] = result.standins
        assert standin.reason in ("the record names no media file", "the media file is not a regular file inside --media-dir")
        assert str(tmp_path) not in standin.reason


def test_unusable_files_fall_back_to_the_standin_with_the_reason(ctx, tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    Image.new("L", (5000, 1)).save(tmp_path / "wide.png")
    (tmp_path / "cut.png").write_bytes(_png_bytes(tmp_path)[:60])
    reasons = {name: _draw(ctx, SHOW_TEXELS, _texture(f"/media/a/{name}.png"), tmp_path).standins[0].reason
               for name in ("text", "wide", "cut")}
    assert reasons["text"] == "the media file is not a readable PNG or JPEG image"
    assert reasons["wide"] == "the image is 5000x1; at most 4096 a side is read"
    assert reasons["cut"] == "the media image is truncated or corrupt"


def _png_bytes(folder: Path) -> bytes:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "full.png")
    return (folder / "full.png").read_bytes()


def test_a_cubemap_is_six_files_and_a_volume_the_websites_bin_format(ctx, tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    for face, colour in enumerate(colours):
        Image.new("RGB", (8, 8), colour).save(tmp_path / f"sky{f'_{face}' if face else ''}.jpg", quality=100)
    looks = ("void mainImage(out vec4 c, in vec2 f) {\n"
             "    vec3 d[6] = vec3[](vec3(1,0,0), vec3(-1,0,0), vec3(0,1,0), vec3(0,-1,0), vec3(0,0,1), vec3(0,0,-1));\n"
             "    c = vec4(texture(iChannel0, d[int(f.x)]).rgb, 1.0);\n}\n")
    cube = _draw(ctx, looks, _texture("/media/a/sky.jpg", vflip=False, kind="cubemap"), tmp_path, size=(6, 1))
    assert cube.standins == []
    assert np.abs(cube.frames[0][0].astype(int) - np.array(colours)).max() <= 8  # JPEG rounding
    (tmp_path / "sky_5.jpg").unlink()
    assert _draw(ctx, looks, _texture("/media/a/sky.jpg", kind="cubemap"), tmp_path, (6, 1)).standins[0].reason == \
        "a cubemap needs six files, NAME.ext and NAME_1.ext to NAME_5.ext"
    texels = np.arange(2 * 3 * 4, dtype=np.uint8) * 10  # depth 2, height 3, width 4, one channel
    (tmp_path / "vol.bin").write_bytes(struct.pack("<4sIIIBBH", b"BIN ", 4, 3, 2, 1, 0, 0) + texels.tobytes())
    fetch = "void mainImage(out vec4 c, in vec2 f) { c = vec4(texelFetch(iChannel0, ivec3(3, 2, 1), 0).r, 0.0, 0.0, 1.0); }\n"
    volume = _draw(ctx, fetch, _texture("/media/a/vol.bin", kind="volume"), tmp_path)
    assert volume.standins == [] and volume.frames[0][0, 0, 0] == 230  # texel (x 3, y 2, z 1) is number 23
    resolution = _draw(ctx, SHOW_RESOLUTION.replace("vec2(0.5)", "vec3(0.5)"), _texture("/media/a/vol.bin", kind="volume"),
                       tmp_path)
    assert tuple(resolution.frames[0][0, 0]) == (4, 3, 2)
    (tmp_path / "short.bin").write_bytes(struct.pack("<4sIIIBBH", b"BIN ", 64, 64, 64, 1, 0, 0))
    assert _draw(ctx, fetch, _texture("/media/a/short.bin", kind="volume"), tmp_path).standins[0].reason == \
        "the volume file is shorter than its size says"


# --- recorded by validation, written by export ----------------------------------------------------------------

READS_X = "void mainImage(out vec4 c, in vec2 f) { c = vec4(texture(iChannel0, f / 32.0).rgb, 1.0); }\n"
PROCEDURAL = "void mainImage(out vec4 c, in vec2 f) { c = vec4(f.x / 32.0, f.y / 32.0, 0.5, 1.0); }\n"


def _add(catalog, source_id: str, code: str, inputs=()) -> int:
    fetched = FetchedProgram(source="shadertoy", source_id=source_id, url="", title=source_id, author="harvest tests",
                             passes=[FetchedPass("image", code, list(inputs))], dialect="shadertoy", license="CC0-1.0")
    with catalog.session() as session:
        return ingest_program(session, fetched).program_id


def _validate(catalog, media_dir: Path) -> dict[int, Validation]:
    options = ValidateOptions(size=32, frames=2, revalidate=True, score=False, signatures=False)
    with ExecutorSpec(workers=1, media_dir=str(media_dir)).build() as pool:
        validate(catalog, pool, options)
    with catalog.session() as session:
        return {row.program_id: row for row in session.exec(select(Validation)).all()}


def test_validation_records_standins_and_export_exact_only_keeps_exact_programs(catalog, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    textured = _add(catalog, "textured", READS_X, [ChannelInput(0, "texture", "/media/a/x.png", vflip=True)])
    plain = _add(catalog, "plain", PROCEDURAL)
    rows = _validate(catalog, media)
    assert rows[textured].verdict == "ok" and rows[plain].verdict == "ok"
    assert rows[textured].standins == [{"pass": "image", "channel": 0, "kind": "texture", "media": "/media/a/x.png",
                                        "reason": "not in --media-dir"}]
    assert rows[plain].standins == []

    everything = export_catalog(catalog, ExportOptions(out=tmp_path / "all", format="jsonl"))
    exact = export_catalog(catalog, ExportOptions(out=tmp_path / "exact", format="jsonl", exact_only=True))
    assert everything.exported == 2 and exact.exported == 1
    assert {s.name: s.removed for s in exact.steps}["drawn with stand-ins (or not known)"] == 1
    manifest = {e["id"]: e for e in map(json.loads, (tmp_path / "all" / "manifest.jsonl").read_text().splitlines())}
    assert manifest[textured]["standins"] == rows[textured].standins and manifest[plain]["standins"] == []
    assert [json.loads(line)["id"] for line in (tmp_path / "exact" / "manifest.jsonl").read_text().splitlines()] == [plain]

    _checker(media)  # the real media supplied: the same program is now drawn exactly
    assert _validate(catalog, media)[textured].standins == []


def test_verdicts_from_before_standins_were_recorded_are_not_exact(catalog, tmp_path):
    plain = _add(catalog, "plain", PROCEDURAL)
    with catalog.session() as session:
        session.add(Validation(program_id=plain, verdict="ok"))  # as the 0004 migration leaves older rows
    with pytest.raises(CorpusError, match=r"drawn with stand-ins \(or not known\): -1"):
        export_catalog(catalog, ExportOptions(out=tmp_path / "exact", format="jsonl", exact_only=True))


def test_media_dir_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    missing = (tmp_path / "missing", "does not exist")
    attempts = [(["validate"], (tmp_path / "file", "is not a folder")), (["validate"], missing),
                (["export", "--out", str(tmp_path / "out")], missing), (["score"], missing), (["pretrain"], missing),
                (["render", "1", "--out", str(tmp_path / "o.png")], missing)]
    for command, (bad, why) in attempts:
        result = harvest(*command, "--db", str(tmp_path / "c.db"), "--media-dir", str(bad), timeout=120)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines() == [f"error: --media-dir {bad} {why}"], command


def test_live_data_drawing_binds_media_from_the_environment_pretrain_sets(tmp_path):
    image = _checker(tmp_path)
    binding = _texture("/media/a/x.png")
    source = ProgramSource("shadertoy", SHOW_TEXELS, channels=("texture", None, None, None), inputs=(binding, None, None, None))
    process = DrawingProcess(environment={MEDIA_DIR_ENV: str(tmp_path)})
    try:
        assert process.compile(1, source, deadline_s=120.0)
        assert np.array_equal(process.render(1, FrameSpec(time=0.0), 4, 4, deadline_s=120.0), image)
    finally:
        process.close()


def test_render_command_binds_media_and_names_standins(tmp_path):
    _checker(tmp_path)
    record = {"Shader": {"ver": "0.1", "info": {"id": "media1", "name": "m", "username": "u"}, "renderpass": [{
        "name": "Image", "type": "image", "code": SHOW_TEXELS, "outputs": [{"id": 37, "channel": 0}],
        "inputs": [{"id": 1, "channel": 0, "type": "texture", "filepath": "/media/a/x.png",
                    "sampler": {"filter": "nearest", "wrap": "clamp", "vflip": "true"}}]}]}}
    (tmp_path / "record.json").write_text(json.dumps(record))
    out = tmp_path / "out.png"
    exact = harvest("render", "--file", str(tmp_path / "record.json"), "--size", "4x4", "--out", str(out),
                    "--media-dir", str(tmp_path), timeout=120)
    assert exact.returncode == 0, exact.stderr
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), _checker(tmp_path)) and "stand-in" not in exact.stderr
    standin = harvest("render", "--file", str(tmp_path / "record.json"), "--size", "4x4", "--out", str(out), timeout=120)
    assert standin.returncode == 0 and "stand-in: image iChannel0 (texture /media/a/x.png): no --media-dir" in standin.stderr


def test_the_preset_table_covers_every_media_file_the_shared_samples_name(shared_dir):
    named: set[tuple[str, str]] = set()
    for path in (shared_dir / "samples" / "shadertoy-api").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            for renderpass in json.loads(line)["Shader"]["renderpass"]:
                for raw in renderpass.get("inputs", []):
                    name = media_name(raw.get("filepath") or raw.get("src") or "")
                    kind = raw.get("type") or raw.get("ctype")
                    if name is not None and kind in ("texture", "cubemap", "volume"):
                        named.add((name.stem, kind))
    assert named and {(stem, kind) for stem, kind in named if MEDIA_PRESETS.get(stem, None) is None} == set()
    assert all(MEDIA_PRESETS[stem].kind == kind for stem, kind in named)
