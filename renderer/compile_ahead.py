"""Compile ahead: a second drawing process compiles the programs a stream will need next, so that the stream's own
compile of them is a hit in Mesa's shader cache.

GL objects cannot move between processes, but Mesa's on-disk shader cache is shared by every process of the user:
a program that one process compiled (and drew once, which is when llvmpipe generates its code) compiles again in
another in a few ms instead of hundreds (measured on llvmpipe: 385 ms a program on a cold cache, 9 ms warm). The
helper compiles exactly what the stream's drawing process will (same atlas setting, same device), so the cache
keys match; the images cannot change, only when the work is done. The helper is never waited for: requests are
posted, answers are counted when they are there, and a helper stuck past the compile budget is killed (the
stream then compiles that program itself, as it would without a helper).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from renderer.drawing_process import DrawFailed, DrawingProcess
from renderer.errors import RenderError
from renderer.jobs import ProgramSource

DEFAULT_OUTSTANDING = 2  # requests in flight: enough to keep the helper busy, few enough to follow the pool


class CompileAhead:
    """Posts compile requests to a helper process, at most `outstanding` at a time, each source once."""

    def __init__(self, helper: DrawingProcess, deadline_s: float, outstanding: int = DEFAULT_OUTSTANDING) -> None:
        self.helper = helper
        self.deadline_s = deadline_s
        self.outstanding = max(1, outstanding)
        self._posted: set[ProgramSource] = set()
        self._waiting: deque[ProgramSource] = deque()
        self._in_flight: deque[float] = deque()  # when each unanswered request was posted, oldest first
        self.prepared = 0
        self.abandoned = 0

    def want(self, sources: Iterable[ProgramSource]) -> None:
        """`sources` are what the stream needs next, in order: they replace the requests not yet posted (those
        the stream no longer names it has compiled itself), then what the helper has room for is posted."""
        self._waiting = deque(dict.fromkeys(source for source in sources if source not in self._posted))
        self.advance()

    def advance(self) -> None:
        """Count the answers that arrived, give up on a stuck request, post the next ones."""
        for _ in range(self.helper.prepared()):
            self._in_flight.popleft()
            self.prepared += 1
        if self._in_flight and time.monotonic() - self._in_flight[0] > self.deadline_s:
            self.helper.kill()  # the stream compiles that program itself, within its own budget
            self.abandoned += len(self._in_flight)
            self._in_flight.clear()
        while self._waiting and len(self._in_flight) < self.outstanding:
            source = self._waiting.popleft()
            self._posted.add(source)
            try:
                self.helper.prepare(source)
            except (DrawFailed, RenderError):
                self.abandoned += 1
                continue
            self._in_flight.append(time.monotonic())

    def close(self) -> None:
        self.helper.close()
