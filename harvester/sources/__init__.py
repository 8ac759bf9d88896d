"""Sources of programs, all behind `harvester.sources.base.Source`; `open_source` picks one by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from corpus.redaction import redact, redact_exception, register_url_credentials
from harvester.errors import HarvestError
from harvester.http import PoliteClient
from harvester.sources.base import Source

SOURCE_NAMES = ("shadertoy-public", "glslsandbox", "git", "local")


@dataclass(frozen=True)
class SourceSettings:
    """The `harvest crawl` options a source may use; each source rejects the ones it cannot."""

    api_key: str | None = None
    base_url: str | None = None
    query: str | None = None
    sort: str | None = None
    pages: int | None = None
    url: str | None = None
    path: Path | None = None
    concurrency: int = 4


_APPLIES = {
    "shadertoy-public": {"api_key", "base_url", "query", "sort", "pages"},
    "glslsandbox": {"base_url", "pages"},
    "git": {"url"},
    "local": {"path"},
}


def _check_base_url(url: str) -> str:
    register_url_credentials(url)  # they are sent as asked, and hidden wherever a server quotes them back
    try:
        parts = urlsplit(url)
        _ = parts.port  # reading it raises ValueError for a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise HarvestError(f"--base-url must be an http(s) URL, not {redact(url)!r}")
    return url


def open_source(name: str, settings: SourceSettings, client: PoliteClient, cache_dir: Path) -> Source:
    """The source called `name`, configured from `settings`; a HarvestError names any misuse."""
    try:
        return _open(name, settings, client, cache_dir)
    except HarvestError as exc:
        raise redact_exception(exc) from None


def _open(name: str, settings: SourceSettings, client: PoliteClient, cache_dir: Path) -> Source:
    if name not in SOURCE_NAMES:
        raise HarvestError(f"unknown source {name!r}; choose one of: {', '.join(SOURCE_NAMES)}")
    for option in ("api_key", "base_url", "query", "sort", "pages", "url", "path"):
        if getattr(settings, option) is not None and option not in _APPLIES[name]:
            flag = "--" + option.replace("_", "-")
            if option == "api_key":
                continue  # SHADERTOY_API_KEY may well be set in the environment for every crawl
            raise HarvestError(f"{flag} does not apply to --source {name}")
    if settings.pages is not None and settings.pages < 1:
        raise HarvestError("--pages must be at least 1")

    if name == "shadertoy-public":
        from harvester.sources.shadertoy import ShadertoySource
        from harvester.sources.shadertoy_format import DEFAULT_BASE_URL

        return ShadertoySource(
            client=client,
            api_key=settings.api_key or "",
            base_url=_check_base_url(settings.base_url or DEFAULT_BASE_URL),
            query=settings.query,
            sort=settings.sort,
            pages=settings.pages,
            concurrency=settings.concurrency,
        )
    if name == "glslsandbox":
        from harvester.sources.glslsandbox import DEFAULT_BASE_URL, GlslSandboxSource

        return GlslSandboxSource(
            client=client,
            base_url=_check_base_url(settings.base_url or DEFAULT_BASE_URL),
            pages=settings.pages,
            concurrency=settings.concurrency,
        )
    if name == "git":
        from harvester.sources.git import GitSource

        if not settings.url:
            raise HarvestError("--source git needs --url (a git URL or a local repository)")
        return GitSource(url=settings.url, cache_root=cache_dir / "git")
    from harvester.sources.local import LocalSource

    if settings.path is None:
        raise HarvestError("--source local needs --path (a file or folder of dumps or programs)")
    return LocalSource(path=settings.path)


__all__ = ["SOURCE_NAMES", "Source", "SourceSettings", "open_source"]
