"""Where an export is assembled and how it takes the place of the previous one.

The dataset is written into `.NAME.partial-PID-XXXX` beside the target folder NAME. When it is complete it is
swapped with the target in one step where Linux allows it (renameat2 with RENAME_EXCHANGE); elsewhere the old
export is first renamed to `.NAME.old-PID-XXXX`, then the new one to NAME. Either way a kill at any moment leaves
a complete export reachable: NAME itself, or (between the two renames) the retired `.old-` folder.

A later export of the same target calls `recover` first: leftovers whose process is gone are removed, except that
a retired export is put back when NAME is missing. Leftovers of a live process belong to an export still running.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PARTIAL = "partial"
RETIRED = "old"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}


@dataclass(frozen=True)
class Leftover:
    path: Path
    kind: str  # PARTIAL | RETIRED
    pid: int


def make_staging(out: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.{PARTIAL}-{os.getpid()}-", dir=out.parent))


def leftovers(out: Path) -> list[Leftover]:
    """Staging and retired folders of `out` left by any export, newest first."""
    # `.NAME.old-PID` with nothing after it is what exports before this scheme left.
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.({PARTIAL}|{RETIRED})-(\d+)(?:-|$)")
    found: list[tuple[float, Leftover]] = []
    for entry in out.parent.iterdir() if out.parent.is_dir() else ():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            found.append((entry.lstat().st_mtime, Leftover(entry, match.group(1), int(match.group(2)))))
    return [leftover for _, leftover in sorted(found, key=lambda item: item[0], reverse=True)]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive, just not ours to signal
    return True


def recover(out: Path) -> list[Path]:
    """Undo what crashed exports of `out` left behind; returns the folders removed (a restored one is not)."""
    dead = [leftover for leftover in leftovers(out) if not process_alive(leftover.pid)]
    retired = [leftover for leftover in dead if leftover.kind == RETIRED]
    if retired and not out.exists():
        # Killed between the two renames: the retired folder is the last complete export.
        os.replace(retired.pop(0).path, out)
    removed = [leftover.path for leftover in dead if leftover.kind == PARTIAL] + [r.path for r in retired]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def install(staging: Path, out: Path) -> None:
    """Put the finished `staging` folder at `out`, replacing what is there without ever leaving neither."""
    os.chmod(staging, 0o755)
    if not out.exists():
        os.replace(staging, out)
    elif exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # it now holds the previous export, under a partial name
    else:
        token = secrets.token_hex(4)
        retired = _sibling(out, RETIRED, token)
        retire(out, retired)
        try:
            os.replace(staging, out)
        except BaseException:
            os.replace(retired, out)
            raise
        discard(retired, _sibling(out, PARTIAL, token))


def _sibling(out: Path, kind: str, token: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{token}"


def retire(out: Path, retired: Path) -> None:
    os.replace(out, retired)


def discard(retired: Path, doomed: Path) -> None:
    """Delete a retired export, renamed first so that a half-deleted one is never mistaken for a complete one."""
    os.replace(retired, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where this system or file system cannot (the caller falls back)."""
    rename = _renameat2()
    if rename is None:
        return False
    if rename(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(second))


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28 and later
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
    return function
