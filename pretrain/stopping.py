"""Stopping a run on SIGINT or SIGTERM at a step boundary, so the checkpoint holds a whole step.

The handler only records the signal; the training loop reads it between steps. Raising from the handler instead
would land anywhere: inside an optimizer update, a collective, or the wait for a rendered batch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    """The first stop signal received (0 while none has been)."""

    signum: int = 0

    def record(self, signum: int, _frame: object = None) -> None:
        if not self.signum:
            self.signum = signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Record SIGINT and SIGTERM in the request instead of acting on them, until the block ends. Outside the main
    thread Python cannot take signals, so the request then never fills."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request.record) for signum in STOP_SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def children_shielded() -> Iterator[None]:
    """Processes started inside this block never act on SIGINT or SIGTERM.

    A Ctrl-C reaches the whole foreground process group, and a batch system's SIGTERM often does too. A render
    worker that died of it would leave the trainer waiting for a batch that never comes (or torch's SIGCHLD
    handler raising mid-step), before the checkpoint. A blocked signal mask survives fork and exec, so the
    workers inherit it from their first instruction; the trainer stops them itself, and they are SIGKILLed if it
    dies. The block covers the calling thread only, and a signal that arrives meanwhile waits, so none is lost."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
