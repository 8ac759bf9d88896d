"""A render process that a caller can abandon: programs compiled and drawn in a child, with deadlines.

A GL call cannot be interrupted from inside the process that made it (and moderngl keeps the GIL while
llvmpipe draws), so a program that takes minutes over one frame would hold its caller for minutes. Here
the caller keeps only handles: every compile and draw is a request to a child process, answered within a
deadline or the child is killed. The next request starts a fresh child, which recompiles, on first use,
the programs the caller still holds.

A simulation (a multi-pass program, renderer/passes.py) keeps running in the child between requests: frame n
after frame m < n of the same run costs n - m steps. `steps_to` says what a frame will cost before it is asked
for (so the caller can set its deadline); `restart` starts the simulation again from frame 0. A program compiled
again in a fresh child starts from frame 0 too, which costs more steps but gives the same pixels.

Unlike the validation executor, which is a pool of workers, this serves one caller that draws program after
program (a live-data stream). The child is started with `subprocess`, not `multiprocessing`, because the
callers are often DataLoader workers, and daemonic processes may not have multiprocessing children.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from renderer.errors import RenderError
from renderer.jobs import FrameSpec, ProgramSource

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 2.0
_WARMUP_FRAME = FrameSpec(time=0.0)


class DrawTimeout(Exception):
    """The child did not answer within the deadline and was killed."""


class DrawFailed(Exception):
    """The request failed in the child (a draw error, or the child died); the process itself goes on."""


class DrawingProcess:
    """A child process holding compiled programs, addressed by keys chosen by the caller."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        self.environment = environment or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._sources: dict[int, ProgramSource] = {}  # every program the caller holds
        self._compiled: set[int] = set()  # the programs the current child holds
        self.restarts = 0

    # -- the caller's side ---------------------------------------------------------------------------

    def compile(self, key: int, source: ProgramSource, deadline_s: float) -> bool:
        """Compile `source` under `key` (and draw it once at 1x1, which is when llvmpipe generates code).
        False when it does not compile; raises DrawTimeout past the deadline."""
        self._sources[key] = source
        try:
            ok = self._compile_in_child(key, deadline_s)
        except DrawFailed:
            ok = False
        except DrawTimeout:
            self._sources.pop(key, None)
            raise
        if not ok:
            self._sources.pop(key, None)
        return ok

    def render(self, key: int, frame: FrameSpec, width: int, height: int, deadline_s: float) -> np.ndarray:
        """HxWx3 uint8, top row first. A program lost with a killed child is compiled again first, and that
        compile counts against the same deadline."""
        if key not in self._sources:
            raise KeyError(f"program {key} was not compiled")
        started = time.monotonic()
        if key not in self._compiled and not self._compile_in_child(key, deadline_s):
            raise DrawFailed("the program no longer compiles")
        remaining = max(0.0, deadline_s - (time.monotonic() - started))
        return self._request(("render", key, frame, width, height), remaining)

    def steps_to(self, key: int, frame: FrameSpec, width: int, height: int, deadline_s: float) -> int:
        """The simulation steps that rendering `frame` of program `key` takes from where the child is (0 for a
        single-pass program; from frame 0 for one the current child has not compiled)."""
        if key not in self._sources:
            raise KeyError(f"program {key} was not compiled")
        if not self._sources[key].multipass:
            return 0
        if key not in self._compiled:
            return max(0, int(frame.frame)) + 1
        return int(self._request(("steps", key, frame, width, height), deadline_s))

    def restart(self, key: int) -> None:
        """Simulate program `key` from frame 0 again at its next frame."""
        if key in self._compiled:
            self._send(("restart", key))

    def release(self, key: int) -> None:
        self._sources.pop(key, None)
        if key in self._compiled:
            self._compiled.discard(key)
            self._send(("release", key))

    def close(self) -> None:
        if self._process is None:
            return
        self._send(("stop",))
        try:
            self._process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        self._kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- plumbing ------------------------------------------------------------------------------------

    def _compile_in_child(self, key: int, deadline_s: float) -> bool:
        ok = self._request(("compile", key, self._sources[key]), deadline_s)
        if ok:
            self._compiled.add(key)
        return bool(ok)

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        environment = {**os.environ, **self.environment}
        # The child imports this package by name: make it findable even when the caller found it via sys.path.
        package_root = str(Path(__file__).resolve().parent.parent)
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, environment.get("PYTHONPATH")) if p)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "renderer.drawing_process", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=environment,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._compiled.clear()
        if not self._conn.poll(START_TIMEOUT_S):
            self._kill()
            raise RenderError(f"the drawing process did not start within {START_TIMEOUT_S:.0f} s")
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise RenderError("the drawing process exited while starting") from None
        if kind != "ready":
            self._kill()
            raise RenderError(str(payload))
        return self._conn

    def _send(self, message: tuple) -> None:
        if self._conn is None:
            return
        try:
            self._conn.send(message)
        except OSError:
            self._kill()

    def _request(self, message: tuple, deadline_s: float) -> object:
        conn = self._conn if self._conn is not None else self._start()
        try:
            conn.send(message)
        except OSError:
            self._kill()
            raise DrawFailed("the drawing process had died") from None
        if not conn.poll(deadline_s):
            self._kill()
            raise DrawTimeout(f"no answer within {deadline_s:.3g} s")
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise DrawFailed("the drawing process died") from None
        if kind == "error":
            raise DrawFailed(str(payload))
        return payload

    def _kill(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
                self.restarts += 1
            self._process.wait()
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._compiled.clear()


# -- the child's side --------------------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    from renderer.context import create_context
    from renderer.executors import die_with_parent
    from renderer.program import CompiledProgram, ProgramError, compile_program

    die_with_parent()
    try:
        ctx = create_context()
    except RenderError as exc:
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", os.getpid()))
    programs: dict[int, CompiledProgram] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        operation = message[0]
        if operation == "stop":
            return
        if operation == "release":
            program = programs.pop(message[1], None)
            if program is not None:
                program.release()
            continue
        if operation == "restart":
            if hasattr(programs.get(message[1]), "restart"):
                programs[message[1]].restart()
            continue
        try:
            if operation == "compile":
                _, key, source = message
                try:
                    program = compile_program(ctx, source)
                except ProgramError:
                    conn.send(("done", False))
                    continue
                program.render(_WARMUP_FRAME, 1, 1)
                programs[key] = program
                conn.send(("done", True))
            elif operation == "render":
                _, key, frame, width, height = message
                conn.send(("done", programs[key].render(frame, width, height)))
            elif operation == "steps":
                _, key, frame, width, height = message
                steps_to = getattr(programs[key], "steps_to", None)
                conn.send(("done", steps_to(frame, width, height) if steps_to else 0))
            else:
                conn.send(("error", f"unknown request {operation!r}"))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who drops the program
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    # GL drivers may write to stdout; only the socket carries the protocol.
    os.dup2(2, 1)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    _serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
