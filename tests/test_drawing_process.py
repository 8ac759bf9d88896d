"""The killable drawing process: same pixels as drawing in-process, deadlines kill the child, the caller goes on."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.compiler import compile_program
from renderer.drawing_process import DrawFailed, DrawingProcess, DrawTimeout
from renderer.jobs import FrameSpec, ProgramSource
from tests.counting_program import COUNTER
from tests.slow_programs import ENDLESS_FRAME

GRADIENT = ProgramSource(
    "shadertoy",
    "void mainImage(out vec4 c, in vec2 p) { c = vec4(p / iResolution.xy, 0.5 + 0.5 * sin(iTime), 1.0); }",
)
# llvmpipe stops a loop after 65,535 iterations per pixel, so this draws, but takes seconds at 128x128.
HEAVY = ProgramSource(
    "shadertoy",
    """void mainImage(out vec4 c, in vec2 p) {
    float s = p.x;
    for (int i = 0; i < 65000; i++) { s = fract(sin(s * 12.9898 + float(i)) * 43758.5453); }
    c = vec4(s);
}""",
)
NEVER_ENDS = ProgramSource("shadertoy", ENDLESS_FRAME)
BROKEN = ProgramSource("shadertoy", "void mainImage(out vec4 c, in vec2 p) { c = undefined_thing; }")


@pytest.fixture
def process():
    drawing = DrawingProcess()
    yield drawing
    drawing.close()


def test_draws_the_same_pixels_as_the_renderer_in_process(process, gl_context):
    frame = FrameSpec(time=1.5, mouse=(3.0, 4.0, 3.0, 4.0))
    assert process.compile(1, GRADIENT, deadline_s=30)
    remote = process.render(1, frame, 24, 16, deadline_s=10)
    # The tests' own context: releasing a second one would leave none current for the tests that follow.
    local = compile_program(gl_context, GRADIENT)
    expected = local.render(frame, 24, 16)
    local.release()
    assert remote.shape == (16, 24, 3) and remote.dtype == np.uint8
    assert np.array_equal(remote, expected)
    assert not process.compile(2, BROKEN, deadline_s=30)  # a compile error is an answer, not a failure
    with pytest.raises(KeyError):
        process.render(2, frame, 8, 8, deadline_s=10)


def test_a_frame_past_its_deadline_kills_the_child_and_the_next_request_starts_afresh(process):
    assert process.compile(1, GRADIENT, deadline_s=30) and process.compile(2, NEVER_ENDS, deadline_s=30)
    first_pid = process.pid
    with pytest.raises(DrawTimeout):  # the frame would never end: only the deadline can end this call
        process.render(2, FrameSpec(time=1.0), 128, 128, deadline_s=0.5)
    assert process.restarts == 1 and process.pid is None
    # The programs the caller still holds are compiled again in the new child on first use.
    pixels = process.render(1, FrameSpec(time=1.0), 8, 8, deadline_s=30)
    assert pixels[..., 0].max() > pixels[..., 0].min()
    assert process.pid not in (None, first_pid)
    assert process.render(2, FrameSpec(time=1.0), 2, 2, deadline_s=30).shape == (2, 2, 3)


def test_a_child_that_dies_is_reported_and_replaced(process):
    import os
    import signal

    assert process.compile(1, GRADIENT, deadline_s=30)
    os.kill(process.pid, signal.SIGKILL)
    with pytest.raises(DrawFailed):
        process.render(1, FrameSpec(time=0.0), 4, 4, deadline_s=10)
    assert process.render(1, FrameSpec(time=0.0), 4, 4, deadline_s=30).shape == (4, 4, 3)


def test_a_simulation_goes_on_between_requests_and_restarts_when_told(process):
    def frame(n: int) -> FrameSpec:
        return FrameSpec(time=n / 60, frame=n)

    assert process.compile(1, COUNTER, deadline_s=30) and process.compile(2, GRADIENT, deadline_s=30)
    assert process.steps_to(2, frame(5), 8, 8, deadline_s=10) == 0  # single-pass: nothing to simulate
    assert process.steps_to(1, frame(5), 8, 8, deadline_s=10) == 6  # the warm-up drew 1x1: from frame 0
    counted = process.render(1, frame(5), 8, 8, deadline_s=30)
    assert process.steps_to(1, frame(5), 8, 8, deadline_s=10) == 0  # the same frame again: no step
    assert process.steps_to(1, frame(9), 8, 8, deadline_s=10) == 4
    assert process.steps_to(1, frame(2), 8, 8, deadline_s=10) == 3  # behind it: from frame 0
    later = process.render(1, frame(9), 8, 8, deadline_s=30)
    process.restart(1)
    assert process.steps_to(1, frame(9), 8, 8, deadline_s=10) == 10
    assert np.array_equal(process.render(1, frame(9), 8, 8, deadline_s=30), later)
    assert (int(counted[0, 0, 0]), int(later[0, 0, 0])) == (6, 10)  # the buffer counted every step, once
    process.close()  # a fresh child has lost the simulation: it starts from frame 0 and draws the same frame
    assert process.steps_to(1, frame(9), 8, 8, deadline_s=10) == 10
    assert np.array_equal(process.render(1, frame(9), 8, 8, deadline_s=30), later)
