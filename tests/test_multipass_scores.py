"""Multi-pass programs get their scores and image signatures in the compile that validates them, and the values
are those `harvest score` and `harvest dedup` compute on their own (issues 11 and 14)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlmodel import select

from corpus.dedup import dedup_catalog
from corpus.ingest import ingest_program
from corpus.models import ImageSignatureRow, Score, Validation
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from corpus.scoring import SCORE_FRAMES, SCORE_SEED_KEY, SCORE_SIZE, ScoreStage, score_catalog, score_frame_set
from corpus.signatures import IMAGE_SIZE, SignatureStage, signature_frame_set
from corpus.stage_runner import CatalogProgram
from corpus.validation import ValidateOptions, validate, validation_job
from renderer.executor_spec import ExecutorSpec
from renderer.executors import LocalExecutor
from renderer.frames import frame_specs
from renderer.jobs import ProgramSource, RenderJob, Verdict
from renderer.passes import checkpoint_frames
from renderer.worker import render_job

# Buffer A: a spot circling the centre leaves a trail that fades by a fifth a frame, in a colour that turns.
ORBIT_TRAIL = (
    "void mainImage(out vec4 c, in vec2 f) {\n"
    "    vec2 uv = f / iResolution.xy;\n"
    "    vec2 spot = vec2(0.5) + 0.32 * vec2(cos(float(iFrame) * 0.11), sin(float(iFrame) * 0.07));\n"
    "    vec3 hue = 0.5 + 0.5 * cos(vec3(0.0, 2.1, 4.2) + float(iFrame) * 0.05);\n"
    "    vec3 faded = texture(iChannel0, uv).rgb * 0.8;\n"
    "    c = vec4(max(faded, hue * smoothstep(0.12, 0.08, length(uv - spot))), 1.0);\n}\n"
)
SHOW_BUFFER = "void mainImage(out vec4 c, in vec2 f) { c = texture(iChannel0, f / iResolution.xy); }\n"
# GLSL Sandbox: a bar sweeping right over its own darkening previous frame.
SWEEP = (
    "precision mediump float;\nuniform float time;\nuniform vec2 resolution;\nuniform sampler2D backbuffer;\n"
    "void main() {\n    vec2 uv = gl_FragCoord.xy / resolution;\n"
    "    float bar = step(abs(uv.x - fract(time * 0.7)), 0.06) * (0.4 + 0.6 * uv.y);\n"
    "    gl_FragColor = vec4(max(texture2D(backbuffer, uv).rgb * vec3(0.9, 0.95, 0.85), vec3(bar, 0.3 * bar, 0.0)), 1.0);\n"
    "}\n"
)


def _add_trail(catalog, source_id: str = "trail") -> int:
    reads_a = [ChannelInput(0, "buffer", "buffer_a", filter="linear", wrap="clamp")]
    fetched = FetchedProgram(source="test", source_id=source_id, url="", title=source_id,
                             author="harvest contributors", dialect="shadertoy", license="CC0-1.0",
                             passes=[FetchedPass("image", SHOW_BUFFER, reads_a),
                                     FetchedPass("buffer_a", ORBIT_TRAIL, reads_a)])
    with catalog.session() as session:
        return ingest_program(session, fetched).program_id


def _add_sweep(catalog) -> int:
    fetched = FetchedProgram(source="test", source_id="sweep", url="", title="sweep", author="harvest contributors",
                             dialect="glslsandbox", license="CC0-1.0", passes=[FetchedPass("image", SWEEP, [])])
    with catalog.session() as session:
        return ingest_program(session, fetched).program_id


def _stored(catalog) -> tuple[dict[int, tuple], dict[int, tuple]]:
    with catalog.session() as session:
        scores = {s.program_id: (s.diversity, s.colorfulness, s.fill, s.frames_used, s.method)
                  for s in session.exec(select(Score))}
        signatures = {s.program_id: (tuple(s.hashes), tuple(map(tuple, s.mean_colours)), s.method)
                      for s in session.exec(select(ImageSignatureRow))}
    return scores, signatures


class _NoRenders(ExecutorSpec):
    """An executor a stage may not even start: it has nothing to compile."""

    def build(self, shader_cache_dir=None):
        raise AssertionError("a stage compiled a program that validation had drawn")


def test_one_definition_of_the_frames_for_validation_and_the_stages():
    simulation_score = score_frame_set(simulation=True)
    numbers = [spec.frame for spec in simulation_score.frames]
    checkpoints = [spec.frame for spec in checkpoint_frames(4)]
    # Along one run: increasing, and starting with the verdict's checkpoints so validation at 128 px goes on.
    assert numbers[:4] == checkpoints and numbers == sorted(set(numbers)) and len(numbers) == SCORE_FRAMES
    assert all(spec.mouse == (0.0, 0.0, 0.0, 0.0) for spec in simulation_score.frames)
    assert (simulation_score.width, simulation_score.height) == (SCORE_SIZE, SCORE_SIZE)
    signature = signature_frame_set(simulation=True)
    assert [s.frame for s in signature.frames] == sorted({s.frame for s in signature.frames})
    assert (signature.width, signature.height) == (IMAGE_SIZE, IMAGE_SIZE)
    # Single-pass programs keep their seeded points.
    assert score_frame_set(simulation=False).frames == frame_specs(SCORE_SEED_KEY, SCORE_FRAMES, SCORE_SIZE, SCORE_SIZE)

    multipass = CatalogProgram(1, "test", "sweep", ProgramSource("glslsandbox", SWEEP))
    single = CatalogProgram(2, "test", "flat", ProgramSource("shadertoy", SHOW_BUFFER))
    for program in (multipass, single):
        simulation = program.code.multipass
        expected = (score_frame_set(simulation), signature_frame_set(simulation))
        assert validation_job(program, ValidateOptions()).extras == expected
        score_job, signature_job = ScoreStage().job(program), SignatureStage().job(program)
        assert (score_job.frames, score_job.width) == (expected[0].frames, expected[0].width)
        assert (signature_job.frames, signature_job.width) == (expected[1].frames, expected[1].width)


# A generous timeout: at these programs' pace every extra set fits, however busy the machine is.
@pytest.mark.parametrize("size", [128, 64])
def test_validate_stores_what_score_and_dedup_would_compute(tmp_path, size):
    from corpus.db import open_catalog

    executor = ExecutorSpec(workers=1)
    in_validation = open_catalog(tmp_path / "in-validation.db")
    ids = [_add_trail(in_validation), _add_sweep(in_validation)]
    with LocalExecutor(workers=1) as pool:
        report = validate(in_validation, pool, ValidateOptions(size=size, timeout_s=120))
    assert report.done == report.counts[Verdict.OK.value] == 2 and report.scored == 2
    scores, signatures = _stored(in_validation)
    assert set(scores) == set(signatures) == set(ids)
    assert all(hashes for hashes, _, _ in signatures.values())  # both pictures have something to compare
    # Nothing is left for the later stages to compile.
    assert score_catalog(in_validation, executor=_NoRenders()).scored == 0
    assert dedup_catalog(in_validation, executor=_NoRenders()).image_rendered == 0
    in_validation.close()

    by_stages = open_catalog(tmp_path / "by-stages.db")
    assert [_add_trail(by_stages), _add_sweep(by_stages)] == ids
    with LocalExecutor(workers=1) as pool:
        validate(by_stages, pool, ValidateOptions(size=size, timeout_s=120, score=False, signatures=False))
    assert _stored(by_stages) == ({}, {})
    assert score_catalog(by_stages, executor=executor).scored == 2
    assert dedup_catalog(by_stages, executor=executor).image_rendered == 2
    assert _stored(by_stages) == (scores, signatures)
    by_stages.close()


class _WithinNoTime:
    """Runs each job in this process with a timeout already spent: the worker then judges the first frame alone
    and finds no time for extras, whatever this machine's speed (only an executor enforces the timeout)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def run(self, jobs, on_wait=None):
        for job in jobs:
            if job is not None:
                yield render_job(self.ctx, replace(job, timeout_s=1e-9))


def test_a_simulation_without_time_for_its_extras_stays_ok_and_leaves_them_to_the_stages(catalog, gl_context):
    program_id = _add_trail(catalog)
    report = validate(catalog, _WithinNoTime(gl_context), ValidateOptions(size=128, timeout_s=120))
    assert report.counts[Verdict.OK.value] == 1 and report.scored == 0
    with catalog.session() as session:
        row = session.exec(select(Validation).where(Validation.program_id == program_id)).one()
    assert row.verdict == "ok" and row.frames == 1
    assert _stored(catalog) == ({}, {})
    executor = ExecutorSpec(workers=1)
    assert score_catalog(catalog, executor=executor).scored == 1
    assert dedup_catalog(catalog, executor=executor).image_rendered == 1
    scores, signatures = _stored(catalog)
    assert set(scores) == set(signatures) == {program_id}


def test_the_fit_check_follows_the_simulations_pace(gl_context):
    from renderer.compiler import compile_program
    from renderer.worker import _simulation_fits

    program = compile_program(gl_context, ProgramSource("glslsandbox", SWEEP))
    try:
        for spec in checkpoint_frames(4):
            program.render_frame(spec, SCORE_SIZE, SCORE_SIZE)
        score, signature = score_frame_set(True), signature_frame_set(True)
        ahead = list(score.frames[4:])
        # Going on from frame 59 to 119 costs what 60 steps and 4 image passes cost; from frame 0, 120 and 8.
        on = program.seconds_to_draw(ahead, SCORE_SIZE, SCORE_SIZE)
        again = program.seconds_to_draw(list(score.frames), SCORE_SIZE, SCORE_SIZE)
        assert on > 0 and again == pytest.approx(on * (120 + 8) / (60 + 4))
        # Another size starts again from frame 0, never assumed faster than this one.
        assert program.seconds_to_draw(list(signature.frames), IMAGE_SIZE, IMAGE_SIZE) == pytest.approx(on * 62 / 64)
        job = RenderJob(key=1, program=program.source, frames=checkpoint_frames(4), timeout_s=1e6)
        assert _simulation_fits(program, job, score, ahead, started=time.perf_counter())
        spent = replace(job, timeout_s=1e-9)
        assert not _simulation_fits(program, spent, score, ahead, started=time.perf_counter())
    finally:
        program.release()
