"""`git`: fragment programs in a git repository (a URL or a local path).

The repository is shallow-cloned into `<catalog folder>/.harvest-cache/git/<name>` (refreshed on later
runs); every `.frag`, `.fs`, `.glsl` and `.shader` file that looks like a fragment program becomes one
program. Licence: declared in the file's comments, else the repository's LICENSE file, else unknown.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from corpus.licenses import UNKNOWN, detect_license, license_of_file
from corpus.normalize import looks_like_fragment_program
from corpus.records import FetchedPass, FetchedProgram, FetchFailure
from corpus.redaction import public_url, redact, register_url_credentials
from harvester.errors import HarvestError
from harvester.sources.base import AlreadyKnown, SourceItem, SourceUnavailable, WantedFn

NAME = "git"
PROGRAM_SUFFIXES = (".frag", ".fs", ".glsl", ".shader")
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "COPYING", "COPYING.md", "UNLICENSE")
MAX_FILE_BYTES = 1_000_000
GIT_TIMEOUT_S = 600
_HOSTS_WITH_BLOB_URLS = ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")


def _git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT_S) -> str:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", GIT_SSH_COMMAND="ssh -oBatchMode=yes")
    try:
        done = subprocess.run(
            ["git", "-c", "protocol.ext.allow=never", *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
    except FileNotFoundError:
        raise HarvestError("git is not installed; --source git needs the git command") from None
    except subprocess.TimeoutExpired:
        raise SourceUnavailable(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise SourceUnavailable(f"git {args[0]} failed: {redact(lines[-1] if lines else 'exit ' + str(done.returncode))}")
    return done.stdout


def _is_local(url: str) -> bool:
    return "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url)


@dataclass
class GitSource:
    url: str
    cache_root: Path  # <catalog folder>/.harvest-cache/git

    name: str = NAME
    exhausted: bool = field(default=False, init=False)
    _total: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.url.startswith("-"):
            raise SourceUnavailable(f"--url {self.url!r} is not a repository")
        if _is_local(self.url):
            local = Path(self.url).expanduser().resolve()
            if not local.is_dir():
                raise SourceUnavailable(f"--url {self.url}: no such repository folder")
            self._clone_url = local.as_uri()  # file:// so that --depth applies
            self._shown = str(local)
        else:
            register_url_credentials(self.url)  # git may quote the URL back in its errors
            self._clone_url = self.url
            self._shown = public_url(self.url) if "://" in self.url else redact(self.url)

    @property
    def scope(self) -> str:
        return self._shown

    @property
    def total(self) -> int | None:
        return self._total

    def params(self) -> dict:
        return {"url": self._shown}

    @property
    def checkout(self) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self._shown.split("://")[-1]).strip("-.")[-60:] or "repo"
        digest = hashlib.sha256(self._clone_url.encode()).hexdigest()[:10]
        return self.cache_root / f"{slug}-{digest}"

    def _sync(self) -> str:
        """Shallow clone (first run) or fetch (later runs); returns the checked-out commit."""
        target = self.checkout
        if (target / ".git").is_dir():
            _git("fetch", "--depth", "1", "--quiet", "origin", "HEAD", cwd=target)
            _git("checkout", "--quiet", "--force", "FETCH_HEAD", cwd=target)
        else:
            self.cache_root.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            _git("clone", "--depth", "1", "--quiet", "--no-recurse-submodules", "--", self._clone_url, str(partial))
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
        return _git("rev-parse", "HEAD", cwd=target).strip()

    def _file_url(self, commit: str, relpath: str) -> str:
        if _is_local(self.url):
            return (Path(self._shown) / relpath).as_uri()
        parts = urlsplit(self._shown if "://" in self._shown else "ssh://" + self._shown.replace(":", "/", 1))
        host = (parts.hostname or "").lower()
        repo_path = parts.path.removesuffix(".git").strip("/")
        if host in _HOSTS_WITH_BLOB_URLS:
            return f"https://{host}/{repo_path}/blob/{commit}/{relpath}"
        return f"{self._shown}#{relpath}@{commit[:12]}"

    def _owner(self, head_author: str) -> str:
        if not _is_local(self.url):
            path = urlsplit(self._shown).path.strip("/") if "://" in self._shown else self._shown.split(":", 1)[-1]
            if "/" in path:
                return path.split("/")[0]
        return head_author

    def _program_files(self, root: Path) -> list[str]:
        found: list[str] = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in sorted(files):
                path = Path(folder) / name
                if path.suffix.lower() in PROGRAM_SUFFIXES and path.is_file() and not path.is_symlink():
                    found.append(path.relative_to(root).as_posix())
        return sorted(found)

    def _repo_license(self, root: Path) -> str | None:
        for name in LICENSE_FILES:
            path = root / name
            if path.is_file() and not path.is_symlink():
                return license_of_file(path.read_text(encoding="utf-8", errors="replace"))
        return None

    def items(self, cursor: dict, wanted: WantedFn) -> Iterator[SourceItem]:
        commit = self._sync()
        root = self.checkout
        head_author, head_date = _git("log", "-1", "--format=%an%x00%ct", cwd=root).strip().split("\x00")
        published = datetime.fromtimestamp(int(head_date), tz=UTC)
        owner = self._owner(head_author)
        repo_license = self._repo_license(root)
        files = self._program_files(root)
        start = cursor.get("index", 0) if cursor.get("commit") == commit and isinstance(cursor.get("index"), int) else 0
        self._total = max(0, len(files) - start)
        id_prefix = self._shown.split("://")[-1].removesuffix(".git").rstrip("/")
        for index in range(start, len(files)):
            relpath = files[index]
            source_id = f"{id_prefix}/{relpath}"
            yield SourceItem(self._program(root, relpath, source_id, commit, owner, published, repo_license, wanted),
                             {"commit": commit, "index": index + 1})
        self.exhausted = True

    def _program(self, root: Path, relpath: str, source_id: str, commit: str, owner: str, published: datetime,
                 repo_license: str | None, wanted: WantedFn) -> FetchedProgram | FetchFailure | AlreadyKnown:
        if not wanted(NAME, source_id):
            return AlreadyKnown(NAME, source_id)
        path = root / relpath
        if path.stat().st_size > MAX_FILE_BYTES:
            return FetchFailure(NAME, source_id, f"file larger than {MAX_FILE_BYTES:,} bytes")
        code = path.read_text(encoding="utf-8", errors="replace")
        if not looks_like_fragment_program(code):
            return FetchFailure(NAME, source_id, "not a fragment program (no mainImage, or main without a colour output)")
        detected = detect_license(code)
        if detected:
            license_id, origin = detected, "detected"
        elif repo_license:
            license_id, origin = repo_license, "declared"
        else:
            license_id, origin = UNKNOWN, "source-default"
        return FetchedProgram(
            source=NAME,
            source_id=source_id,
            url=self._file_url(commit, relpath),
            title=Path(relpath).stem[:500],
            author=owner[:200],
            published_at=published,
            license=license_id,
            license_origin=origin,
            passes=[FetchedPass("image", code, [], "Image")],
            raw={"repository": self._shown, "commit": commit, "path": relpath},
        )
