"""Near duplicates: MinHash finds forks, frame hashes find look-alikes, clusters keep the right representative."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from datetime import UTC, datetime

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from sqlmodel import select

from corpus.dedup import (
    CODE_THRESHOLD,
    IMAGE_FRAMES,
    IMAGE_MAX_BITS,
    IMAGE_MAX_COLOUR,
    IMAGE_SEED_KEY,
    IMAGE_SIZE,
    MIN_SHINGLES,
    NUM_PERM,
    Candidate,
    ImageSignature,
    code_links,
    code_minhash,
    code_pairs,
    code_shingles,
    code_tokens,
    dedup_catalog,
    image_links,
    image_pairs,
    image_signature,
    resolve_clusters,
)
from corpus.hash_index import band_layout, chunked_repeat, near_hash_pairs, run_pairs
from corpus.ingest import ingest_program
from corpus.models import Program
from corpus.render_source import load_program_sources
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


# --- image pairs without the n x n arrays: the banded search must give exactly the dense result ----------------


def dense_image_pairs(signatures: dict[int, ImageSignature]) -> list[tuple[int, int]]:
    """The former implementation, kept as the reference: every program against every other, n x n arrays."""
    ids = sorted(signatures)
    if len(ids) < 2:
        return []
    frame_count = min(len(signatures[i].hashes) for i in ids)
    alike = np.ones((len(ids), len(ids)), dtype=bool)
    for frame in range(frame_count):
        hashes = np.array([signatures[i].hashes[frame] for i in ids], dtype=np.uint64)
        bits = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
        colours = np.array([signatures[i].mean_colours[frame] for i in ids])
        colour_gap = np.abs(colours[:, None, :] - colours[None, :, :]).max(axis=2)
        alike &= (bits <= IMAGE_MAX_BITS) & (colour_gap <= IMAGE_MAX_COLOUR)
    rows, cols = np.nonzero(np.triu(alike, k=1))
    return [(ids[r], ids[c]) for r, c in zip(rows.tolist(), cols.tolist())]


def _flip_bits(rng: np.random.Generator, value: int, count: int) -> int:
    for bit in rng.choice(64, size=count, replace=False).tolist():
        value ^= 1 << bit
    return value


# Bit flips and colour shifts around the limits (6 bits, 0.1 per channel), so many pairs sit on either side.
FLIPS = [0, 0, 1, 3, 5, 6, 6, 7, 7, 8, 12]
SHIFTS = [0.0, 0.0, 0.03, 0.05, 0.0999999, 0.1, 0.1000001, 0.15, 0.4]


def _near_signature(rng: np.random.Generator, base: ImageSignature, black_first: bool) -> ImageSignature:
    hashes, colours = [], []
    for frame, (value, colour) in enumerate(zip(base.hashes, base.mean_colours)):
        if frame == 0 and black_first:  # a fade-in: the first frame is the same for everyone
            hashes.append(1 << 63)
            colours.append((0.0, 0.0, 0.0))
            continue
        hashes.append(_flip_bits(rng, value, int(rng.choice(FLIPS))))
        shift = rng.choice(SHIFTS, size=3) * rng.choice([-1.0, 1.0], size=3)
        colours.append(tuple(float(c + d) for c, d in zip(colour, shift)))
    return ImageSignature(tuple(hashes), tuple(colours))


def _random_signatures(seed: int, families: int, per_family: int, frames: int = 2) -> dict[int, ImageSignature]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(10 * families * per_family, size=families * per_family, replace=False).tolist()
    signatures: dict[int, ImageSignature] = {}
    for family in range(families):
        base = ImageSignature(
            tuple(int(h) for h in rng.integers(0, 2**64, size=frames, dtype=np.uint64)),
            tuple(tuple(float(c) for c in rng.random(3)) for _ in range(frames)),
        )
        black_first = family % 3 == 0
        for member in range(per_family):
            signature = base if member % 4 == 0 else _near_signature(rng, base, black_first)
            signatures[ids.pop()] = signature
    return signatures


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_banded_image_pairs_equal_the_dense_ones_on_seeded_hash_sets(seed):
    signatures = _random_signatures(seed, families=60, per_family=12)
    expected = dense_image_pairs(signatures)
    assert len(expected) > 100  # the set really has near duplicates, on both sides of the limits
    assert image_pairs(signatures) == expected


def test_banded_image_pairs_with_one_frame_and_with_uneven_frame_counts():
    one = _random_signatures(3, families=40, per_family=10, frames=1)
    assert image_pairs(one) == dense_image_pairs(one)
    uneven = _random_signatures(4, families=40, per_family=10, frames=3)
    for pid in list(uneven)[::5]:  # these have only two frames: the third is compared by nobody
        uneven[pid] = ImageSignature(uneven[pid].hashes[:2], uneven[pid].mean_colours[:2])
    assert image_pairs(uneven) == dense_image_pairs(uneven)


def test_identical_hashes_are_decided_by_colour_alone():
    rng = np.random.default_rng(5)
    same, one_bit_off = (0x0123456789ABCDEF, 0xFFFFFFFFFFFFFFFF), (0x0123456789ABCDEE, 0xFFFFFFFFFFFFFFFF)
    # One crowd whose colours all fit (a clique), one whose colours spread (pairs decided one by one), a bit apart.
    close = {pid: ImageSignature(same, ((0.5, 0.5, 0.5), (0.2, 0.2, float(0.2 + 0.1 * rng.random()))))
             for pid in range(300)}
    spread = {1000 + pid: ImageSignature(one_bit_off, (tuple(rng.random(3).tolist()), (0.2, 0.2, 0.25)))
              for pid in range(300)}
    signatures = close | spread
    links = image_links(signatures)
    assert [len(clique) for clique in links.cliques] == [300]
    assert image_pairs(signatures) == dense_image_pairs(signatures)
    assert links.count() == len(dense_image_pairs(signatures))


def _traced(function, *args):
    """function(*args) and the most memory Python and numpy held at once while it ran."""
    tracemalloc.start()
    try:
        return function(*args), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_crowd_of_5000_identical_hashes_stays_small_in_memory():
    flat = ImageSignature((1 << 63, 0x00FF00FF00FF00FF), ((0.0, 0.0, 0.0), (0.3, 0.3, 0.3)))
    signatures = {pid: flat for pid in range(5000)}
    signatures[9999] = ImageSignature((1 << 63, 0x00FF00FF00FF00FE), ((0.0, 0.0, 0.0), (0.35, 0.3, 0.3)))
    links, peak = _traced(image_links, signatures)
    # Dense arrays for 5,001 programs take over 1 GB; the pairs as Python tuples about as much.
    assert peak < 64 * 2**20
    assert [len(clique) for clique in links.cliques] == [5000]
    assert links.count() == 5000 * 4999 // 2 + 5000  # the look-alike is one bit away: it pairs with everyone
    connected = set(links.spanning())
    assert len(connected) == 4999 + 5000


def test_crowd_of_identical_hashes_with_spread_colours_is_streamed():
    rng = np.random.default_rng(6)
    same = (0x0F0F0F0F0F0F0F0F, 0x3333333333333333)
    signatures = {pid: ImageSignature(same, (tuple(rng.random(3).tolist()), tuple(rng.random(3).tolist())))
                  for pid in range(5000)}
    links, peak = _traced(image_links, signatures)
    assert peak < 160 * 2**20  # bounded by the chunk, not by the 12.5 million pairs compared
    assert not links.cliques and 0 < len(links.pairs) < 5000
    colours = np.array([signatures[pid].mean_colours for pid in range(5000)])
    for a, b in links.pairs.tolist():
        assert (np.abs(colours[a] - colours[b]) <= IMAGE_MAX_COLOUR).all()


def test_near_hash_pairs_match_brute_force_for_any_threshold_and_chunk_size():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**64, size=(40, 2), dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, size=(400, 2, 3)).astype(np.uint64)
    rows = base[rng.integers(0, 40, size=400)] ^ np.bitwise_xor.reduce(flips * (rng.random((400, 2, 3)) < 0.7),
                                                                      axis=2)
    rows = np.unique(rows, axis=0)
    one_frame = np.unique(rows[:, :1], axis=0)
    for table, max_bits, max_pairs in [(rows, 0, 1), (rows, 1, 7), (rows, 3, 1), (rows, 6, 7), (rows, 6, 1 << 18),
                                       (rows, 12, 1 << 18), (one_frame, 6, 3), (one_frame, 63, 1 << 18)]:
        distance = np.bitwise_count(table[:, None, :] ^ table[None, :, :]).max(axis=2)
        expected = [(int(u), int(v)) for u, v in zip(*np.nonzero(np.triu(distance <= max_bits, k=1)))]
        found = [(u, v) for left, right in near_hash_pairs(table, max_bits, max_pairs)
                 for u, v in zip(left.tolist(), right.tolist())]
        assert sorted(found) == expected  # every pair, each once


def test_bands_cover_the_hash_and_outnumber_the_threshold():
    for max_bits in (0, 6, 63):
        layout = band_layout(max_bits)
        assert len(layout) == max_bits + 1 and sum(width for _, width in layout) == 64
        assert [shift for shift, _ in layout] == [sum(w for _, w in layout[:i]) for i in range(len(layout))]
    with pytest.raises(ValueError):
        band_layout(64)


def test_run_pairs_and_chunked_repeat_in_tiny_chunks():
    keys = np.array([1, 1, 1, 2, 3, 3, 5, 5, 5, 5])
    pairs = [(i, j) for left, right in run_pairs(keys, max_pairs=2) for i, j in zip(left.tolist(), right.tolist())]
    assert sorted(pairs) == [(i, j) for i in range(10) for j in range(i + 1, 10) if keys[i] == keys[j]]
    items = [(i, k) for index, offset in chunked_repeat(np.array([0, 3, 0, 1]), 1)
             for i, k in zip(index.tolist(), offset.tolist())]
    assert items == [(1, 0), (1, 1), (1, 2), (3, 0)]


# --- code pairs: signatures grouped, same pairs as one LSH entry per program ---------------------------------


def _reference_code_pairs(codes: dict[int, str]) -> list[tuple[int, int]]:
    """The former implementation: one LSH entry and one query per program."""
    lsh = MinHashLSH(threshold=CODE_THRESHOLD, num_perm=NUM_PERM)
    signatures: dict[int, MinHash] = {}
    for program_id in sorted(codes):
        shingles = code_shingles(codes[program_id])
        if len(shingles) >= MIN_SHINGLES:
            signatures[program_id] = code_minhash(shingles)
            lsh.insert(str(program_id), signatures[program_id])
    pairs = set()
    for program_id, signature in signatures.items():
        for other_id in map(int, lsh.query(signature)):
            if other_id != program_id and signature.jaccard(signatures[other_id]) >= CODE_THRESHOLD:
                pairs.add((min(program_id, other_id), max(program_id, other_id)))
    return sorted(pairs)


def test_code_forks_of_one_template_form_a_clique_with_the_same_pairs():
    rng = np.random.default_rng(8)
    codes: dict[int, str] = {}
    for pid in range(1, 200):
        kind = pid % 4
        if kind == 0:  # a template with retuned constants only: the same signature
            codes[pid] = RAYMARCHER.replace("0.001", f"{rng.random():.4f}")
        elif kind == 1:
            codes[pid] = FORK.replace("64", str(int(rng.integers(8, 200))))
        elif kind == 2:  # a fork that adds a line: close, but not the same signature
            codes[pid] = RAYMARCHER + f"\nfloat extra{pid}(float x) {{ return x * x + {pid}.0; }}\n"
        else:
            codes[pid] = (ANIMATED, COLOURFUL_STATIC, STATIC_GRADIENT)[pid % 3]
    links = code_links(codes)
    assert links.cliques and max(len(clique) for clique in links.cliques) >= 49
    assert code_pairs(codes) == _reference_code_pairs(codes)
    assert links.count() == len(_reference_code_pairs(codes))


# --- real pictures: hashes of shared programs' frames, and near variants of them -------------------------------


def _shared_signatures(catalog, shared_dir, programs: int) -> dict[int, ImageSignature]:
    from harvester.sources.shadertoy_format import program_from_flat
    from renderer.frames import frame_specs
    from tests.rendering import render_frames

    paths = sorted((shared_dir / "samples" / "shadertoy-flat").glob("*.jsonl"))
    lines = (line for path in paths for line in path.read_text().splitlines() if line.strip())
    records = [json.loads(line) for line in itertools.islice(lines, programs)]
    with catalog.session() as session:
        for record in records:
            ingest_program(session, program_from_flat(record))
    with catalog.session() as session:
        sources = load_program_sources(session, list(session.exec(select(Program.id)).all()))
    specs = frame_specs(IMAGE_SEED_KEY, IMAGE_FRAMES, IMAGE_SIZE, IMAGE_SIZE)
    signatures = {}
    for result in render_frames(sources, specs, IMAGE_SIZE, ExecutorSpec(workers=2)):
        if result.verdict.value == "ok" and result.frames:
            signature = image_signature(result.frames)
            if signature is not None:
                signatures[result.key] = signature
    return signatures


def test_banded_image_pairs_equal_the_dense_ones_on_real_frames(catalog, shared_dir):
    real = _shared_signatures(catalog, shared_dir, programs=120)
    assert len(real) > 50
    assert image_pairs(real) == dense_image_pairs(real)
    # Real hashes cluster far more than random ones: near variants of them test the limits on that distribution.
    rng = np.random.default_rng(9)
    variants = {pid * 100 + copy: _near_signature(rng, signature, black_first=False)
                for pid, signature in real.items() for copy in range(12)}
    signatures = real | variants
    expected = dense_image_pairs(signatures)
    assert len(expected) > 20
    assert image_pairs(signatures) == expected


def test_dedup_catalog_marks_a_template_crowd_through_its_clique(catalog):
    ids = [add_program(catalog, f"retuned {n}", RAYMARCHER.replace("64", str(10 + n)), likes=n) for n in range(4)]
    summary = dedup_catalog(catalog, executor=ExecutorSpec(workers=1), images=False)
    assert summary.code_pairs == 6 and summary.clusters == 1 and summary.near_duplicates == {"code": 3}
    with catalog.session() as session:
        rows = {p.id: p for p in session.exec(select(Program)).all()}
    assert {rows[pid].near_duplicate_of for pid in ids[:3]} == {ids[3]} and rows[ids[3]].near_duplicate_of is None
