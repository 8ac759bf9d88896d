"""An export records every pass: a multi-pass program read back from it is the catalog's program, frame for frame."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from corpus.errors import CorpusError
from corpus.export import ExportOptions, export_catalog
from corpus.export_format import MANIFEST_NAME, programs_from_catalog, read_export
from corpus.export_images import SIMULATION_LAST_EXPORT_FRAME, export_frame_specs
from corpus.ingest import ingest_program
from corpus.models import Validation
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from renderer.compiler import compile_program
from renderer.executor_spec import ExecutorSpec
from renderer.passes import simulation_frame

COMMON = "#define GAIN 0.02\n"
# Buffer A adds GAIN to its own red each frame, and keeps in green what Buffer B held a frame ago.
BUFFER_A = ("void mainImage(out vec4 c, in vec2 f) {\n"
            "    vec2 uv = f / iResolution.xy;\n"
            "    c = vec4(texture(iChannel0, uv).x + GAIN, texture(iChannel1, uv + 0.37).x, uv.x, 1.0);\n"
            "}\n")
# Buffer B blurs A through a mipmap, off the edge (repeat), so a wrong sampler shows in the pixels.
BUFFER_B = ("void mainImage(out vec4 c, in vec2 f) {\n"
            "    vec2 uv = f / iResolution.xy;\n"
            "    c = vec4(texture(iChannel0, uv * 1.7 - 0.2, 1.5).x * 0.9 + 0.05 * sin(iTime), 0.0, 0.0, 1.0);\n"
            "}\n")
IMAGE = ("void mainImage(out vec4 c, in vec2 f) {\n"
         "    vec2 uv = f / iResolution.xy;\n"
         "    c = vec4(texture(iChannel0, uv * 1.3).xy, texture(iChannel1, uv).x + texelFetch(iChannel2, ivec2(65, 0), 0).x, 1.0);\n"
         "}\n")


def _multipass() -> FetchedProgram:
    passes = [
        FetchedPass("common", COMMON),
        FetchedPass("buffer_a", BUFFER_A, [ChannelInput(0, "buffer", "buffer_a", filter="nearest", wrap="clamp"),
                                           ChannelInput(1, "buffer", "buffer_b", filter="linear", wrap="repeat")]),
        FetchedPass("buffer_b", BUFFER_B, [ChannelInput(0, "buffer", "buffer_a", filter="mipmap", wrap="repeat",
                                                        vflip=True)]),
        FetchedPass("image", IMAGE, [ChannelInput(0, "buffer", "buffer_a", filter="nearest", wrap="repeat"),
                                     ChannelInput(1, "buffer", "buffer_b", filter="linear", wrap="clamp"),
                                     ChannelInput(2, "keyboard", "")]),
    ]
    return FetchedProgram(source="shadertoy", source_id="feedback", url="https://example.org/feedback",
                          title="feedback", author="tests", passes=passes, license="CC0-1.0")


@pytest.fixture()
def exported(catalog, tmp_path):
    """A catalog with one ok multi-pass program, and its webdataset export."""
    with catalog.session() as session:
        program_id = ingest_program(session, _multipass()).program_id
        session.add(Validation(program_id=program_id, verdict="ok"))
    out = tmp_path / "export"
    export_catalog(catalog, ExportOptions(out=out, keep_duplicates=True))
    return catalog, out


def test_the_manifest_lists_every_pass_with_its_code_inputs_and_output(exported):
    _, out = exported
    [entry] = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert entry["format_version"] == 2
    passes = {p["name"]: p for p in entry["passes"]}
    assert list(passes) == ["Common", "Buffer A", "Buffer B", "Image"]  # drawing order
    assert [p["output"] for p in entry["passes"]] == [None, "buffer_a", "buffer_b", "image"]
    assert passes["Common"]["code"] == COMMON and passes["Buffer B"]["code"] == BUFFER_B
    assert set(passes["Image"]["inputs"]) == {"0", "1", "2"}
    reads_b = passes["Buffer A"]["inputs"]["1"]
    assert (reads_b["kind"], reads_b["buffer"]) == ("buffer", "buffer_b")
    assert reads_b["sampler"] == {"filter": "linear", "wrap": "repeat", "vflip": None}
    assert passes["Image"]["inputs"]["2"]["kind"] == "keyboard"


def test_an_exported_multipass_program_draws_the_catalogs_frames(exported, gl_context):
    catalog, out = exported
    [from_catalog] = programs_from_catalog(catalog)
    [from_export] = read_export(out)
    assert from_export.source == from_catalog.source
    assert len(from_export.source.buffers) == 2 and from_export.source.multipass
    frames = []
    for source in (from_catalog.source, from_export.source):
        program = compile_program(gl_context, source)
        try:
            frames.append([program.render(simulation_frame(n), 24, 16) for n in (0, 9, 30)])
        finally:
            program.release()
    assert all(np.array_equal(a, b) for a, b in zip(*frames))
    assert not np.array_equal(frames[0][0], frames[0][2])  # the simulation moved: the frames prove something


def test_malformed_passes_are_one_error(exported):
    _, out = exported
    manifest = out / MANIFEST_NAME
    entry = json.loads(manifest.read_text())
    for passes, message in [
        ([{"name": "Buffer E", "code": "x", "inputs": {}, "output": "buffer_e"}], "unknown, mislabelled"),
        ([{"name": "Buffer A", "code": "x", "inputs": {}, "output": "buffer_a"}], "no Image pass"),
        ([{"name": "Image", "code": "x", "inputs": {"7": {"kind": "texture"}}, "output": "image"}], "channel other"),
        ([{"name": "Image", "code": 3, "inputs": [], "output": "image"}], "malformed passes"),
        ("not a list", "malformed passes"),
    ]:
        manifest.write_text(json.dumps({**entry, "passes": passes}) + "\n")
        with pytest.raises(CorpusError, match=message):
            read_export(out)


def test_live_data_takes_multipass_programs_from_an_export_but_not_from_a_format_1_one(exported):
    from pretrain.errors import PretrainError
    from pretrain.programs import load_programs

    _, out = exported
    [program], _ = load_programs(out, None)
    assert len(program.source.buffers) == 2
    manifest = out / MANIFEST_NAME
    entry = json.loads(manifest.read_text())
    old = {name: value for name, value in entry.items() if name != "passes"} | {"format_version": 1}
    manifest.write_text(json.dumps(old) + "\n")
    [read_back] = read_export(out)
    assert read_back.source.buffer_passes == 2 and not read_back.source.buffers  # the joined code alone
    with pytest.raises(PretrainError, match="no programs to render"):
        load_programs(out, None)


COUNTER = ("void mainImage(out vec4 c, in vec2 f) {\n"
           "    c = vec4(texture(iChannel0, f / iResolution.xy).x + 1.0 / 256.0, 0.0, 0.0, 1.0);\n"
           "}\n")
# Red is the counter; green and blue are a gradient, so no frame is judged blank.
SHOW_COUNTER = ("void mainImage(out vec4 c, in vec2 f) {\n"
                "    vec2 uv = f / iResolution.xy;\n"
                "    c = vec4(texture(iChannel0, uv).x, uv, 1.0);\n"
                "}\n")


def test_export_images_of_a_simulation_are_frames_of_one_run_from_frame_0(catalog, tmp_path):
    counter = FetchedProgram(
        source="shadertoy", source_id="counter", url="https://example.org/counter", title="counter", author="tests",
        license="CC0-1.0", passes=[
            FetchedPass("buffer_a", COUNTER, [ChannelInput(0, "buffer", "buffer_a", filter="nearest")]),
            FetchedPass("image", SHOW_COUNTER, [ChannelInput(0, "buffer", "buffer_a", filter="nearest")]),
        ])
    with catalog.session() as session:
        program_id = ingest_program(session, counter).program_id
        session.add(Validation(program_id=program_id, verdict="ok"))
    out = tmp_path / "export"
    export_catalog(catalog, ExportOptions(out=out, keep_duplicates=True, images_per_program=3, image_size=16,
                                          executor=ExecutorSpec(workers=1)))
    with tarfile.open(out / "shards" / "shard-000000.tar") as tar:
        pngs = sorted((m for m in tar.getmembers() if m.name.endswith(".png")), key=lambda m: m.name)
        reds = [int(np.asarray(Image.open(io.BytesIO(tar.extractfile(m).read())))[..., 0].max()) for m in pngs]
    numbers = [spec.frame for spec in export_frame_specs(f"export:0:{program_id}", 3, 16, simulation=True)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3 and numbers[-1] <= SIMULATION_LAST_EXPORT_FRAME
    # After frames 0..n the buffer holds (n + 1) / 256: each image is the frame of the run it is named after.
    assert reds == [round((n + 1) / 256 * 255) for n in numbers]
