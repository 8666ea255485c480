"""Engines, sessions and schema migrations (Alembic, run programmatically; never `create_all`).

SQLite runs in WAL mode with foreign keys on and a busy timeout. SQLAlchemy, not the sqlite3
driver, emits BEGIN, so reads sit inside the transaction (repeatable) and a writer can ask for
BEGIN IMMEDIATE (`begin_write`): it then takes the single write lock up front and waits for it,
instead of failing later on a stale snapshot.
"""

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.store.audit_seal import SEAL_INFO, AuditSeal
from digital_contrast.store.errors import StoreError, StoreErrorCode

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_IMMEDIATE = "dc_sqlite_begin_immediate"
log = logging.getLogger(__name__)


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL; bare `postgresql://` (and `postgres://`) use psycopg 3."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise StoreError(StoreErrorCode.DATABASE_URL_INVALID,
                         "the database URL cannot be parsed") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(StoreErrorCode.DATABASE_URL_INVALID,
                         f"unsupported database {parsed.get_backend_name()!r}: "
                         "use sqlite or postgresql")
    return parsed


def make_engine(url: str | URL, *, busy_timeout_s: float = 30.0, **kwargs: Any) -> Engine:
    """An engine for SQLite (file) or PostgreSQL, configured as the store expects."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith(
            "file:"):
        private_sqlite_file(Path(parsed.database))
    engine = create_engine(parsed, connect_args={"timeout": busy_timeout_s}, **kwargs)
    _configure_sqlite(engine, busy_timeout_s)
    return engine


def private_sqlite_file(path: Path) -> None:
    """The database holds patient names: its file is created 0600 (SQLite gives its -wal and
    -shm the database file's mode) in a folder created 0700, and a file left readable by
    others (an older installation made 0644 files) is restricted before it is opened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file: say so, the service still starts
            log.warning("database file %s is readable by others and cannot be restricted "
                        "(not ours)", file.name, extra={"event": "store.file_mode"})


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver stops emitting BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA synchronous=FULL")  # a committed audit row survives power loss
        cursor.execute("PRAGMA case_sensitive_like=ON")  # DICOM matching, as on PostgreSQL
        cursor.close()

    # Writers of this process queue on a lock before BEGIN IMMEDIATE: SQLite's own busy
    # handler polls with sleeps of up to 100 ms, which made concurrent STOW commits wait
    # about 0.3 s for a lock freed long before. Other processes still meet the busy timeout.
    writer = threading.Lock()
    holders: set[int] = set()  # ids of the DBAPI connections holding `writer`

    def _raw(connection: Any) -> Any:
        return getattr(connection, "dbapi_connection", None) or connection

    def _release(connection: Any) -> None:
        if id(_raw(connection)) in holders:
            holders.discard(id(_raw(connection)))
            writer.release()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        if options.get(_IMMEDIATE):
            # On a timeout, go on: SQLite's busy timeout then fails the writer as before.
            if writer.acquire(timeout=busy_timeout_s):
                holders.add(id(_raw(conn.connection)))
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    # Released once COMMIT or ROLLBACK has run (the engine's commit event fires before it);
    # the pool's reset of a connection returned mid-transaction is a rollback too.
    dialect = engine.dialect  # one per engine

    def releasing(end: Callable[[Any], None]) -> Callable[[Any], None]:
        def finish(connection: Any) -> None:
            try:
                end(connection)
            finally:
                _release(connection)
        return finish

    dialect.do_commit = releasing(dialect.do_commit)  # type: ignore[method-assign]
    dialect.do_rollback = releasing(dialect.do_rollback)  # type: ignore[method-assign]
    event.listen(engine, "close", lambda dbapi_connection, _record: _release(dbapi_connection))


def session_factory(engine: Engine, audit_seal: AuditSeal | None = None
                    ) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (handy for API responses); with the
    audit seal they can append to and verify the audit trail."""
    info = {} if audit_seal is None else {SEAL_INFO: audit_seal}
    return sessionmaker(engine, expire_on_commit=False, info=info)


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer if it has not started yet.

    On SQLite this is BEGIN IMMEDIATE: read-then-write sequences (claims, audit appends,
    idempotent inserts) hold the single write lock from their first read. A transaction that
    already started is left alone; a stale one fails with "database is locked" rather than
    writing from an old snapshot. PostgreSQL needs nothing here (row locks do the job).
    """
    if session.get_bind().dialect.name == "sqlite" and not session.in_transaction():
        session.connection(execution_options={_IMMEDIATE: True})


_MIGRATION_LOCK = 0x44430001  # PostgreSQL advisory lock key of schema migrations ("DC", 1)


def _alembic_config(connection: Connection, audit_seal: AuditSeal | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["audit_seal"] = audit_seal  # migration 0005 seals the earlier chain
    return config


def _migrate(target: Engine | str | URL, action: str, revision: str,
             audit_seal: AuditSeal | None = None) -> None:
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        # Several processes starting on one new database (workers on several machines)
        # migrate one at a time; the others then find it at head.
        with engine.connect().execution_options(**{_IMMEDIATE: True}) as connection, \
                connection.begin():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config = _alembic_config(connection, audit_seal)
            getattr(command, action)(config, revision)
    finally:
        if engine is not target:
            engine.dispose()
    anchor = config.attributes.get("audit_anchor")  # set by a migration that sealed events
    if anchor is not None and audit_seal is not None:
        audit_seal.write_anchor(*anchor)


def upgrade_to_head(target: Engine | str | URL, audit_seal: AuditSeal | None = None) -> None:
    """Bring the schema to the newest migration, in one transaction. A database with audit
    events written before migration 0005 needs the audit seal to upgrade."""
    _migrate(target, "upgrade", "head", audit_seal)


def downgrade(target: Engine | str | URL, revision: str) -> None:
    """Step the schema back to `revision` ("base" removes every table of the store)."""
    _migrate(target, "downgrade", revision)


def current_revision(target: Engine | str | URL) -> str | None:
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if engine is not target:
            engine.dispose()
