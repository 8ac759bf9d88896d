"""Joining a Ray cluster, or starting a private Ray, with one clear line when that fails.

While a cluster refuses this driver, Ray's C++ client prints a warning for each retry (twenty lines for a
missing token) before Python sees the error. Those lines go to the log instead of the terminal, and the
error says what the refusal was and what to set.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from renderer.errors import RenderError

MAX_REASON_CHARS = 300
AUTH_HINT = " (if the cluster uses token authentication, set RAY_AUTH_MODE=token here too)"
TOKEN_NEEDED = (
    "the Ray cluster at {address!r} {problem}: run with RAY_AUTH_MODE=token and the cluster's token in "
    "~/.ray/auth_token, a file named by RAY_AUTH_TOKEN_PATH, or RAY_AUTH_TOKEN"
)
# What Ray's errors say, somewhere in their chain, when the cluster turned the driver's token down.
_REFUSED_MARKS = ("InvalidAuthToken", "Authentication token is missing or incorrect")
_CHAIN_DEPTH = 8

log = logging.getLogger(__name__)


def short_error(error: BaseException) -> str:
    """Ray's error texts run to many lines of advice; the first line says what happened."""
    text = " ".join(str(error).split())
    return text[:MAX_REASON_CHARS]


def init_ray(ray: ModuleType, address: str | None, num_cpus: float) -> None:
    """`ray.init` for a private Ray with `num_cpus` CPUs (`address=None`) or for the cluster at `address`."""
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,  # no "Started a local Ray instance" banners
        "log_to_driver": False,  # actors' stdout/stderr stay in Ray's log files
    }
    try:
        if address is None:
            ray.init(num_cpus=max(1, math.ceil(num_cpus)), **options)
        else:
            with _stderr_to_log():
                ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        # Ray >= 2.59 raises this before connecting when RAY_AUTH_MODE=token finds no token.
        no_token = isinstance(exc, getattr(ray.exceptions, "AuthenticationError", ()))
        raise RenderError(_join_error(address, exc, no_token)) from exc


def _join_error(address: str | None, error: BaseException, no_token: bool) -> str:
    if address is not None and no_token:
        return TOKEN_NEEDED.format(address=address, problem="needs a token and this machine has none")
    if address is not None and _mentions(error, _REFUSED_MARKS):
        return TOKEN_NEEDED.format(address=address, problem="refused this machine's token (none, or not the cluster's)")
    where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
    # Clusters started with `ray start` (Ray >= 2.59) reject drivers that send no token.
    hint = "" if address is None or os.environ.get("RAY_AUTH_MODE") else AUTH_HINT
    return f"cannot start or join {where}: {short_error(error)}{hint}"


def _mentions(error: BaseException, marks: tuple[str, ...]) -> bool:
    """Whether `error` or an error it was raised from says one of `marks`."""
    seen: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return False
        if any(mark in str(seen) for mark in marks):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def _stderr_to_log() -> Iterator[None]:
    """Send what is written to file descriptor 2 while the block runs (C++ code included) to the log.

    Only around joining a cluster: a private Ray starts processes here, which would keep the capture
    file as their stderr.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep off the terminal
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                log.info("ray: %s", line)
