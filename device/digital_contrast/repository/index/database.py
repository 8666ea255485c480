"""The index database: opened at its newest schema (migrations run first, one process at a
time), SQLite or PostgreSQL through the store's engine factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.repository.errors import RepositoryError
from digital_contrast.store.database import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK = 0x44430002  # PostgreSQL advisory lock of the index's migrations ("DC", 2)


def open_index(url: str) -> Engine:
    engine = make_engine(url)
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return engine


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def index_sessions(url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions of the index at `url`, opened at its newest schema and disposed of after;
    INDEX_UNAVAILABLE, never a driver's traceback, when the database cannot be used."""
    try:
        engine = open_index(url)
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from None
    try:
        yield sessions(engine)
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from None
    finally:
        engine.dispose()


def _unavailable(exc: SQLAlchemyError) -> RepositoryError:
    return RepositoryError("INDEX_UNAVAILABLE", "the series index database cannot be used "
                                                f"({type(exc).__name__}); see DC_REPOSITORY_"
                                                "DATABASE_URL and the database's own log")
