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

With `atlas_tiles` > 0 the child compiles a single-pass program as an AtlasProgram (renderer/atlas.py) when it can:
`render_many` then draws up to that many frames in one draw and one readback, each equal to a single draw bit for
bit, and a single `render` is a one-tile atlas. A program the atlas refuses is compiled the ordinary way.

`prepare` is the one request without a waiting caller: the child compiles the program, draws it once and drops it.
Mesa keeps what it compiled in its shader cache, so a second process that compiles the same program later finds it
there (a compile of hundreds of ms becomes one of a few ms); renderer/compile_ahead.py runs such a process ahead
of a live-data stream.

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
from collections.abc import Sequence
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

    def __init__(self, environment: dict[str, str] | None = None, device_index: int | None = None,
                 atlas_tiles: int = 0) -> None:
        self.environment = environment or {}
        self.device_index = device_index  # EGL device the child renders on; None: EGL's default
        self.atlas_tiles = atlas_tiles
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
        return self._draw_request(("render", key, frame, width, height), deadline_s)

    def render_many(self, key: int, frames: Sequence[FrameSpec], width: int, height: int,
                    deadline_s: float) -> list[np.ndarray]:
        """Each frame as `render` draws it: in one atlas draw where the child holds the program as an atlas, else
        one draw after another; one deadline for them all (and for a compile again, as in `render`)."""
        return list(self._draw_request(("render_many", key, tuple(frames), width, height), deadline_s))

    def prepare(self, source: ProgramSource) -> None:
        """Ask the child to compile `source` and drop it, without waiting (see the module's docstring); each request
        is answered once, read with `prepared`."""
        conn = self._conn if self._conn is not None else self._start()
        try:
            conn.send(("prepare", source))
        except OSError:
            self._kill()
            raise DrawFailed("the drawing process had died") from None

    def prepared(self) -> int:
        """How many `prepare` requests the child has answered since the last call (never waits)."""
        answered = 0
        try:
            while self._conn is not None and self._conn.poll(0):
                self._conn.recv()
                answered += 1
        except (EOFError, OSError):
            self._kill()
        return answered

    def kill(self) -> None:
        """Stop the child now (a request it is stuck in is abandoned)."""
        self._kill()

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

    def _draw_request(self, message: tuple, deadline_s: float):
        """A draw of program message[1], compiling it again first in a fresh child, within one deadline."""
        key = message[1]
        if key not in self._sources:
            raise KeyError(f"program {key} was not compiled")
        started = time.monotonic()
        if key not in self._compiled and not self._compile_in_child(key, deadline_s):
            raise DrawFailed("the program no longer compiles")
        remaining = max(0.0, deadline_s - (time.monotonic() - started))
        return self._request(message, remaining)

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
        settings = [str(-1 if self.device_index is None else self.device_index), str(self.atlas_tiles)]
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "renderer.drawing_process", str(theirs.fileno()), *settings],
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


class ProgramsInContext:
    """Compiled programs of one context and the requests on them (the child serves them; live data drawing in
    its own process uses them too); each handler returns the answer's payload."""

    def __init__(self, ctx, atlas_tiles: int) -> None:
        self.ctx = ctx
        self.atlas_tiles = atlas_tiles
        self.programs: dict[int, object] = {}

    def build(self, source: ProgramSource):
        """The program drawn once at 1x1 (which is when llvmpipe generates code); None when it does not compile."""
        from renderer.atlas import AtlasProgram
        from renderer.atlas_source import AtlasError
        from renderer.compiler import compile_program
        from renderer.program import ProgramError

        program = None
        if self.atlas_tiles and not source.multipass:
            try:
                program = AtlasProgram(self.ctx, source, tiles=self.atlas_tiles)
            except (AtlasError, ProgramError):
                program = None  # compiled the ordinary way below, which says why when it fails too
        try:
            program = program or compile_program(self.ctx, source)
        except ProgramError:
            return None
        self.draw(program, (_WARMUP_FRAME,), 1, 1)
        return program

    @staticmethod
    def draw(program, frames: Sequence[FrameSpec], width: int, height: int) -> list[np.ndarray]:
        from renderer.atlas import AtlasProgram

        if isinstance(program, AtlasProgram):
            return [tile.pixels for tile in program.render(frames, width, height)]
        return [program.render(frame, width, height) for frame in frames]

    def compile(self, key: int, source: ProgramSource) -> bool:
        program = self.build(source)
        if program is not None:
            self.programs[key] = program
        return program is not None

    def prepare(self, source: ProgramSource) -> bool:
        program = self.build(source)
        if program is not None:
            program.release()
        return program is not None

    def render(self, key: int, frame: FrameSpec, width: int, height: int) -> np.ndarray:
        return self.draw(self.programs[key], (frame,), width, height)[0]

    def render_many(self, key: int, frames: Sequence[FrameSpec], width: int, height: int) -> list[np.ndarray]:
        return self.draw(self.programs[key], frames, width, height)

    def steps(self, key: int, frame: FrameSpec, width: int, height: int) -> int:
        steps_to = getattr(self.programs[key], "steps_to", None)
        return steps_to(frame, width, height) if steps_to else 0

    def release(self, key: int) -> None:
        program = self.programs.pop(key, None)
        if program is not None:
            program.release()

    def restart(self, key: int) -> None:
        if hasattr(self.programs.get(key), "restart"):
            self.programs[key].restart()


_ANSWERED = ("compile", "prepare", "render", "render_many", "steps")
_UNANSWERED = ("release", "restart")


def _serve(conn: Connection, device_index: int | None, atlas_tiles: int) -> None:
    from renderer.context import create_context
    from renderer.executors import die_with_parent

    die_with_parent()
    try:
        ctx = create_context(device_index)
    except RenderError as exc:
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", os.getpid()))
    programs = ProgramsInContext(ctx, atlas_tiles)
    while True:
        try:
            operation, *arguments = conn.recv()
        except (EOFError, OSError):
            return
        if operation == "stop":
            return
        if operation in _UNANSWERED:
            getattr(programs, operation)(*arguments)
            continue
        if operation not in _ANSWERED:
            conn.send(("error", f"unknown request {operation!r}"))
            continue
        try:
            conn.send(("done", getattr(programs, operation)(*arguments)))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who drops the program
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    # GL drivers may write to stdout; only the socket carries the protocol.
    os.dup2(2, 1)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    device = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    atlas_tiles = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    _serve(Connection(int(sys.argv[1])), None if device < 0 else device, atlas_tiles)


if __name__ == "__main__":
    main()
