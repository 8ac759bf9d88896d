"""The one redaction every message passes through before it is printed, logged or stored.

A run registers the secrets it knows (the API key, the credentials of a URL it was given); `redact` then
hides those values wherever they appear, however a server or a library quoted them, plus any `key=...`
style parameter and any `user:password@` in a URL. `public_url` is the form of a URL fit to store as an
identity (a crawl scope, a program's URL): no credentials at all, not even masked.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TypeVar
from urllib.parse import (
    parse_qsl,
    quote,
    quote_plus,
    unquote,
    urlencode,
    urlsplit,
    urlunsplit,
)

REDACTED = "***"
SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "token", "access_token"})
MIN_SECRET_CHARS = 3  # shorter values would blank out ordinary words
# A bare name before `@` is a token only when it is long: `ssh://git@host` must not make "git" a secret.
MIN_TOKEN_CHARS = 16

_SECRET_PARAM = re.compile(r"((?:[?&]|\b)(?:key|api_key|apikey|token|access_token)=)[^&#\s\"'<>()\[\]{},;]+", re.IGNORECASE)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_secrets_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """From now on `redact` (and every harvest and httpx log line) hides this value, raw or URL-quoted."""
    if secret and len(secret) >= MIN_SECRET_CHARS:
        with _secrets_lock:
            _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def register_url_credentials(url: str) -> None:
    """Register the secrets a URL carries: its password (or a bare token before `@`) and key parameters."""
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return
    if password:
        register_secret(unquote(password))  # a username beside a password is not secret
    elif username and len(username) >= MIN_TOKEN_CHARS:
        register_secret(unquote(username))  # `https://TOKEN@host` is how tokens ride in git URLs
    for name, value in parse_qsl(parts.query):
        if name.lower() in SECRET_PARAMS:
            register_secret(value)


def redact(text: str) -> str:
    """`text` without registered secrets, `key=` style values or URL credentials."""
    text = _SECRET_PARAM.sub(r"\1" + REDACTED, text)
    text = _USERINFO.sub(r"\1" + REDACTED + "@", text)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


T = TypeVar("T")


def redact_value(value: T) -> T:
    """A JSON-like value (a crawl's params) with every string in it redacted."""
    if isinstance(value, str):
        return redact(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}  # type: ignore[return-value]
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)  # type: ignore[return-value]
    return value


def redact_exception(exc: BaseException) -> BaseException:
    """The same exception with its message redacted in place, so re-raising it keeps its type."""
    exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    return exc


def public_url(url: str) -> str:
    """`url` without userinfo and without key-like query parameters: the form to store or show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return redact(url)
    if host is None:
        return redact(url)
    secret_params = any(name.lower() in SECRET_PARAMS for name, _ in parse_qsl(parts.query))
    if "@" not in parts.netloc and not secret_params:
        return url  # nothing to drop: keep its spelling, so scopes of earlier crawls still match
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed log call is not ours to fix, but must not leak either
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()
# Logger filters do not apply to records propagated from child loggers, so every emitter is named.
_FILTERED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "harvester",
    "harvester.http",
    "harvester.crawl",
    "harvester.sources",
)
for _name in _FILTERED_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)
