"""Writing fetched programs into the catalog, and the crawl bookkeeping (runs, cursors, failures).

The crawl driver calls these; nothing here knows about HTTP or sources.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import exc as sa_exc
from sqlmodel import Session, select

from corpus.models import (
    CrawlCursor,
    CrawlFailure,
    CrawlRun,
    Program,
    ProgramPass,
    utcnow,
)
from corpus.normalize import code_hash, sniff_dialect
from corpus.records import FetchedProgram, FetchFailure
from corpus.redaction import redact, redact_value

SQLITE_INT_MAX = 2**63 - 1
# What one record can make the catalog raise: bad values, not a broken or locked database (OperationalError),
# which would fail every record after it too and must end the crawl.
RECORD_STORE_ERRORS = (
    ValueError,  # UnicodeEncodeError among them: text that is not encodable as UTF-8
    TypeError,
    ArithmeticError,
    sa_exc.IntegrityError,
    sa_exc.DataError,
    sa_exc.ProgrammingError,
    sa_exc.InterfaceError,
)


class IngestOutcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"  # new row, linked to the earlier program with the same normalized code


@dataclass(frozen=True)
class IngestResult:
    outcome: IngestOutcome
    program_id: int
    duplicate_of: int | None = None


def compress_record(raw: object | None) -> bytes | None:
    if raw is None:
        return None
    return zlib.compress(json.dumps(raw, ensure_ascii=False, default=str).encode("utf-8"), 6)


def decompress_record(blob: bytes | None) -> object | None:
    if blob is None:
        return None
    return json.loads(zlib.decompress(blob).decode("utf-8"))


def stored_count(value: object) -> int | None:
    """The one integer policy of ingest, for every count of a record (likes, views).

    A count that is not an int, is negative or exceeds SQLite's 64-bit integers is stored as NULL
    (unknown), and the record is still imported. Clamping was the other choice; it was rejected because a
    clamped count is a made-up number: 2**63-1 likes would make the program every duplicate group's keeper.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= SQLITE_INT_MAX else None


def stored_date(value: object) -> datetime | None:
    """Dates go through the same policy: anything but a datetime is unknown (sources parse unix seconds)."""
    return value if isinstance(value, datetime) else None


def _fetched_hash(fetched: FetchedProgram) -> str:
    return code_hash([(p.kind, p.code) for p in fetched.passes])


def _dialect(fetched: FetchedProgram) -> str:
    if fetched.dialect:
        return fetched.dialect
    image = fetched.pass_of("image")
    return sniff_dialect(image.code if image else "")


def ingest_program(session: Session, fetched: FetchedProgram) -> IngestResult:
    """Insert or update one program and its passes; does not commit."""
    digest = _fetched_hash(fetched)
    existing = session.exec(
        select(Program).where(Program.source == fetched.source, Program.source_id == fetched.source_id)
    ).first()
    if existing is not None and existing.code_hash == digest and existing.title == fetched.title:
        return IngestResult(IngestOutcome.UNCHANGED, existing.id, existing.duplicate_of)

    twin_query = select(Program.id).where(Program.code_hash == digest, Program.duplicate_of.is_(None))
    if existing is not None:
        twin_query = twin_query.where(Program.id != existing.id)
    twin = session.exec(twin_query.order_by(Program.id)).first()

    program = existing or Program(source=fetched.source, source_id=fetched.source_id, code_hash=digest)
    program.url = fetched.url
    program.title = fetched.title
    program.author = fetched.author
    program.description = fetched.description
    program.tags = list(fetched.tags)
    program.published_at = stored_date(fetched.published_at)
    program.likes = stored_count(fetched.likes)
    program.views = stored_count(fetched.views)
    program.license = fetched.license
    program.license_origin = fetched.license_origin
    program.dialect = _dialect(fetched)
    program.code_hash = digest
    program.duplicate_of = twin
    program.buffer_passes = sum(1 for p in fetched.passes if p.kind.startswith("buffer_") and p.code.strip())
    program.fetched_at = utcnow()
    program.raw_record = compress_record(fetched.raw)
    session.add(program)
    session.flush()

    if existing is not None:
        for old in session.exec(select(ProgramPass).where(ProgramPass.program_id == program.id)).all():
            session.delete(old)
    for fetched_pass in fetched.passes:
        session.add(
            ProgramPass(
                program_id=program.id,
                kind=fetched_pass.kind,
                name=fetched_pass.name,
                code=fetched_pass.code,
                inputs=[i.stored() for i in fetched_pass.inputs],
            )
        )
    if existing is not None:
        outcome = IngestOutcome.UPDATED
    elif twin is not None:
        outcome = IngestOutcome.DUPLICATE
    else:
        outcome = IngestOutcome.NEW
    return IngestResult(outcome, program.id, twin)


def ingest_or_fail(session: Session, fetched: FetchedProgram, crawler: str) -> IngestResult | FetchFailure:
    """`ingest_program` inside a savepoint of its own: a record the catalog cannot store becomes a failure
    of its id (reported by `crawler`) and leaves nothing behind, instead of rolling back the whole batch."""
    _open_transaction(session)
    try:
        with session.begin_nested():
            return ingest_program(session, fetched)
    except RECORD_STORE_ERRORS as exc:
        return FetchFailure(crawler, fetched.source_id, f"could not be stored: {type(exc).__name__}: {exc}")


def _open_transaction(session: Session) -> None:
    # pysqlite opens a transaction only before a write, so a SAVEPOINT issued first would be the outermost
    # one, and releasing it would commit that record alone, apart from the batch and its cursor.
    connection = session.connection()
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")


def known_source_ids(session: Session, source: str) -> set[str]:
    return set(session.exec(select(Program.source_id).where(Program.source == source)).all())


def start_run(session: Session, source: str, scope: str, params: dict) -> CrawlRun:
    """A new running CrawlRun; `scope` must already be public (see corpus.redaction), params are redacted."""
    # The catalog has one writer, so an earlier run of this scope still marked running was killed
    # before it could record how it ended (kill -9, power loss); its committed work stays.
    for stale in session.exec(
        select(CrawlRun).where(CrawlRun.source == source, CrawlRun.scope == scope, CrawlRun.status == "running")
    ):
        stale.status = "interrupted"
        stale.message = stale.message or "stopped without finishing (killed?); resumed by a later run"
        session.add(stale)
    run = CrawlRun(source=source, scope=scope, params=redact_value(params))
    session.add(run)
    session.flush()
    return run


def load_cursor(session: Session, source: str, scope: str) -> dict:
    row = session.exec(select(CrawlCursor).where(CrawlCursor.source == source, CrawlCursor.scope == scope)).first()
    return dict(row.cursor) if row else {}


def save_cursor(session: Session, source: str, scope: str, cursor: dict) -> None:
    row = session.exec(select(CrawlCursor).where(CrawlCursor.source == source, CrawlCursor.scope == scope)).first()
    if row is None:
        row = CrawlCursor(source=source, scope=scope)
    row.cursor = dict(cursor)
    row.updated_at = utcnow()
    session.add(row)


def end_run(run: CrawlRun, status: str, message: str = "") -> None:
    run.status, run.message, run.finished_at = status, _storable(message, 2000), utcnow()


def record_failure(session: Session, run: CrawlRun, failure: FetchFailure) -> None:
    session.add(CrawlFailure(run_id=run.id, source=failure.source, item=_storable(failure.item, 500),
                             reason=_storable(failure.reason, 2000)))


def _storable(text: str, limit: int) -> str:
    """Bookkeeping text as stored: redacted, cut to `limit`, and encodable whatever a record held."""
    return redact(text)[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
