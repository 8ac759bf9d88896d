"""Opening the catalog: engine with SQLite pragmas, and the schema brought to the newest migration."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from corpus import writer_lock
from corpus.errors import CatalogDamaged, CatalogError, CatalogTooNew

DEFAULT_DB = "harvest.db"
BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def default_db_path() -> Path:
    return Path(os.environ.get("HARVEST_DB") or DEFAULT_DB)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _set_pragmas(dbapi_connection: sqlite3.Connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass
class Catalog:
    """A handle on one catalog file. Only the driver process opens one for writing."""

    path: Path
    engine: Engine
    writer: bool = False  # holds the writer lock (released by close)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @property
    def folder(self) -> Path:
        return self.path.parent

    def close(self) -> None:
        self.engine.dispose()
        if self.writer:
            writer_lock.release(self.path)
            self.writer = False


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def harvest_version() -> str:
    try:
        return version("harvest")
    except PackageNotFoundError:
        return "0.0.0"


def _version_stamp(text: str) -> int:
    """`PRAGMA user_version` holds the harvest version that last migrated the file, as MMmmpp."""
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]] + [0, 0, 0]
    return min(parts[0], 99) * 10_000 + min(parts[1], 99) * 100 + min(parts[2], 99)


def _stamp_text(stamp: int) -> str:
    return f"{stamp // 10_000}.{stamp // 100 % 100}.{stamp % 100}"


def _refuse_unknown_revision(engine: Engine, revision: str) -> None:
    with engine.connect() as conn:
        stamp = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
    made_by = f"harvest {_stamp_text(stamp)}" if stamp else "a newer harvest"
    raise CatalogTooNew(
        f"this catalog was made by {made_by} (schema revision {revision}); this harvest "
        f"({harvest_version()}) only knows revisions up to {head_revision()}: upgrade harvest to open it"
    )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = schema_revision(engine)
    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    if before == head:
        return before, head
    if before is not None and before not in {rev.revision for rev in script.walk_revisions()}:
        _refuse_unknown_revision(engine, before)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.exec_driver_sql(f"PRAGMA user_version={_version_stamp(harvest_version())}")
    return before, head


def _first_integrity_problem(db_path: Path) -> str:
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            row = conn.execute("PRAGMA integrity_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    lines = [line for line in str(row[0] if row else "").splitlines() if line and not line.startswith("***")]
    return lines[0] if lines else "unknown damage"


def _damage_to_catalog_error(db_path: Path):
    """An engine hook: SQLite's corruption errors become one CatalogDamaged line, wherever they happen."""

    def handle_error(context) -> None:
        original = context.original_exception
        if isinstance(original, sqlite3.DatabaseError) and _DAMAGE.search(str(original)):
            raise CatalogDamaged(
                f"{db_path} is damaged (integrity check: {_first_integrity_problem(db_path)}); "
                "restore it from a backup or crawl into a new catalog"
            ) from None

    return handle_error


_DAMAGE = re.compile(r"malformed|not a database|disk image|file is encrypted|database corrupt", re.IGNORECASE)


def _check_file(db_path: Path) -> None:
    if db_path.exists() and db_path.is_dir():
        raise CatalogError(f"catalog path {db_path} is a directory, not a SQLite file")
    if not db_path.parent.exists():
        raise CatalogError(f"folder {db_path.parent} for the catalog does not exist")
    if db_path.exists() and db_path.stat().st_size > 0:
        with open(db_path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise CatalogError(f"{db_path} is not a SQLite catalog")


def open_catalog(path: str | Path | None = None, *, migrate: bool = True, writer: bool = False) -> Catalog:
    """Open (creating if needed) the catalog at `path`, applying migrations on first use.

    `writer` takes the catalog's writer lock first (CatalogBusy if another process holds it), so a
    second run never migrates, selects or writes beside the first.
    """
    db_path = Path(path) if path is not None else default_db_path()
    _check_file(db_path)
    if writer:
        writer_lock.acquire(db_path)
    try:
        engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _set_pragmas)
        event.listen(engine, "handle_error", _damage_to_catalog_error(db_path))
        if migrate:
            upgrade(engine)
    except BaseException:
        if writer:
            writer_lock.release(db_path)
        raise
    return Catalog(path=db_path.resolve(), engine=engine, writer=writer)
