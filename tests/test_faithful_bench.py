"""bench/faithful.py's multi-pass half: which programs it compares, the causes it reads from a record,
and harvest's snapshot server drawing frames of a simulation as `harvest render --frame N` does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from _faithful_causes import multipass_causes
from _faithful_multipass import causes_at, multipass_samples

BUFFER_A_OUTPUT = 257  # Shadertoy's output id of Buffer A


def _read(channel: int, ctype: str = "buffer", src: str = "/media/previz/buffer00.png", filter_: str = "linear",
          input_id: int = BUFFER_A_OUTPUT) -> dict:
    return {"id": input_id, "src": src, "ctype": ctype, "channel": channel,
            "sampler": {"filter": filter_, "wrap": "clamp", "vflip": "true"}}


def _shader(shader_id: str, image: str, image_inputs: list[dict], buffer_a: str | None = None,
            buffer_inputs: list[dict] | None = None, extra: list[dict] | None = None) -> dict:
    passes = [{"name": "Image", "type": "image", "code": image, "inputs": image_inputs,
               "outputs": [{"id": 37, "channel": 0}]}]
    if buffer_a is not None:
        passes.append({"name": "Buffer A", "type": "buffer", "code": buffer_a, "inputs": buffer_inputs or [],
                       "outputs": [{"id": BUFFER_A_OUTPUT, "channel": 0}]})
    return {"ver": "0.1", "info": {"id": shader_id, "name": shader_id, "username": "tester"},
            "renderpass": passes + (extra or [])}


# Buffer A adds 1/255 to its own last frame: after frame n it holds (n + 1) / 255 (zero before frame 0).
COUNTER = _shader(
    "cntAAA",
    "void mainImage(out vec4 c, in vec2 p) { c = vec4(texelFetch(iChannel0, ivec2(p), 0).rgb, 1.0); }",
    [_read(0)],
    "void mainImage(out vec4 c, in vec2 p) { c = texelFetch(iChannel0, ivec2(p), 0) + vec4(1.0 / 255.0); }",
    [_read(0)],
)
PLAIN = "void mainImage(out vec4 c, in vec2 p) { c = vec4(1.0); }"


def _write_dump(folder: Path, shaders: list[dict]) -> None:
    with open(folder / "2022-01.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"Shader": shader}) + "\n" for shader in shaders)


def test_only_programs_reading_buffers_and_the_keyboard_are_compared(tmp_path):
    keyboard = _shader("kbdAAA", PLAIN, [_read(1, "keyboard", "/presets/tex00.jpg")], PLAIN)
    texture = _shader("texAAA", PLAIN, [], PLAIN, [_read(0, "texture", "/media/a/noise.png", "mipmap", 30)])
    cube = _shader("cubAAA", PLAIN, [], PLAIN, extra=[{"name": "Cube A", "type": "cubemap", "code": PLAIN,
                                                      "inputs": [], "outputs": []}])
    single = _shader("oneAAA", PLAIN, [])
    _write_dump(tmp_path, [COUNTER, keyboard, texture, cube, single])

    selection = multipass_samples(tmp_path)

    assert [s.id for s in selection.samples] == ["cntAAA", "kbdAAA"]
    assert selection.multipass == 4
    assert dict(selection.left_out) == {"reads texture": 1, "Cube A pass": 1}


def test_a_buffer_reading_itself_is_feedback_but_not_at_frame_0(tmp_path):
    _write_dump(tmp_path, [COUNTER])
    sample = multipass_samples(tmp_path).samples[0]

    assert "feedback" in sample.causes
    assert "feedback" not in causes_at(sample, 0)
    assert "feedback" in causes_at(sample, 9)


def test_record_causes_mipmapped_buffers_keyboard_and_image_only_fragcoord():
    uses_fragcoord = "void mainImage(out vec4 c, in vec2 p) { c = vec4(gl_FragCoord.y); }"
    in_buffer = _shader("fcdAAA", PLAIN, [_read(0, filter_="mipmap")], uses_fragcoord,
                        [_read(2, "keyboard", "/presets/tex00.jpg")])
    in_image = _shader("fcdBBB", uses_fragcoord, [_read(0)], PLAIN)

    assert multipass_causes(in_buffer) == ["buffer-mipmap", "keyboard"]
    assert multipass_causes(in_image) == ["gl_FragCoord"]


def test_harvest_snapshot_simulates_a_feedback_counter(tmp_path, gl_context):
    from _harvest_snapshot import SIZE, snapshot_simulation

    outs = [str(tmp_path / f"f{n}.npy") for n in (0, 9, 59)]
    snapshot_simulation(gl_context, COUNTER, [0, 9, 59], outs)

    for number, out in zip((0, 9, 59), outs):
        pixels = np.load(out)
        assert pixels.shape == (SIZE, SIZE, 3)
        assert np.all(pixels == number + 1), f"frame {number}"


def test_harvest_snapshot_single_pass_gets_wgpu_uniforms(tmp_path, gl_context):
    from _harvest_snapshot import WGPU_TIME_DELTA, snapshot_single

    out = str(tmp_path / "single.npy")
    snapshot_single(gl_context, "void mainImage(out vec4 c, in vec2 p) { c = vec4(iTimeDelta, iDate.x, 0.0, 1.0); }", out)

    pixels = np.load(out)
    assert pixels[0, 0].tolist() == [round(WGPU_TIME_DELTA * 255), 0, 0]


def test_harvest_snapshot_answers_a_bad_record_with_an_error(tmp_path, gl_context):
    from _harvest_snapshot import answer

    reply = answer(gl_context, {"key": "bad", "shader": {"info": {}}, "frames": [0], "outs": [str(tmp_path / "x.npy")]})

    assert reply["key"] == "bad"
    assert reply["error"].startswith("record: ")


def test_a_macro_that_opens_main_image_does_not_make_its_body_globals():
    common = "vec2 R;\n#define Main void mainImage(out vec4 Q, vec2 U){ R = iResolution.xy;\n"
    shader = _shader("macAAA", "Main Q = vec4(length(U / R)); }", [_read(0)], "Main Q = vec4(1); }")
    shader["renderpass"].append({"name": "Common", "type": "common", "code": common, "inputs": [], "outputs": []})

    assert multipass_causes(shader) == []


def test_a_hash_without_sine_is_a_precision_pattern():
    common = "float h(vec2 p) { vec3 q = fract(vec3(p.xyx) * .1031); q += dot(q, q.yzx + 33.33); return fract((q.x + q.y) * q.z); }"
    shader = _shader("hshAAA", PLAIN, [_read(0)], PLAIN)
    shader["renderpass"].append({"name": "Common", "type": "common", "code": common, "inputs": [], "outputs": []})

    assert multipass_causes(shader) == ["fract-hash"]
