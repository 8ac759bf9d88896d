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


_SHARED_GL_CONTEXT: list = []


@pytest.fixture(scope="session")
def gl_context():
    """One headless GL context for the test process (render workers make their own)."""
    from renderer.context import create_context

    ctx = create_context()
    _SHARED_GL_CONTEXT.append(ctx)
    yield ctx
    _SHARED_GL_CONTEXT.clear()
    ctx.release()


@pytest.fixture(autouse=True)
def _shared_gl_context_is_current():
    """A test that made (and released) a GL context of its own in this process leaves that one current, or none:
    the shared context's calls would then draw nothing. Make it current again before every test."""
    if _SHARED_GL_CONTEXT:
        _SHARED_GL_CONTEXT[0].__enter__()
    yield
