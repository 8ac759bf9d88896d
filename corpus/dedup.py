"""Near-duplicate detection: forks that differ by constants or comments (code MinHash) and programs that draw the
same pictures (perceptual hashes of frames). Pure functions; the `harvest dedup` driver renders and writes.

Definitions (also in README, "Near duplicates"):
- Code: comments removed, the code split into identifier / number / operator tokens, every numeric literal
  replaced by one placeholder token (so forks that only retune constants look alike), then the set of token
  5-grams. Two programs are code near duplicates when the MinHash (128 permutations) estimate of the Jaccard
  similarity of their 5-gram sets is at least CODE_THRESHOLD (0.8). Programs with fewer than MIN_SHINGLES
  5-grams are too short to judge and are skipped.
- Image: each program is rendered at IMAGE_FRAMES fixed (time, mouse) points shared by every program; each frame
  gets a 64-bit perceptual hash (imagehash.phash) and a mean colour. Two programs are image near duplicates when
  every frame's hashes differ in at most IMAGE_MAX_BITS (6) bits and every frame's mean colours differ by at
  most IMAGE_MAX_COLOUR (0.1 of full scale) per channel. Frames whose luma barely varies (std < 2/255) carry no
  picture to compare; programs with only such frames are skipped.
- Clusters are the connected components of both relations. Each keeps one representative: an `ok` program
  first, then the most liked, then the oldest (published, then catalog id); the others point at it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from datasketch import MinHash, MinHashLSH
from sqlalchemy import update
from sqlmodel import select

from corpus.image_match import alike_links
from corpus.links import Links
from corpus.models import DedupRun, Program, Validation
from corpus.normalize import strip_comments
from corpus.render_source import load_program_sources
from corpus.signatures import (  # noqa: F401 - the signature's definition, re-exported where dedup is defined
    FLAT_LUMA_STD,
    IMAGE_FRAMES,
    IMAGE_SEED_KEY,
    IMAGE_SIZE,
    ImageSignature,
    SignatureStage,
    image_signature,
    stored_signatures,
)
from renderer.executor_spec import ExecutorSpec
from renderer.jobs import Verdict

SHINGLE_SIZE = 5
NUM_PERM = 128
CODE_THRESHOLD = 0.8
MIN_SHINGLES = 8
IMAGE_MAX_BITS = 6
IMAGE_MAX_COLOUR = 0.1
# Part of every dedup fingerprint: change it when a definition above changes, and marks count as stale.
METHOD = "dedup-v1"

_TOKEN = re.compile(
    r"(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[fFuU]?)"
    r"|(?P<word>[A-Za-z_]\w*)"
    r"|(?P<op>[-+*/%<>=!&|^]=|&&|\|\||<<|>>|\+\+|--|\S)"
)
NUMBER_TOKEN = "#"


def code_tokens(code: str) -> list[str]:
    """Comment-free tokens with every numeric literal replaced by NUMBER_TOKEN."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(strip_comments(code)):
        tokens.append(NUMBER_TOKEN if match.lastgroup == "number" else match.group(0))
    return tokens


def code_shingles(code: str, size: int = SHINGLE_SIZE) -> set[str]:
    tokens = code_tokens(code)
    return {" ".join(tokens[i : i + size]) for i in range(max(0, len(tokens) - size + 1))}


def code_minhash(shingles: set[str]) -> MinHash:
    signature = MinHash(num_perm=NUM_PERM, seed=1)
    signature.update_batch([s.encode("utf-8") for s in shingles])
    return signature


def code_links(codes: dict[int, str], threshold: float = CODE_THRESHOLD) -> Links:
    """Programs whose code is near-identical (estimated Jaccard >= threshold). Programs with the same MinHash
    signature are all pairwise alike and form one clique; the LSH holds one entry per signature, so a crowd of
    forks of one template costs one entry instead of a quadratic number of queries and pairs."""
    members: dict[bytes, list[int]] = {}
    signatures: dict[bytes, MinHash] = {}
    for program_id in sorted(codes):
        shingles = code_shingles(codes[program_id])
        if len(shingles) < MIN_SHINGLES:
            continue
        signature = code_minhash(shingles)
        key = signature.hashvalues.tobytes()
        signatures.setdefault(key, signature)
        members.setdefault(key, []).append(program_id)
    keys = list(signatures)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for index, key in enumerate(keys):
        lsh.insert(str(index), signatures[key])
    pairs: list[tuple[int, int]] = []
    for index, key in enumerate(keys):
        for other in map(int, lsh.query(signatures[key])):
            # LSH returns candidates; the estimate itself decides. Each pair of signatures once.
            if other > index and signatures[key].jaccard(signatures[keys[other]]) >= threshold:
                pairs.extend((min(a, b), max(a, b)) for a in members[key] for b in members[keys[other]])
    cliques = [tuple(group) for group in members.values() if len(group) > 1]
    return Links.of(cliques, np.array(pairs, dtype=np.int64))


def code_pairs(codes: dict[int, str], threshold: float = CODE_THRESHOLD) -> list[tuple[int, int]]:
    """Every pair of program ids whose code is near-identical, sorted."""
    return code_links(codes, threshold).all_pairs()


def image_links(signatures: dict[int, ImageSignature]) -> Links:
    """Programs whose frames look alike at every shared point (the frames all signatures have)."""
    ids = sorted(signatures)
    if len(ids) < 2:
        return Links.of([], [])
    frame_count = min(len(signatures[i].hashes) for i in ids)
    hashes = np.array([signatures[i].hashes[:frame_count] for i in ids], dtype=np.uint64)
    colours = np.array([signatures[i].mean_colours[:frame_count] for i in ids], dtype=np.float64)
    return alike_links(ids, hashes.reshape(len(ids), frame_count), colours.reshape(len(ids), frame_count, 3),
                       IMAGE_MAX_BITS, IMAGE_MAX_COLOUR)


def image_pairs(signatures: dict[int, ImageSignature]) -> list[tuple[int, int]]:
    """Every pair of program ids whose frames look alike at every shared point, sorted."""
    return image_links(signatures).all_pairs()


@dataclass(frozen=True)
class Candidate:
    """What choosing a representative needs to know about a program."""

    program_id: int
    ok: bool
    likes: int | None
    published_at: datetime | None


def _representative_order(candidate: Candidate) -> tuple:
    published = candidate.published_at or datetime.max.replace(tzinfo=UTC)
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return (not candidate.ok, -(candidate.likes or 0), published, candidate.program_id)


@dataclass(frozen=True)
class NearDuplicate:
    program_id: int
    duplicate_of: int
    kind: str  # code | image


def resolve_clusters(
    candidates: dict[int, Candidate], code_links: Iterable[tuple[int, int]], image_links: Iterable[tuple[int, int]]
) -> list[NearDuplicate]:
    """Connected components of both relations; every member but the representative becomes a NearDuplicate whose
    kind is `code` when it has a code link inside the cluster, else `image`."""
    parent = {pid: pid for pid in candidates}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    code_linked: set[int] = set()
    for links, is_code in ((code_links, True), (image_links, False)):
        for a, b in links:
            if a not in parent or b not in parent:
                continue
            parent[find(a)] = find(b)
            if is_code:
                code_linked.update((a, b))
    clusters: dict[int, list[int]] = {}
    for pid in candidates:
        clusters.setdefault(find(pid), []).append(pid)
    result: list[NearDuplicate] = []
    for members in clusters.values():
        if len(members) < 2:
            continue
        representative = min(members, key=lambda pid: _representative_order(candidates[pid]))
        for pid in sorted(members):
            if pid != representative:
                kind = "code" if pid in code_linked else "image"
                result.append(NearDuplicate(pid, representative, kind))
    return sorted(result, key=lambda d: d.program_id)


# --- driver: `harvest dedup` ----------------------------------------------------------------------------------

@dataclass
class DedupSummary:
    programs: int = 0  # candidates: every program that is not an exact duplicate
    code_pairs: int = 0
    image_programs: int = 0  # `ok` programs whose frames were hashed
    image_rendered: int = 0  # of which drawn by this run (the others were drawn when validated)
    image_pairs: int = 0
    near_duplicates: dict[str, int] = field(default_factory=dict)  # kind -> programs marked
    clusters: int = 0


def _candidate_rows(session):
    return session.exec(
        select(Program, Validation.verdict)
        .join(Validation, Validation.program_id == Program.id, isouter=True)
        .where(Program.duplicate_of.is_(None))
        .order_by(Program.id)
    ).all()


def inputs_fingerprint(session, images: bool) -> str:
    """A hash of everything a dedup run's marks depend on: which programs are candidates, their code, which are
    `ok` (a cluster prefers an `ok` representative) and, when frames are compared, under which renderer version."""
    rows = session.exec(
        select(Program.id, Program.code_hash, Validation.verdict, Validation.renderer_version)
        .join(Validation, Validation.program_id == Program.id, isouter=True)
        .where(Program.duplicate_of.is_(None))
        .order_by(Program.id)
    ).all()
    digest = hashlib.sha256(f"{METHOD} images={images}\n".encode())
    for pid, code_hash, verdict, renderer_version in rows:
        renderer = renderer_version if images else ""
        digest.update(f"{pid} {code_hash} {verdict == Verdict.OK.value} {renderer}\n".encode())
    return digest.hexdigest()


def last_run(catalog) -> DedupRun | None:
    with catalog.session() as session:
        return session.exec(select(DedupRun).order_by(DedupRun.id.desc()).limit(1)).first()


def marks_are_current(catalog) -> bool:
    """Whether the last dedup run saw the catalog as it is now (then its marks need no refresh)."""
    last = last_run(catalog)
    if last is None:
        return False
    with catalog.session() as session:
        return last.fingerprint == inputs_fingerprint(session, last.images)


def _draw_missing_signatures(catalog, executor: ExecutorSpec, progress: Callable[[int], None] | None,
                             shader_cache_dir: Path | None) -> int:
    """Draw the signatures validation did not store (older verdicts, or frames that did not fit its timeout)."""
    from corpus.stage_runner import run_stage

    stage = SignatureStage()
    with catalog.session() as session:
        missing = stage.select(session)
    if not missing:
        return 0

    def advance(event) -> None:
        if progress and event.kind == "result":
            progress(1)

    with executor.build(shader_cache_dir) as pool:
        report = run_stage(catalog, pool, stage, on_event=advance, program_ids=missing)
    if report.interrupted:
        raise KeyboardInterrupt
    return report.done


def dedup_catalog(
    catalog,
    executor: ExecutorSpec = ExecutorSpec(),
    images: bool = True,
    progress: Callable[[int], None] | None = None,
    shader_cache_dir: Path | None = None,
) -> DedupSummary:
    """Find near duplicates among the programs that are not exact duplicates and record them, replacing the
    previous run's marks in one transaction."""
    from corpus.export_format import joined_code

    summary = DedupSummary()
    with catalog.session() as session:
        fingerprint = inputs_fingerprint(session, images)
        rows = _candidate_rows(session)
        candidates = {
            program.id: Candidate(program.id, verdict == Verdict.OK.value, program.likes, program.published_at)
            for program, verdict in rows
        }
        sources = load_program_sources(session, list(candidates))
    summary.programs = len(candidates)
    links_code = code_links({pid: joined_code(source) for pid, source in sources.items()})
    summary.code_pairs = links_code.count()

    links_image = Links.of([], [])
    if images:
        summary.image_rendered = _draw_missing_signatures(catalog, executor, progress, shader_cache_dir)
        with catalog.session() as session:
            stored = stored_signatures(session, [pid for pid, c in candidates.items() if c.ok])
        signatures = {pid: signature for pid, signature in stored.items() if signature is not None}
        summary.image_programs = len(signatures)
        links_image = image_links(signatures)
        summary.image_pairs = links_image.count()

    # Clusters depend only on what is connected, so a chain per clique stands in for its pairs (every linked
    # program is a candidate, so no chain is broken by a skipped link).
    marks = resolve_clusters(candidates, links_code.spanning(), links_image.spanning())
    summary.clusters = len({m.duplicate_of for m in marks})
    for mark in marks:
        summary.near_duplicates[mark.kind] = summary.near_duplicates.get(mark.kind, 0) + 1
    with catalog.session() as session:
        session.exec(
            update(Program)
            .where(Program.near_duplicate_of.is_not(None))
            .values(near_duplicate_of=None, near_duplicate_kind=None)
        )
        for mark in marks:
            session.exec(
                update(Program)
                .where(Program.id == mark.program_id)
                .values(near_duplicate_of=mark.duplicate_of, near_duplicate_kind=mark.kind)
            )
        session.add(DedupRun(fingerprint=fingerprint, images=images, programs=summary.programs,
                             near_duplicates=len(marks), clusters=summary.clusters))
    return summary
