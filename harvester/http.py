"""One polite HTTP client for every source.

Per-host rate limit, bounded concurrency, timeouts (including a total deadline, so a server that drips
bytes cannot hang a crawl), retries with exponential backoff and jitter on timeouts, 429 and 5xx
honouring Retry-After, a response size cap enforced while streaming, harvest's User-Agent, no redirect
to another host unless allowed (and then logged), and secrets (API keys) redacted from every log
line, error message and URL this module hands out (see corpus.redaction).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from corpus.redaction import redact, register_secret
from harvester import USER_AGENT

log = logging.getLogger("harvester.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class HttpPolicy:
    """How politely to talk to servers. `rate_per_host` 0 turns the rate limit off (benchmarks)."""

    rate_per_host: float = 2.0
    concurrency: int = 4
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 120.0
    retries: int = 4
    connect_retries: int = 2  # a refused connection or unknown host rarely heals within seconds
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0
    max_bytes: int = 10 * 1024 * 1024
    allow_cross_host_redirects: bool = False


# --- errors ----------------------------------------------------------------------------------------


class HttpError(Exception):
    """A request that did not produce a usable response. Messages are already redacted."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class HttpStatusError(HttpError):
    def __init__(self, message: str, url: str, status: int, retry_after: float | None = None, body_head: str = "") -> None:
        super().__init__(message, url)
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait (429/503), if it said
        self.body_head = body_head  # the redacted first 2 KB of the error page


class HttpTimeout(HttpError):
    pass


class HttpConnectError(HttpError):
    """The host could not be reached at all (DNS, refused, unreachable)."""


class HttpTransportError(HttpError):
    pass


class TruncatedBody(HttpTransportError):
    pass


class ResponseTooLarge(HttpError):
    pass


class CrossHostRedirect(HttpError):
    pass


class NotJson(HttpError):
    """A body that should have been JSON and was not; `body_head` is its redacted first 2 KB."""

    def __init__(self, message: str, url: str, body_head: str, is_html: bool) -> None:
        super().__init__(message, url)
        self.body_head = body_head
        self.is_html = is_html


# --- rate limit ------------------------------------------------------------------------------------


class HostRateLimiter:
    """Spaces requests to one host at least 1/rate seconds apart, across threads."""

    def __init__(self, rate_per_host: float) -> None:
        self._default = rate_per_host
        self._rates: dict[str, float] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def set_rate(self, host: str, rate: float) -> None:
        with self._lock:
            self._rates[host] = rate

    def rate(self, host: str) -> float:
        return self._rates.get(host, self._default)

    def wait(self, host: str) -> None:
        rate = self.rate(host)
        if rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + 1.0 / rate
        if slot > now:
            time.sleep(slot - now)


# --- responses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    url: str  # redacted
    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        charset = "utf-8"
        match = re.search(r"charset=([\w-]+)", self.headers.get("content-type", ""), re.IGNORECASE)
        if match:
            charset = match.group(1)
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            head = redact(self.content[:2048].decode("utf-8", errors="replace"))
            stripped = head.lstrip().lower()
            is_html = stripped.startswith(("<!doctype html", "<html", "<head", "<body")) or (
                "html" in self.headers.get("content-type", "").lower()
            )
            what = "an HTML page" if is_html else ("an empty body" if not self.content else "a body that is not JSON")
            raise NotJson(f"expected JSON from {self.url}, got {what} ({_short(str(exc))})", self.url, head, is_html) from None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- the client ------------------------------------------------------------------------------------


class PoliteClient:
    """A thread-safe polite GET client. Use one per crawl; close it (or use `with`)."""

    def __init__(
        self,
        policy: HttpPolicy | None = None,
        *,
        secrets: Iterable[str | None] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy or HttpPolicy()
        for secret in secrets:
            register_secret(secret)
        self._limiter = HostRateLimiter(self.policy.rate_per_host)
        self._slots = threading.BoundedSemaphore(max(1, self.policy.concurrency))
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(
                self.policy.read_timeout_s, connect=self.policy.connect_timeout_s, pool=self.policy.total_timeout_s
            ),
            limits=httpx.Limits(max_connections=max(1, self.policy.concurrency)),
            follow_redirects=False,
            transport=transport,
        )
        self._random = random.Random()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def set_host_rate(self, host: str, rate: float) -> None:
        """Override the rate for one host (e.g. from robots.txt Crawl-delay)."""
        self._limiter.set_rate(host, rate)

    def host_rate(self, host: str) -> float:
        return self._limiter.rate(host)

    def get_json(self, url: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self.get(url, params).json()

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> HttpResponse:
        """GET with retries; raises an HttpError subclass when no good response came."""
        try:
            request_url = httpx.URL(url, params=params) if params else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise HttpError(f"invalid URL {redact(url)}: {redact(str(exc))}", redact(url)) from None
        if request_url.scheme not in ("http", "https"):
            raise HttpError(f"unsupported URL scheme in {redact(str(request_url))}", redact(str(request_url)))
        policy = self.policy
        attempt = 0
        while True:
            try:
                return self._follow(request_url)
            except (HttpTimeout, HttpTransportError, HttpConnectError, HttpStatusError) as exc:
                retry_after = exc.retry_after if isinstance(exc, HttpStatusError) else None
                retryable = not isinstance(exc, HttpStatusError) or exc.status in RETRY_STATUSES
                limit = min(policy.retries, policy.connect_retries) if isinstance(exc, HttpConnectError) else policy.retries
                if not retryable or attempt >= limit:
                    if retryable and attempt:
                        raise type(exc)(*_args_with_note(exc, f"after {attempt + 1} attempts")) from None
                    raise
                backoff = min(policy.backoff_max_s, policy.backoff_base_s * 2**attempt)
                delay = backoff * (0.5 + self._random.random())
                if retry_after is not None:
                    if retry_after > policy.max_retry_after_s:
                        raise type(exc)(
                            *_args_with_note(exc, f"server asked to retry after {retry_after:.0f} s, more than we wait")
                        ) from None
                    delay = max(retry_after, 0.0)
                log.info("retrying %s in %.2f s (%s)", exc.url, delay, exc)
                time.sleep(delay)
                attempt += 1

    def _follow(self, url: httpx.URL) -> HttpResponse:
        origin_host = url.host
        for _ in range(MAX_REDIRECTS + 1):
            response, location = self._send_once(url)
            if location is None:
                return response
            target = url.join(location)
            if target.scheme not in ("http", "https"):
                raise CrossHostRedirect(f"{response.url} redirected to a non-HTTP URL; not followed", response.url)
            if target.host != origin_host:
                shown = redact(str(target))
                if not self.policy.allow_cross_host_redirects:
                    raise CrossHostRedirect(
                        f"{response.url} redirected to another host ({target.host}): {shown}; not followed",
                        response.url,
                    )
                log.warning("following a redirect from %s to another host: %s", origin_host, shown)
                origin_host = target.host
            url = target
        raise HttpError(f"too many redirects from {redact(str(url))}", redact(str(url)))

    def _send_once(self, url: httpx.URL) -> tuple[HttpResponse, str | None]:
        """One request: rate-limited, size-capped, deadline-bound. Returns (response, redirect location)."""
        shown = redact(str(url))
        self._limiter.wait(url.host)
        policy = self.policy
        with self._slots:
            deadline = time.monotonic() + policy.total_timeout_s
            log.debug("GET %s", shown)
            try:
                with self._client.stream("GET", url) as stream:
                    status = stream.status_code
                    headers = dict(stream.headers)
                    if status in REDIRECT_STATUSES and "location" in stream.headers:
                        return HttpResponse(shown, status, headers, b""), stream.headers["location"]
                    declared = stream.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > policy.max_bytes:
                        raise ResponseTooLarge(
                            f"{shown} declares {int(declared):,} bytes, over the {policy.max_bytes:,}-byte cap", shown
                        )
                    body = bytearray()
                    for chunk in stream.iter_bytes():
                        body += chunk
                        if len(body) > policy.max_bytes:
                            raise ResponseTooLarge(f"{shown} sent more than the {policy.max_bytes:,}-byte cap", shown)
                        if time.monotonic() > deadline:
                            raise HttpTimeout(f"{shown} took longer than {policy.total_timeout_s:g} s in total", shown)
            except httpx.TimeoutException as exc:
                raise HttpTimeout(f"timed out fetching {shown} ({type(exc).__name__})", shown) from None
            except httpx.ConnectError as exc:
                raise HttpConnectError(f"connection to {url.host} failed: {_short(redact(str(exc)))}", shown) from None
            except httpx.RemoteProtocolError as exc:
                raise TruncatedBody(f"truncated or malformed response from {shown}: {_short(redact(str(exc)))}", shown) from None
            except httpx.DecodingError as exc:
                raise HttpTransportError(f"undecodable body from {shown}: {_short(redact(str(exc)))}", shown) from None
            except httpx.TransportError as exc:
                raise HttpTransportError(f"transport error fetching {shown}: {_short(redact(str(exc)))}", shown) from None
        response = HttpResponse(shown, status, headers, bytes(body))
        if status >= 400:
            reason = httpx.codes.get_reason_phrase(status) or "error"
            retry_after = parse_retry_after(headers.get("retry-after"))
            head = redact(response.content[:2048].decode("utf-8", errors="replace"))
            raise HttpStatusError(f"HTTP {status} {reason} from {shown}", shown, status, retry_after, head)
        return response, None


def _args_with_note(exc: HttpError, note: str) -> tuple:
    message = f"{exc} ({note})"
    if isinstance(exc, HttpStatusError):
        return (message, exc.url, exc.status, exc.retry_after, exc.body_head)
    return (message, exc.url)
