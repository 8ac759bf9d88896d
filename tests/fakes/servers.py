"""Threaded HTTP servers on 127.0.0.1 imitating the Shadertoy API and the GLSL Sandbox gallery.

Each server can be told to misbehave for a path: answer 429 with Retry-After, 500, hang past the
client's timeout, cut the body short, send too much, answer an API {"Error"}, a bot-challenge page or
404. Every request is logged (path with query, headers, time) so tests can assert on what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

CHALLENGE_HTML = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    "<div id='challenge-platform'>Checking your browser before accessing the site.</div>"
    "<noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    truncate_to: int | None = None  # send Content-Length of the full body, then only this many bytes
    no_length: bool = False  # no Content-Length: the body ends when the connection closes

    @staticmethod
    def json(value: object, status: int = 200) -> Reply:
        return Reply(status, json.dumps(value).encode())

    @staticmethod
    def html(text: str, status: int = 200) -> Reply:
        return Reply(status, text.encode(), "text/html; charset=utf-8")


@dataclass(frozen=True)
class Hit:
    path: str  # path with query string, as sent
    headers: dict[str, str]
    at: float


def misbehaviour(kind: str, *, slow_s: float = 3.0, retry_after: str = "1") -> Reply:
    """A canned bad answer: 429, 500, slow, truncated, oversized, oversized-stream, error, challenge, 404, notjson."""
    if kind == "429":
        return Reply(429, b"slow down", "text/plain", {"Retry-After": retry_after})
    if kind == "500":
        return Reply(500, b"oops", "text/plain")
    if kind == "slow":
        return Reply(200, b"{}", delay_s=slow_s)
    if kind == "truncated":
        return Reply(200, b'{"Shader": {"info": {"id": "cut"}, "renderpass": [' + b" " * 200 + b"]}}", truncate_to=20)
    if kind == "oversized":
        return Reply(200, b"[" + b"0," * 60_000 + b"0]")
    if kind == "oversized-stream":
        return Reply(200, b"[" + b"0," * 60_000 + b"0]", no_length=True)
    if kind == "error":
        return Reply.json({"Error": "Shader not found"})
    if kind == "challenge":
        return Reply.html(CHALLENGE_HTML, 403)
    if kind == "404":
        return Reply(404, b"not found", "text/plain")
    if kind == "notjson":
        return Reply(200, b"this is not json", "text/plain")
    raise ValueError(kind)


class FakeServer:
    """Base: subclasses implement `route(path, query) -> Reply`. Use as a context manager."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._queued: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                with server_self._lock:
                    server_self.hits.append(Hit(self.path, dict(self.headers), time.monotonic()))
                split = urlsplit(self.path)
                path = unquote(split.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                reply = server_self._next_queued(path) or server_self.route(path, query)
                server_self._send(self, reply)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def queue(self, path: str, *replies: Reply) -> None:
        """Answer the next requests for `path` with these replies, in order, before behaving normally."""
        with self._lock:
            self._queued[path].extend(replies)

    def _next_queued(self, path: str) -> Reply | None:
        with self._lock:
            queue = self._queued.get(path)
            return queue.popleft() if queue else None

    def hits_for(self, path_prefix: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if urlsplit(h.path).path.startswith(path_prefix)]

    def route(self, path: str, query: dict[str, str]) -> Reply:
        return Reply(404, b"not found", "text/plain")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay_s:
            time.sleep(reply.delay_s)
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if reply.no_length:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            else:
                handler.send_header("Content-Length", str(len(reply.body)))
            if reply.truncate_to is not None:
                handler.close_connection = True
            handler.end_headers()
            body = reply.body if reply.truncate_to is None else reply.body[: reply.truncate_to]
            handler.wfile.write(body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


# --- Shadertoy API ------------------------------------------------------------------------------------


def api_shader(shader_id: str, code: str, *, name: str = "", username: str = "someone", date: str = "1400000000",
               buffers: dict[str, str] | None = None, common: str | None = None, inputs: list[dict] | None = None) -> dict:
    """A shader object in the API's shape."""
    renderpass = [{"inputs": inputs or [], "outputs": [{"id": 37, "channel": 0}], "code": code, "name": "Image",
                   "description": "", "type": "image"}]
    if common is not None:
        renderpass.append({"inputs": [], "outputs": [], "code": common, "name": "Common", "description": "", "type": "common"})
    for letter, buffer_code in (buffers or {}).items():
        renderpass.append({"inputs": [], "outputs": [], "code": buffer_code, "name": f"Buffer {letter}",
                           "description": "", "type": "buffer"})
    return {
        "ver": "0.1",
        "info": {"id": shader_id, "date": date, "viewed": 10, "name": name or f"shader {shader_id}",
                 "username": username, "description": "a test program", "likes": 3, "published": 3, "flags": 0,
                 "usePreview": 0, "tags": ["test", "noise"], "hasliked": 0},
        "renderpass": renderpass,
    }


class FakeShadertoy(FakeServer):
    def __init__(self, key: str, shaders: dict[str, dict] | None = None) -> None:
        super().__init__()
        self.key = key
        self.shaders: dict[str, dict] = dict(shaders or {})
        self.challenge_everything = False
        self.echo_key = False  # a careless server: its {"Error"} texts quote the key it was sent

    def route(self, path: str, query: dict[str, str]) -> Reply:
        if self.challenge_everything:
            return misbehaviour("challenge")
        if not path.startswith("/api/v1/shaders"):
            return Reply(404, b"not found", "text/plain")
        if query.get("key") != self.key:
            sent = query.get("key", "")
            return Reply.json({"Error": f"Invalid key {sent} (key={sent})" if self.echo_key else "Invalid key"})
        ids = list(self.shaders)
        if query.get("sort") == "name":
            ids.sort()
        if path == "/api/v1/shaders":
            return Reply.json({"Shaders": len(ids), "Results": ids} if ids else {"Shaders": 0})
        if path.startswith("/api/v1/shaders/query/"):
            terms = path.removeprefix("/api/v1/shaders/query/").lower()
            matching = [i for i in ids if terms in json.dumps(self.shaders[i]).lower()]
            start, num = int(query.get("from", 0)), int(query.get("num", 100))
            page = matching[start : start + num]
            return Reply.json({"Shaders": len(matching), "Results": page} if page else {"Shaders": len(matching)})
        shader_id = path.removeprefix("/api/v1/shaders/")
        if shader_id in self.shaders:
            return Reply.json({"Shader": self.shaders[shader_id]})
        return Reply.json({"Error": "Shader not found"})


# --- GLSL Sandbox gallery -----------------------------------------------------------------------------


def gallery_page(item_ids: list[str]) -> str:
    """A gallery page in the site's shape: thumbnails linking /e#ID.VERSION, plus unrelated links."""
    effects = "".join(
        f'<div class="effect"><a href="/e#{item}" tabindex="-1"><img src="/thumbs/{item.split(".")[0]}.png"></a></div>'
        for item in item_ids
    )
    return (
        "<!DOCTYPE html><html><head><title>GLSL Sandbox Gallery</title></head><body>"
        '<div id="header"><a href="/e">new shader</a> <a href="https://github.com/mrdoob/glsl-sandbox">github</a></div>'
        f'<div id="gallery">{effects}</div><div id="nav"><a href="/?page=1">next</a></div></body></html>'
    )


class FakeGallery(FakeServer):
    def __init__(self, pages: list[dict[str, dict]], robots: str | None = "User-agent: *\nDisallow: /admin\n") -> None:
        super().__init__()
        self.pages = pages  # each page: {ID.VERSION: {"code", "user", "parent"}}
        self.robots = robots

    def route(self, path: str, query: dict[str, str]) -> Reply:
        if path == "/robots.txt":
            return Reply(200, self.robots.encode(), "text/plain") if self.robots is not None else Reply(404, b"", "text/plain")
        if path == "/":
            page = int(query.get("page", 0))
            items = list(self.pages[page]) if 0 <= page < len(self.pages) else []
            return Reply.html(gallery_page(items))
        if path.startswith("/item/"):
            item = path.removeprefix("/item/")
            for page in self.pages:
                if item in page:
                    return Reply.json(page[item])
        return Reply(404, b"not found", "text/plain")
