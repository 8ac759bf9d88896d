"""One writer per catalog: an advisory lock on a file beside it, held for the life of the process.

SQLite's own locking serialises transactions, not runs: two validations of one catalog would both
select the same pending programs and collide on their verdicts. The lock is an `flock`, so the
kernel drops it when the holder dies, even by `kill -9`; there is never a stale lock to clean up.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from corpus.errors import CatalogBusy


@dataclass
class _Held:
    fd: int
    users: int


# Several stages of one process (quickstart, tests) may open the same catalog: they share the lock.
_HELD: dict[Path, _Held] = {}


def lock_path(catalog_path: Path) -> Path:
    return catalog_path.with_name(catalog_path.name + ".lock")


def _holder_pid(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", errors="replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def acquire(catalog_path: Path) -> None:
    """Take the writer lock of `catalog_path` (resolved), or raise CatalogBusy naming the holder's pid."""
    key = catalog_path.resolve()
    held = _HELD.get(key)
    if held is not None:
        held.users += 1
        return
    fd = os.open(lock_path(key), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder_pid(fd)
        os.close(fd)
        raise CatalogBusy(f"another harvest is writing this catalog (pid {pid}); wait for it to finish or stop it") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[key] = _Held(fd=fd, users=1)


def release(catalog_path: Path) -> None:
    key = catalog_path.resolve()
    held = _HELD.get(key)
    if held is None:
        return
    held.users -= 1
    if held.users == 0:
        del _HELD[key]
        os.close(held.fd)  # closing drops the flock; the file stays, empty locks are harmless
