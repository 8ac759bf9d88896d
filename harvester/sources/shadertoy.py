"""`shadertoy-public`: the Shadertoy REST API.

GET /api/v1/shaders?key=K lists every id; GET /api/v1/shaders/query/Q?key=&sort=&from=&num= pages a
search; GET /api/v1/shaders/ID?key=K returns {"Shader": ...}. Failures arrive as HTTP 200 with
{"Error": "..."}; an empty listing has no "Results" key. The live site answers scripts with an HTML bot
challenge today, which we name as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

from corpus.records import FetchedProgram, FetchFailure
from corpus.redaction import public_url
from harvester.http import (
    HttpConnectError,
    HttpError,
    HttpStatusError,
    NotJson,
    PoliteClient,
)
from harvester.sources.base import (
    AlreadyKnown,
    RecordError,
    SourceItem,
    SourceUnavailable,
    WantedFn,
    fetch_in_order,
)
from harvester.sources.shadertoy_format import (
    CATALOG_SOURCE,
    DEFAULT_BASE_URL,
    program_from_shader,
)

NAME = "shadertoy-public"
QUERY_PAGE_SIZE = 100
SORTS = ("name", "love", "popular", "newest", "hot")
_CHALLENGE = re.compile(
    r"just a moment|cf-chl|challenge-platform|cf_chl|attention required|captcha|checking your browser|"
    r"enable javascript and cookies|ddos-guard|are you a robot|verify you are human",
    re.IGNORECASE,
)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def bot_challenge_message(base_url: str) -> str:
    return (
        f"{base_url} answered with an HTML bot-challenge page where the API's JSON was expected "
        "(the live site screens scripts); import a dump instead: harvest crawl --source local --path DUMP"
    )


@dataclass
class ShadertoySource:
    client: PoliteClient
    api_key: str
    base_url: str = DEFAULT_BASE_URL
    query: str | None = None
    sort: str | None = None
    pages: int | None = None
    concurrency: int = 4

    name: str = NAME
    exhausted: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise SourceUnavailable(f"--source {NAME} needs an API key: pass --api-key or set SHADERTOY_API_KEY")
        if self.sort is not None and self.sort not in SORTS:
            raise SourceUnavailable(f"--sort must be one of {', '.join(SORTS)}, not {self.sort!r}")
        self.base_url = self.base_url.rstrip("/")  # requests use it as given, credentials and all
        self._public_base = public_url(self.base_url)  # what is stored or shown
        self._total: int | None = None

    @property
    def scope(self) -> str:
        scope = f"{self._public_base}/api/v1/shaders"
        if self.query is not None:
            scope += f"/query/{self.query}"
        if self.sort:
            scope += f"?sort={self.sort}"
        return scope

    @property
    def total(self) -> int | None:
        return self._total

    def params(self) -> dict:
        return {"base_url": self._public_base, "query": self.query, "sort": self.sort, "pages": self.pages}

    # --- requests ---

    def _api(self, path: str, **params: str | int) -> dict:
        """One API call whose answer must be a JSON object; fatal errors become SourceUnavailable."""
        try:
            body = self.client.get_json(f"{self.base_url}/api/v1/{path}", {"key": self.api_key, **params})
        except (NotJson, HttpStatusError) as exc:
            if _CHALLENGE.search(exc.body_head) and "<" in exc.body_head:
                raise SourceUnavailable(bot_challenge_message(self._public_base)) from None
            raise
        except HttpConnectError as exc:
            raise SourceUnavailable(f"cannot reach the Shadertoy API: {exc}") from None
        if not isinstance(body, dict):
            raise RecordError(f"API answered {type(body).__name__} where an object was expected")
        return body

    def _listing_ids(self, offset: int) -> Iterator[str]:
        """Ids from position `offset` on; sets self._total from the server's count."""
        try:
            if self.query is None:
                params = {"sort": self.sort} if self.sort else {}
                answer = self._api("shaders", **params)
                ids = self._results(answer)
                self._total = max(0, len(ids) - offset)
                yield from ids[offset:]
                self.exhausted = True
                return
            page = 0
            while self.pages is None or page < self.pages:
                params: dict[str, str | int] = {"from": offset, "num": QUERY_PAGE_SIZE}
                if self.sort:
                    params["sort"] = self.sort
                answer = self._api(f"shaders/query/{quote(self.query, safe='')}", **params)
                ids = self._results(answer)
                count = answer.get("Shaders")
                if isinstance(count, int) and self._total is None:
                    self._total = max(0, count - offset)
                if not ids:
                    self.exhausted = True
                    return
                yield from ids
                offset += len(ids)
                page += 1
        except (HttpError, RecordError) as exc:
            raise SourceUnavailable(f"Shadertoy listing failed: {exc}") from None

    def _results(self, answer: dict) -> list[str]:
        if "Error" in answer:
            message = str(answer["Error"])
            hint = " (check --api-key / SHADERTOY_API_KEY)" if "key" in message.lower() else ""
            raise SourceUnavailable(f"Shadertoy API refused the listing: {message}{hint}")
        results = answer.get("Results", [])  # an empty listing has no Results key
        if not isinstance(results, list):
            raise RecordError("listing's Results is not a list")
        return [str(r) for r in results if isinstance(r, (str, int)) and _ID.match(str(r))]

    def _fetch_one(self, shader_id: str) -> FetchedProgram | FetchFailure:
        try:
            answer = self._api(f"shaders/{quote(shader_id, safe='')}")
            if "Error" in answer:
                return FetchFailure(NAME, shader_id, f"API error: {str(answer['Error'])[:300]}")
            if "Shader" not in answer:
                return FetchFailure(NAME, shader_id, "API answer has no Shader")
            program = program_from_shader(answer["Shader"], base_url=self._public_base, raw=answer["Shader"])
            if program.source_id != shader_id:
                return FetchFailure(NAME, shader_id, f"API answered with shader {program.source_id!r} when asked for {shader_id}")
            return program
        except (HttpError, RecordError) as exc:
            return FetchFailure(NAME, shader_id, str(exc))

    # --- the protocol ---

    def items(self, cursor: dict, wanted: WantedFn) -> Iterator[SourceItem]:
        start = int(cursor.get("offset", 0)) if isinstance(cursor.get("offset", 0), int) else 0
        positions = enumerate(self._listing_ids(start), start=start)

        def skip(entry: tuple[int, str]) -> AlreadyKnown | None:
            return None if wanted(CATALOG_SOURCE, entry[1]) else AlreadyKnown(CATALOG_SOURCE, entry[1])

        for (position, _), result in fetch_in_order(
            positions, lambda entry: self._fetch_one(entry[1]), self.concurrency, skip
        ):
            yield SourceItem(result, {"offset": position + 1})
