"""Shared fixtures. Tests never reach the internet; anything needing ../shared skips when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))


@pytest.fixture()
def catalog(tmp_path):
    from corpus.db import open_catalog

    cat = open_catalog(tmp_path / "harvest.db")
    yield cat
    cat.close()


@pytest.fixture()
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(scope="session")
def gl_context():
    """One headless GL context for the test process (render workers make their own)."""
    from renderer.context import create_context

    ctx = create_context()
    yield ctx
    ctx.release()
