"""Programs written for the curate tests (scoring, dedup, export, gallery) and a helper that adds them to a catalog
as validated rows. No tests here."""

from __future__ import annotations

from datetime import UTC, datetime

from corpus.ingest import ingest_program
from corpus.models import Validation
from corpus.records import FetchedPass, FetchedProgram

BLANK = "void mainImage(out vec4 c, in vec2 p){ c = vec4(0.0, 0.0, 0.0, 1.0); }"
STATIC_GRADIENT = "void mainImage(out vec4 c, in vec2 p){ vec2 uv = p / iResolution.xy; c = vec4(uv.x, uv.y, 0.5, 1.0); }"
# A moving interference pattern through a rainbow palette: structure and colour change everywhere over time.
ANIMATED = """
void mainImage(out vec4 c, in vec2 p) {
    vec2 uv = p / iResolution.y * 6.0;
    float t = iTime;
    float v = sin(uv.x * 1.7 + t) + sin(uv.y * 2.3 - t * 1.1) + sin((uv.x + uv.y) * 1.3 + t * 0.7)
            + sin(length(uv - 3.0 + vec2(sin(t), cos(t))) * 4.0);
    c = vec4(0.5 + 0.5 * cos(v * 2.0 + vec3(0.0, 2.0, 4.0) + t), 1.0);
}
"""
COLOURFUL_STATIC = """
void mainImage(out vec4 c, in vec2 p) {
    vec2 uv = p / iResolution.xy;
    c = vec4(0.5 + 0.5 * cos(6.2831 * (uv.x * 3.0 + vec3(0.0, 0.33, 0.67))), 1.0);
}
"""
GREY_STRIPES = "void mainImage(out vec4 c, in vec2 p){ c = vec4(vec3(0.3 + 0.4 * step(0.5, fract(p.x / 16.0))), 1.0); }"
SMALL_IN_CANVAS = """
void mainImage(out vec4 c, in vec2 p) {
    vec2 q = p - iResolution.xy * 0.5 - 20.0 * vec2(cos(iTime), sin(iTime));
    c = vec4(vec3(step(length(q), 8.0)), 1.0);
}
"""


def fetched(source_id: str, code: str, *, title: str = "", license: str = "CC0-1.0", likes: int | None = None,
            published: datetime | None = None, source: str = "local", author: str = "tester") -> FetchedProgram:
    return FetchedProgram(
        source=source, source_id=source_id, url=f"https://example.org/view/{source_id}", title=title or source_id,
        author=author, passes=[FetchedPass("image", code)], license=license, likes=likes,
        published_at=published or datetime(2020, 1, 1, tzinfo=UTC),
    )


def add_program(catalog, source_id: str, code: str, verdict: str = "ok", reason: str = "", **kwargs) -> int:
    """Ingest one program and give it a verdict, as `harvest validate` would; returns its id."""
    with catalog.session() as session:
        program_id = ingest_program(session, fetched(source_id, code, **kwargs)).program_id
        session.add(Validation(program_id=program_id, verdict=verdict, reason=reason))
    return program_id
