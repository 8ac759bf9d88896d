"""Near duplicates: MinHash finds forks, frame hashes find look-alikes, clusters keep the right representative."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from sqlmodel import select

from corpus.dedup import (
    Candidate,
    code_pairs,
    code_tokens,
    dedup_catalog,
    image_pairs,
    image_signature,
    resolve_clusters,
)
from corpus.models import Program
from renderer.executor_spec import ExecutorSpec
from tests.test_export_programs import (
    ANIMATED,
    COLOURFUL_STATIC,
    STATIC_GRADIENT,
    add_program,
)

RAYMARCHER = """
// A small ray marcher: a sphere over a plane.
float map(vec3 p) {
    float sphere = length(p - vec3(0.0, 1.0, 6.0)) - 1.0;
    float plane = p.y;
    return min(sphere, plane);
}
vec3 normalAt(vec3 p) {
    vec2 e = vec2(0.001, 0.0);
    return normalize(vec3(map(p + e.xyy) - map(p - e.xyy), map(p + e.yxy) - map(p - e.yxy), map(p + e.yyx) - map(p - e.yyx)));
}
void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = (fragCoord - 0.5 * iResolution.xy) / iResolution.y;
    vec3 ro = vec3(0.0, 1.0, 0.0), rd = normalize(vec3(uv, 1.0));
    float t = 0.0;
    for (int i = 0; i < 64; i++) { float d = map(ro + rd * t); if (d < 0.001 || t > 20.0) break; t += d; }
    vec3 n = normalAt(ro + rd * t);
    float light = clamp(dot(n, normalize(vec3(0.5, 1.0, -0.5))), 0.0, 1.0);
    fragColor = vec4(vec3(light) * vec3(1.0, 0.8, 0.6), 1.0);
}
"""
# The typical fork: retuned constants and a new comment.
FORK = (
    RAYMARCHER.replace("vec3(0.0, 1.0, 6.0)", "vec3(0.5, 1.2, 5.0)")
    .replace("vec3(1.0, 0.8, 0.6)", "vec3(0.2, 0.6, 1.0)")
    .replace("// A small ray marcher", "// my blue version of a small ray marcher")
)


def test_code_tokens_hide_numbers_and_comments():
    assert code_tokens("x = 1.5e3 + 0x1F; // note\n y=.5;") == ["x", "=", "#", "+", "#", ";", "y", "=", "#", ";"]


def test_minhash_finds_a_fork_but_not_a_different_program():
    pairs = code_pairs({1: RAYMARCHER, 2: FORK, 3: ANIMATED, 4: COLOURFUL_STATIC})
    assert pairs == [(1, 2)]


def test_image_signatures_and_pairs():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    nearly = np.clip(picture.astype(int) + 3, 0, 255).astype(np.uint8)
    flat = np.full((64, 64, 3), 40, np.uint8)
    assert image_signature([flat, flat]) is None  # nothing to compare
    signatures = {1: image_signature([picture, picture]), 2: image_signature([nearly, nearly]),
                  3: image_signature([other, other])}
    assert image_pairs(signatures) == [(1, 2)]


def test_representative_is_ok_then_most_liked_then_oldest():
    early, late = datetime(2014, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)
    candidates = {
        1: Candidate(1, ok=False, likes=500, published_at=early),  # broken: never the representative
        2: Candidate(2, ok=True, likes=10, published_at=late),
        3: Candidate(3, ok=True, likes=10, published_at=early),
        4: Candidate(4, ok=True, likes=None, published_at=None),
        5: Candidate(5, ok=True, likes=1, published_at=early),
    }
    marks = resolve_clusters(candidates, code_links=[(1, 2), (2, 3)], image_links=[(3, 4)])
    assert {(m.program_id, m.duplicate_of, m.kind) for m in marks} == {(1, 3, "code"), (2, 3, "code"), (4, 3, "image")}


def test_dedup_catalog_marks_forks_and_replaces_old_marks(catalog):
    original = add_program(catalog, "original", RAYMARCHER, likes=3)
    fork = add_program(catalog, "fork", FORK, likes=1)
    alone = add_program(catalog, "alone", STATIC_GRADIENT)
    summary = dedup_catalog(catalog, executor=ExecutorSpec(workers=1), images=False)
    assert summary.near_duplicates == {"code": 1} and summary.clusters == 1
    with catalog.session() as session:
        rows = {p.id: p for p in session.exec(select(Program)).all()}
    assert rows[fork].near_duplicate_of == original and rows[fork].near_duplicate_kind == "code"
    assert rows[original].near_duplicate_of is None and rows[alone].near_duplicate_of is None


def test_dedup_catalog_finds_image_duplicates(catalog):
    first = add_program(catalog, "first", COLOURFUL_STATIC)
    # Different code (no shared 5-grams to speak of), same picture.
    same_picture = add_program(catalog, "same", """
        void mainImage(out vec4 o, in vec2 f) {
            float x = f.x / iResolution.x;
            vec3 phase = vec3(0.0, 0.33, 0.67);
            o.rgb = 0.5 + 0.5 * cos(6.2831 * (3.0 * x + phase));
            o.a = 1.0;
        }""")
    different = add_program(catalog, "different", ANIMATED)
    summary = dedup_catalog(catalog, executor=ExecutorSpec(workers=2), images=True)
    assert summary.image_programs == 3 and summary.near_duplicates == {"image": 1}
    with catalog.session() as session:
        rows = {p.id: p for p in session.exec(select(Program)).all()}
    assert rows[same_picture].near_duplicate_of == first and rows[same_picture].near_duplicate_kind == "image"
    assert rows[different].near_duplicate_of is None
