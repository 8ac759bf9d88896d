"""Score calibration on programs written for the test, rendered for real (EGL), and the `harvest score` driver."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import select

from corpus.models import Score
from corpus.scoring import (
    METHOD,
    colorfulness,
    diversity,
    fill,
    score_catalog,
    score_frames,
    threshold_counts,
)
from renderer.executor_spec import ExecutorSpec
from tests.test_export_programs import (
    ANIMATED,
    BLANK,
    COLOURFUL_STATIC,
    GREY_STRIPES,
    SMALL_IN_CANVAS,
    STATIC_GRADIENT,
    add_program,
)


def test_pure_scores_on_synthetic_frames():
    black = np.zeros((64, 64, 3), np.uint8)
    assert diversity([black] * 4) == 0.0 and fill(black) == 0.0 and colorfulness(black) == 0.0
    grey_noise = np.repeat(np.random.default_rng(0).integers(0, 256, (64, 64, 1), dtype=np.uint8), 3, axis=2)
    assert colorfulness(grey_noise) == pytest.approx(0.0, abs=1e-9)
    square = black.copy()
    square[:8, :8] = 255
    assert fill(square) == pytest.approx(64 / 4096)
    red_green = np.zeros((64, 64, 3), np.uint8)
    red_green[:, :32, 0] = 255
    red_green[:, 32:, 1] = 255
    assert colorfulness(red_green) > 100
    with pytest.raises(ValueError):
        score_frames([])


@pytest.fixture()
def scored(catalog):
    ids = {
        name: add_program(catalog, name, code)
        for name, code in [("blank", BLANK), ("gradient", STATIC_GRADIENT), ("animated", ANIMATED),
                           ("colourful", COLOURFUL_STATIC), ("stripes", GREY_STRIPES), ("small", SMALL_IN_CANVAS)]
    }
    add_program(catalog, "broken", "void mainImage(", verdict="compile_error")
    summary = score_catalog(catalog, executor=ExecutorSpec(workers=2))
    assert summary.scored == 6 and summary.failed == {}
    with catalog.session() as session:
        rows = {row.program_id: row for row in session.exec(select(Score)).all()}
    return catalog, {name: rows[pid] for name, pid in ids.items()}


def test_calibration(scored):
    _, scores = scored
    assert scores["blank"].diversity == 0.0 and scores["blank"].fill == 0.0
    assert 0.01 <= scores["gradient"].diversity <= 0.1  # documented: a static gradient scores about 0.05
    assert scores["animated"].diversity >= 0.5
    assert scores["animated"].diversity > scores["colourful"].diversity > scores["gradient"].diversity
    assert scores["colourful"].colorfulness > 100 and scores["stripes"].colorfulness < 1
    assert scores["small"].fill < 0.05 and scores["animated"].fill > 0.8 and 0.4 < scores["stripes"].fill < 0.6
    assert all(s.method == METHOD and s.frames_used == 8 and 0.0 <= s.diversity < 1.0 for s in scores.values())


def test_rescoring_is_incremental_and_deterministic(scored):
    catalog, scores = scored
    assert score_catalog(catalog, executor=ExecutorSpec(workers=1)).scored == 0  # nothing left to score
    again = score_catalog(catalog, executor=ExecutorSpec(workers=1), rescore=True)
    assert again.scored == 6
    with catalog.session() as session:
        rows = {row.program_id: row.diversity for row in session.exec(select(Score)).all()}
    assert all(rows[s.program_id] == s.diversity for s in scores.values())
    with catalog.session() as session:
        total, counts = threshold_counts(session)
    assert total == 6 and counts[0.1] >= counts[0.3] >= counts[0.6] and counts[0.6] >= 1
