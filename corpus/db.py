"""Opening the catalog: engine with SQLite pragmas, and the schema brought to the newest migration."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from harvester.errors import HarvestError

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


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = schema_revision(engine)
    head = head_revision()
    if before != head:
        config = _alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return before, head


def open_catalog(path: str | Path | None = None, *, migrate: bool = True) -> Catalog:
    """Open (creating if needed) the catalog at `path`, applying migrations on first use."""
    db_path = Path(path) if path is not None else default_db_path()
    if db_path.exists() and db_path.is_dir():
        raise HarvestError(f"catalog path {db_path} is a directory, not a SQLite file")
    if not db_path.parent.exists():
        raise HarvestError(f"folder {db_path.parent} for the catalog does not exist")
    if db_path.exists() and db_path.stat().st_size > 0:
        with open(db_path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise HarvestError(f"{db_path} is not a SQLite catalog")
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _set_pragmas)
    if migrate:
        upgrade(engine)
    return Catalog(path=db_path.resolve(), engine=engine)
