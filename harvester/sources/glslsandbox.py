"""`glslsandbox`: the GLSL Sandbox gallery.

GET /?page=N (0-based) is HTML whose items link /e#ID.VERSION; GET /item/ID.VERSION is JSON
{"code", "user", "parent"}. robots.txt is read first and obeyed (Disallow and Crawl-delay).
"""

from __future__ import annotations

import re
import urllib.robotparser
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from corpus.licenses import UNKNOWN, detect_license
from corpus.records import FetchedPass, FetchedProgram, FetchFailure
from corpus.redaction import public_url
from harvester.http import HttpConnectError, HttpError, HttpStatusError, PoliteClient
from harvester.sources.base import (
    AlreadyKnown,
    SourceItem,
    SourceUnavailable,
    WantedFn,
    fetch_in_order,
)

NAME = "glslsandbox"
DEFAULT_BASE_URL = "https://glslsandbox.com"
ROBOTS_AGENT = "harvest"
_ITEM_LINK = re.compile(r"(?:^|/)e#(\d{1,12})\.(\d{1,6})$")
MAX_CODE_CHARS = 1_000_000


def item_ids_in_page(html: str) -> list[str]:
    """`ID.VERSION` of every gallery item linked from a page, in page order, without repeats."""
    tree = LexborHTMLParser(html)
    seen: dict[str, None] = {}
    for anchor in tree.css("a[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        match = _ITEM_LINK.search(href)
        if match:
            seen.setdefault(f"{int(match.group(1))}.{int(match.group(2))}", None)
    return list(seen)


@dataclass
class GlslSandboxSource:
    client: PoliteClient
    base_url: str = DEFAULT_BASE_URL
    pages: int | None = None
    concurrency: int = 4

    name: str = NAME
    exhausted: bool = field(default=False, init=False)
    _total: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")  # requests use it as given, credentials and all
        self._public_base = public_url(self.base_url)  # what is stored or shown
        self._robots: urllib.robotparser.RobotFileParser | None = None

    @property
    def scope(self) -> str:
        return self._public_base

    @property
    def total(self) -> int | None:
        return self._total

    def params(self) -> dict:
        return {"base_url": self._public_base, "pages": self.pages}

    # --- robots.txt ---

    def _load_robots(self) -> None:
        parser = urllib.robotparser.RobotFileParser()
        try:
            response = self.client.get(f"{self.base_url}/robots.txt")
            parser.parse(response.text.splitlines())
        except HttpStatusError as exc:
            if 400 <= exc.status < 500:
                parser.parse([])  # no robots.txt: everything is allowed
            else:
                raise SourceUnavailable(f"cannot read {self._public_base}/robots.txt: {exc}") from None
        except HttpConnectError as exc:
            raise SourceUnavailable(f"cannot reach {self._public_base}: {exc}") from None
        except HttpError as exc:
            raise SourceUnavailable(f"cannot read {self._public_base}/robots.txt: {exc}") from None
        self._robots = parser
        delay = parser.crawl_delay(ROBOTS_AGENT)
        rate = parser.request_rate(ROBOTS_AGENT)
        host = urlsplit(self.base_url).hostname or ""
        limits = [self.client.host_rate(host)] if self.client.host_rate(host) > 0 else []
        if delay:
            limits.append(1.0 / float(delay))
        if rate and rate.seconds:
            limits.append(rate.requests / rate.seconds)
        if limits and (delay or rate):
            self.client.set_host_rate(host, min(limits))

    def _allowed(self, url: str) -> bool:
        return self._robots is None or self._robots.can_fetch(ROBOTS_AGENT, url)

    # --- pages and items ---

    def _page(self, page: int) -> list[str]:
        url = f"{self.base_url}/?page={page}"
        if not self._allowed(url):
            raise SourceUnavailable(f"robots.txt of {self._public_base} disallows {public_url(url)}")
        try:
            return item_ids_in_page(self.client.get(url).text)
        except HttpConnectError as exc:
            raise SourceUnavailable(f"cannot reach {self._public_base}: {exc}") from None

    def _fetch_one(self, item_id: str) -> FetchedProgram | FetchFailure:
        url = f"{self.base_url}/item/{item_id}"
        if not self._allowed(url):
            return FetchFailure(NAME, item_id, "robots.txt disallows this item")
        try:
            answer = self.client.get_json(url)
        except HttpConnectError as exc:
            raise SourceUnavailable(f"cannot reach {self._public_base}: {exc}") from None
        except HttpError as exc:
            return FetchFailure(NAME, item_id, str(exc))
        if not isinstance(answer, dict) or not isinstance(answer.get("code"), str):
            return FetchFailure(NAME, item_id, "item JSON has no `code` string")
        code = answer["code"]
        if not code.strip():
            return FetchFailure(NAME, item_id, "item has empty code")
        if len(code) > MAX_CODE_CHARS:
            return FetchFailure(NAME, item_id, f"code longer than {MAX_CODE_CHARS:,} characters")
        user = answer.get("user")
        parent = answer.get("parent")
        detected = detect_license(code)
        return FetchedProgram(
            source=NAME,
            source_id=item_id,
            url=f"{self._public_base}/e#{item_id}",
            title=f"glslsandbox {item_id}",
            author=user.strip()[:200] if isinstance(user, str) else "",
            description=f"fork of {parent}" if isinstance(parent, str) and parent.strip() else "",
            license=detected or UNKNOWN,
            license_origin="detected" if detected else "source-default",
            passes=[FetchedPass("image", code, [], "Image")],
            raw=answer,
        )

    def _page_entries(self, start_page: int, start_item: int) -> Iterator[tuple[str, dict]]:
        """(item id, cursor after it); an empty id marks an empty first page."""
        page = start_page
        crawled = 0
        while self.pages is None or crawled < self.pages:
            ids = self._page(page)
            if not ids:
                self.exhausted = True
                if page == start_page == 0:
                    yield "", {}  # page 0 empty: the gallery is empty or its HTML changed shape
                return
            self._total = (self._total or 0) + len(ids) - (start_item if page == start_page else 0)
            for index, item_id in enumerate(ids):
                if page == start_page and index < start_item:
                    continue
                last = index + 1 == len(ids)
                yield item_id, {"page": page + 1, "item": 0} if last else {"page": page, "item": index + 1}
            page += 1
            crawled += 1

    def items(self, cursor: dict, wanted: WantedFn) -> Iterator[SourceItem]:
        self._load_robots()
        start_page = cursor.get("page", 0) if isinstance(cursor.get("page"), int) else 0
        start_item = cursor.get("item", 0) if isinstance(cursor.get("item"), int) else 0

        def skip(entry: tuple[str, dict]) -> AlreadyKnown | FetchFailure | None:
            if not entry[0]:
                return FetchFailure(NAME, f"{self._public_base}/?page=0", "no /e#ID.VERSION links on the first page: "
                                    "the gallery is empty or its HTML changed shape")
            return None if wanted(NAME, entry[0]) else AlreadyKnown(NAME, entry[0])

        entries = self._page_entries(start_page, start_item)
        for (_, cursor_after), result in fetch_in_order(entries, lambda e: self._fetch_one(e[0]), self.concurrency, skip):
            yield SourceItem(result, cursor_after)
