"""The bundled sample programs get the verdicts their manifest promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from corpus.ingest import ingest_program
from corpus.models import Program, Validation
from corpus.normalize import sniff_dialect
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from corpus.validation import ValidateOptions, validate
from renderer.executors import LocalExecutor

SAMPLES = Path(__file__).resolve().parent.parent / "harvester" / "samples"
EXPECTED: dict[str, str] = json.loads((Path(__file__).parent / "data" / "bundled_sample_verdicts.json").read_text())["verdicts"]
DIALECT_BY_PREFIX = {"st_": "shadertoy", "bad_": "shadertoy", "blank_solid": "shadertoy", "slow_": "shadertoy",
                     "gs_": "glslsandbox", "blank_nan": "glslsandbox", "bos_": "bookofshaders", "raw_": "raw"}


def _pass_kind(renderpass: dict) -> str:
    if renderpass["type"] == "buffer":
        return "buffer_" + renderpass["name"][-1].lower()
    return renderpass["type"]


def sample_program(path: Path) -> FetchedProgram:
    """A bundled sample as the crawl would fetch it (read here directly, independent of the sources)."""
    if path.suffix == ".json":
        shader = json.loads(path.read_text())["Shader"]
        passes = [
            FetchedPass(_pass_kind(rp), rp["code"], [ChannelInput(i["channel"], i["ctype"], i["src"]) for i in rp["inputs"]])
            for rp in shader["renderpass"]
        ]
        return FetchedProgram("samples", path.name, "", shader["info"]["name"], shader["info"]["username"], passes,
                              license="CC0-1.0", dialect="shadertoy")
    return FetchedProgram("samples", path.name, "", path.stem, "harvest contributors",
                          [FetchedPass("image", path.read_text())], license="CC0-1.0")


def test_manifest_lists_every_sample_and_the_mix_is_right():
    files = {p.name for p in SAMPLES.iterdir() if p.suffix in (".frag", ".glsl", ".json")}
    assert files == set(EXPECTED)
    verdicts = list(EXPECTED.values())
    assert verdicts.count("ok") >= 24
    assert {"compile_error", "link_error", "blank", "timeout", "needs_input", "unsupported"} <= set(verdicts)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if not n.endswith(".json")))
def test_loose_samples_declare_licence_author_and_sniff_as_intended(name):
    code = (SAMPLES / name).read_text()
    assert "SPDX-License-Identifier: CC0-1.0" in code and "Author: harvest contributors" in code
    dialect = next(d for prefix, d in DIALECT_BY_PREFIX.items() if name.startswith(prefix))
    assert sniff_dialect(code) == dialect


def test_bundled_samples_get_their_expected_verdicts(catalog):
    with catalog.session() as session:
        for name in EXPECTED:
            ingest_program(session, sample_program(SAMPLES / name))
    # A short timeout: the slow sample needs minutes, every other one well under a second.
    options = ValidateOptions(size=64, frames=2, timeout_s=4.0)
    with LocalExecutor(workers=2) as pool:
        report = validate(catalog, pool, options)
    assert report.done == len(EXPECTED)
    with catalog.session() as session:
        rows = session.exec(select(Program.source_id, Validation.verdict, Validation.reason)
                            .join(Validation, Validation.program_id == Program.id)).all()
    got = {source_id: verdict for source_id, verdict, _ in rows}
    reasons = {source_id: reason for source_id, _, reason in rows}
    mismatches = {n: (EXPECTED[n], got.get(n), reasons.get(n)) for n in EXPECTED if got.get(n) != EXPECTED[n]}
    assert not mismatches
