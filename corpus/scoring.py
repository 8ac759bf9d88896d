"""Image scores of a program, computed from its rendered frames (pure functions over numpy arrays), and the
`harvest score` driver that renders `ok` programs and stores their scores.

Definitions (also in README, "Scores"):

- Views. Every frame (rendered at a different time and mouse position) gives one full view and
  `CROPS_PER_FRAME` square crops with a side of `CROP_SIDE` of the frame's shorter side, at positions drawn from a
  seeded generator. Every view is resized (box filter) to `VIEW_SIZE`² pixels, values in [0, 1].
- Feature of a view: (a) colour histogram, 4 levels per RGB channel (64 bins, fractions of the view's pixels);
  (b) layout, the view's 8x8 grid of mean colours; (c) structure histogram: luma gradients (central differences
  on the view) binned by orientation (8 bins over [0, pi)) and magnitude class (edges at 0.04, 0.1, 0.2, 0.4 per
  view pixel), each bin holding the fraction of the view's pixels in it. Pixels flatter than 0.04 count in no
  bin, so a flat view, and the smooth ramp of a full-canvas gradient (1/32 per view pixel), have no structure.
- Distance of two views: wc * 0.5*L1(colour) + wl * mean|layout difference| + ws * L1(structure), with
  (wc, wl, ws) = TEMPORAL_WEIGHTS (0.1, 0.6, 1.0) for two views through the same window (different time/mouse)
  and SPATIAL_WEIGHTS (0.03, 0.05, 0.4) for views through different windows.
- diversity = 1 - exp(-D / 0.3), where D is the mean distance over all pairs of views. It is 0 when every view
  is identical (blank or uniform programs), about 0.05 for a static full-canvas gradient (its crops differ only
  in colour), about 0.3 for a uniform colour that changes over time or a static smooth pattern, 0.5-0.7 for
  animated scenes with moving structure.
- colorfulness: Hasler & Süsstrunk (2003) on the 0-255 scale, averaged over the full frames:
  σ = √(σ_rg² + σ_yb²), μ = √(μ_rg² + μ_yb²), M = σ + 0.3·μ with rg = R − G and yb = (R + G)/2 − B.
  About 0 for grey images, 33 "moderately", 59 "quite", 82 "highly" colourful in their scale.
- fill: per full frame, the dominant background colour is the most common colour after quantising each channel
  to 8 levels; a pixel fills the canvas when any channel differs from that colour's mean by more than
  `FILL_TOLERANCE` (of 255). fill is the fraction of such pixels, averaged over frames: 0 for a blank program,
  about the object's area for a small object on a plain background, near 1 for a canvas-filling pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import or_
from sqlmodel import Session, select

from corpus.models import Program, Score, Validation, utcnow
from corpus.stage_runner import BatchPolicy, CatalogProgram, StageEvent, run_stage
from renderer.executor_spec import ExecutorSpec
from renderer.frames import frame_specs
from renderer.jobs import FrameSet, RenderJob, RenderResult, Verdict
from renderer.passes import simulation_frame

# Names SIMULATION_SCORE_FRAMES (8 frames, up to 119) too: scores stored before multi-pass programs were scored
# along one run are then drawn again, as they are whenever the frames change.
METHOD = "v1-view32-colour64-layout8-grad32-sim8to119"
VIEW_SIZE = 32
CROPS_PER_FRAME = 2
CROP_SIDE = 0.5
# (colour, layout, structure) weights for two views through the same window at different times/mice
# ("temporal" pairs) and for two views through different windows ("spatial" pairs). Spatial colour counts little
# because the crops of a smooth gradient differ in colour without being different pictures.
TEMPORAL_WEIGHTS = (0.1, 0.6, 1.0)
SPATIAL_WEIGHTS = (0.03, 0.05, 0.4)
DIVERSITY_SCALE = 0.3
ORIENTATION_BINS = 8
MAGNITUDE_EDGES = (0.04, 0.1, 0.2, 0.4)
COLOUR_LEVELS = 4
LAYOUT_SIZE = 8
FILL_LEVELS = 8
FILL_TOLERANCE = 24.0


@dataclass(frozen=True)
class ProgramScores:
    diversity: float
    colorfulness: float
    fill: float
    frames_used: int


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] < 3 or array.shape[0] < 2 or array.shape[1] < 2:
        raise ValueError(f"a frame must be HxWx3, got shape {array.shape}")
    return array[:, :, :3].astype(np.uint8, copy=False)


def _resized(frame: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    image = Image.fromarray(frame, "RGB")
    resized = image.resize((VIEW_SIZE, VIEW_SIZE), Image.Resampling.BOX, box=box)
    return np.asarray(resized, dtype=np.float32) / 255.0


def crop_windows(width: int, height: int, seed: int = 0) -> list[tuple[int, int, int, int] | None]:
    """The windows every frame is viewed through: the whole frame (None), then the seeded crops."""
    rng = np.random.default_rng(seed)
    side = max(2, int(round(min(height, width) * CROP_SIDE)))
    windows: list[tuple[int, int, int, int] | None] = [None]
    for _ in range(CROPS_PER_FRAME):
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        windows.append((left, top, left + side, top + side))
    return windows


def views_of(frames: list[np.ndarray], seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """Every frame seen through the same windows: the views (VIEW_SIZE² float RGB) and each view's window index."""
    views: list[np.ndarray] = []
    window_of: list[int] = []
    windows: list[tuple[int, int, int, int] | None] | None = None
    for raw in frames:
        frame = _as_rgb(raw)
        if windows is None:
            windows = crop_windows(frame.shape[1], frame.shape[0], seed)
        for index, window in enumerate(windows):
            views.append(_resized(frame, window))
            window_of.append(index)
    return views, window_of


@dataclass(frozen=True)
class ViewFeature:
    colour: np.ndarray  # COLOUR_LEVELS**3 fractions summing to 1
    layout: np.ndarray  # LAYOUT_SIZE² x 3 mean colours in [0, 1]
    structure: np.ndarray  # ORIENTATION_BINS * len(MAGNITUDE_EDGES) fractions summing to <= 1

    @property
    def edge_fraction(self) -> float:
        return float(self.structure.sum())


def view_feature(view: np.ndarray) -> ViewFeature:
    levels = np.minimum((view * COLOUR_LEVELS).astype(np.int64), COLOUR_LEVELS - 1)
    codes = (levels[:, :, 0] * COLOUR_LEVELS + levels[:, :, 1]) * COLOUR_LEVELS + levels[:, :, 2]
    colour = np.bincount(codes.ravel(), minlength=COLOUR_LEVELS**3).astype(np.float64) / codes.size

    luma = view @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gy, gx = np.gradient(luma)
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)
    orientation_bin = np.minimum((orientation / np.pi * ORIENTATION_BINS).astype(np.int64), ORIENTATION_BINS - 1)
    magnitude_class = np.searchsorted(np.asarray(MAGNITUDE_EDGES), magnitude, side="right") - 1
    edged = magnitude_class >= 0
    structure_codes = magnitude_class[edged] * ORIENTATION_BINS + orientation_bin[edged]
    structure = np.bincount(structure_codes, minlength=ORIENTATION_BINS * len(MAGNITUDE_EDGES)).astype(np.float64)
    blocks = VIEW_SIZE // LAYOUT_SIZE
    layout = view.reshape(LAYOUT_SIZE, blocks, LAYOUT_SIZE, blocks, 3).mean(axis=(1, 3)).ravel()
    return ViewFeature(colour=colour, layout=layout.astype(np.float64), structure=structure / luma.size)


def view_distance(a: ViewFeature, b: ViewFeature, same_window: bool) -> float:
    colour_w, layout_w, structure_w = TEMPORAL_WEIGHTS if same_window else SPATIAL_WEIGHTS
    return float(
        colour_w * 0.5 * np.abs(a.colour - b.colour).sum()
        + layout_w * np.abs(a.layout - b.layout).mean()
        + structure_w * np.abs(a.structure - b.structure).sum()
    )


def diversity(frames: list[np.ndarray], seed: int = 0) -> float:
    """1 − exp(−mean pairwise view distance / DIVERSITY_SCALE), in [0, 1)."""
    views, window_of = views_of(frames, seed)
    features = [view_feature(v) for v in views]
    if len(features) < 2:
        return 0.0
    colour = np.stack([f.colour for f in features])
    layout = np.stack([f.layout for f in features])
    structure = np.stack([f.structure for f in features])
    # All pairs at once: |a-b| summed over bins, for every (i, j).
    colour_d = 0.5 * np.abs(colour[:, None, :] - colour[None, :, :]).sum(axis=2)
    layout_d = np.abs(layout[:, None, :] - layout[None, :, :]).mean(axis=2)
    structure_d = np.abs(structure[:, None, :] - structure[None, :, :]).sum(axis=2)
    windows = np.asarray(window_of)
    same = windows[:, None] == windows[None, :]
    weights = [np.where(same, t, s) for t, s in zip(TEMPORAL_WEIGHTS, SPATIAL_WEIGHTS)]
    distances = weights[0] * colour_d + weights[1] * layout_d + weights[2] * structure_d
    upper = np.triu_indices(len(features), k=1)
    mean_distance = float(distances[upper].mean())
    return float(1.0 - np.exp(-mean_distance / DIVERSITY_SCALE))


def colorfulness(frame: np.ndarray) -> float:
    """Hasler–Süsstrunk colourfulness M of one frame (0-255 scale)."""
    rgb = _as_rgb(frame).astype(np.float64)
    rg = rgb[:, :, 0] - rgb[:, :, 1]
    yb = 0.5 * (rgb[:, :, 0] + rgb[:, :, 1]) - rgb[:, :, 2]
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    centre = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * centre)


def fill(frame: np.ndarray) -> float:
    """Fraction of pixels that differ from the dominant background colour by more than FILL_TOLERANCE."""
    rgb = _as_rgb(frame)
    pixels = rgb.reshape(-1, 3)
    levels = (pixels.astype(np.int64) * FILL_LEVELS) // 256
    codes = (levels[:, 0] * FILL_LEVELS + levels[:, 1]) * FILL_LEVELS + levels[:, 2]
    dominant = int(np.bincount(codes, minlength=FILL_LEVELS**3).argmax())
    background = pixels[codes == dominant].astype(np.float64).mean(axis=0)
    differs = np.abs(pixels.astype(np.float64) - background).max(axis=1) > FILL_TOLERANCE
    return float(differs.mean())


def score_frames(frames: list[np.ndarray], seed: int = 0) -> ProgramScores:
    """All scores of one program from its frames (different times and mouse positions, same size)."""
    if not frames:
        raise ValueError("scoring needs at least one frame")
    return ProgramScores(
        diversity=round(diversity(frames, seed), 6),
        colorfulness=round(float(np.mean([colorfulness(f) for f in frames])), 4),
        fill=round(float(np.mean([fill(f) for f in frames])), 6),
        frames_used=len(frames),
    )


# --- driver: `harvest score` ----------------------------------------------------------------------------------
# Only this (parent) process writes the catalog; render workers return frames.

SCORE_FRAMES = 8
SCORE_SIZE = 128
# Every program is drawn at the same (time, mouse) points, so scores compare programs, not luck of the draw.
SCORE_SEED_KEY = "harvest-score-v1"
SCORE_BATCH = 50
SCORE_SET = "score"
# A simulation is scored along one run from frame 0 with the mouse untouched, as the website shows it on load (the
# mouse of a frame asked for is also the mouse of the steps before it, so one mouse keeps the run one run). The
# first four are validation's checkpoints (renderer/passes.py), so at the default --size 128 validation continues
# the simulation it judged. The rest go on a quarter of a second apart, up to 2 s: 60 more steps, as many as the
# verdict's. On 80 shared 2022 multi-pass programs (2 busy cores), validation scored 35 of 67 `ok` ones with these
# frames, and 29 of 65 going on to 3 s (frames 89..179, 120 more steps): slow simulations use the 10 s already.
SIMULATION_SCORE_FRAMES = (0, 9, 29, 59, 74, 89, 104, 119)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)

ProgressCallback = Callable[[int], None]


def score_frame_set(simulation: bool) -> FrameSet:
    """The frames every program is scored from, by validation or by `harvest score` alike: the fixed seeded
    points for a single-pass program, SIMULATION_SCORE_FRAMES for a simulation."""
    if simulation:
        frames = tuple(simulation_frame(n) for n in SIMULATION_SCORE_FRAMES)
    else:
        frames = frame_specs(SCORE_SEED_KEY, SCORE_FRAMES, SCORE_SIZE, SCORE_SIZE)
    return FrameSet(SCORE_SET, frames, SCORE_SIZE, SCORE_SIZE)


def unscored_program_ids(session: Session, program_ids: list[int] | None = None) -> list[int]:
    """`ok` programs (not exact duplicates) with no score, or one from an older scoring method."""
    query = (
        select(Program.id)
        .join(Validation, Validation.program_id == Program.id)
        .join(Score, Score.program_id == Program.id, isouter=True)
        .where(Validation.verdict == Verdict.OK.value, Program.duplicate_of.is_(None))
        .where(or_(Score.program_id.is_(None), Score.method != METHOD))
        .order_by(Program.id)
    )
    ids = list(session.exec(query).all())
    if program_ids is not None:
        wanted = set(program_ids)
        ids = [pid for pid in ids if pid in wanted]
    return ids


@dataclass
class ScoreSummary:
    scored: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # verdict of the scoring render -> programs
    seconds: float = 0.0
    interrupted: bool = False


def score_row(program_id: int, result: ProgramScores) -> Score:
    return Score(program_id=program_id, diversity=result.diversity, colorfulness=result.colorfulness,
                 fill=result.fill, frames_used=result.frames_used, method=METHOD, scored_at=utcnow())


class ScoreStage:
    """Draw each program at the fixed scoring points and keep its scores."""

    name = "score"

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.pending: dict[int, ProgramScores] = {}

    def select(self, session: Session) -> list[int]:
        return unscored_program_ids(session)

    def job(self, program: CatalogProgram) -> RenderJob:
        frame_set = score_frame_set(program.code.multipass)
        return RenderJob(key=program.id, program=program.code, frames=frame_set.frames, width=frame_set.width,
                         height=frame_set.height, timeout_s=self.timeout_s, keep_frames=True)

    def consume(self, result: RenderResult) -> str:
        # A program that draws nothing at the scoring points still has frames to score (diversity 0).
        if result.verdict in (Verdict.OK, Verdict.BLANK) and result.frames:
            self.pending[result.key] = score_frames(result.frames, seed=result.key)
            return "scored"
        return str(result.verdict)

    def save(self, session: Session) -> None:
        for program_id, values in self.pending.items():
            session.merge(score_row(program_id, values))
        self.pending = {}


def _ids_to_score(session: Session, program_ids: list[int] | None, rescore: bool) -> list[int]:
    if not rescore:
        return unscored_program_ids(session, program_ids)
    query = (
        select(Program.id)
        .join(Validation, Validation.program_id == Program.id)
        .where(Validation.verdict == Verdict.OK.value, Program.duplicate_of.is_(None))
        .order_by(Program.id)
    )
    wanted = set(program_ids) if program_ids is not None else None
    return [pid for pid in session.exec(query).all() if wanted is None or pid in wanted]


def score_catalog(
    catalog,
    program_ids: list[int] | None = None,
    executor: ExecutorSpec = ExecutorSpec(),
    rescore: bool = False,
    progress: ProgressCallback | None = None,
    shader_cache_dir: Path | None = None,
    on_event: Callable[[StageEvent], None] | None = None,
) -> ScoreSummary:
    """Render and score the `ok` programs that lack a current score (all of them with `rescore`)."""
    with catalog.session() as session:
        ids = _ids_to_score(session, program_ids, rescore)
    summary = ScoreSummary()
    if not ids:
        return summary

    def forward(event: StageEvent) -> None:
        if progress and event.kind == "result":
            progress(1)
        if on_event:
            on_event(event)

    with executor.build(shader_cache_dir) as pool:
        report = run_stage(catalog, pool, ScoreStage(), BatchPolicy(results=SCORE_BATCH), forward, program_ids=ids)
    summary.scored = report.counts.pop("scored", 0)
    summary.failed = dict(report.counts)
    summary.seconds = report.seconds
    summary.interrupted = report.interrupted
    return summary


def threshold_counts(session: Session, thresholds: tuple[float, ...] = THRESHOLDS) -> tuple[int, dict[float, int]]:
    """(scored exportable programs, how many of them each --min-diversity threshold keeps).

    Exportable: `ok`, neither an exact nor a near duplicate."""
    query = (
        select(Score.diversity)
        .join(Program, Program.id == Score.program_id)
        .join(Validation, Validation.program_id == Program.id)
        .where(Validation.verdict == Verdict.OK.value)
        .where(Program.duplicate_of.is_(None), Program.near_duplicate_of.is_(None))
    )
    values = np.asarray(session.exec(query).all(), dtype=np.float64)
    return int(values.size), {t: int((values >= t).sum()) for t in thresholds}
