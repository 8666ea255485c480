"""Test databases for the store: a migrated SQLite file per test, and a throwaway PostgreSQL
database per test session on the local server (a required component: unreachable = failure).

DC_TEST_POSTGRES_URL overrides the maintenance database used to create and drop them.
"""

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from digital_contrast.store.tables import Base

POSTGRES_ADMIN_URL = os.environ.get(
    "DC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORE_TABLES = sorted(Base.metadata.tables)


@contextmanager
def throwaway_postgres_database(admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """Create `dc_test_<hex>`, yield its URL, drop it (closing any connection left over)."""
    name = f"dc_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is required by the store tests and is unreachable at "
                    f"{make_url(admin_url).render_as_string(hide_password=True)}: "
                    f"{exc.orig}", pytrace=False)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def empty_tables(engine: Engine) -> None:
    """Remove every row of the store, audit rows included (the test bypasses the append-only
    triggers as a superuser may; DELETE is much faster than TRUNCATE for a few rows)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in STORE_TABLES:
            connection.exec_driver_sql(f'DELETE FROM "{table}"')


@contextmanager
def audit_triggers_bypassed(engine: Engine) -> Iterator[Connection]:
    """What someone with direct database rights could do: edit audit rows behind the device's
    back (the append-only triggers switched off on PostgreSQL, dropped on SQLite)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for verb in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS audit_events_no_{verb}")
        yield connection


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[tuple[float, str, Any]]]:
    """(milliseconds, SQL, parameters) of every statement the engine runs meanwhile."""
    statements: list[tuple[float, str, Any]] = []

    def before(conn: Connection, _cursor: Any, _sql: str, _params: Any, _context: Any,
               _many: bool) -> None:
        conn.info["dc_started"] = time.perf_counter()

    def after(conn: Connection, _cursor: Any, sql: str, params: Any, _context: Any,
              _many: bool) -> None:
        took = (time.perf_counter() - conn.info.pop("dc_started")) * 1000
        statements.append((took, sql, params))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def dicom_header(study: str = "1.2.3.1", series: str = "1.2.3.1.1", sop: str = "1.2.3.1.1.1",
                 **attributes: object) -> Dataset:
    """A DICOM header with just what the store reads (values overridable by keyword)."""
    ds = Dataset()
    ds.PatientID, ds.PatientName = "PAT-1", "Doe^Jane"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    ds.StudyDate, ds.AccessionNumber, ds.StudyDescription = "20260101", "ACC-1", "CT ABDOMEN"
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "CT", 3, "NCCT 1mm"
    ds.InstanceNumber, ds.ImageType = 1, ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Manufacturer = "ACME Scanners"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def run_concurrently(target: Callable[[int], None], n: int) -> list[BaseException]:
    """Run target(0..n-1) on n threads at once (released together); return what they raised."""
    barrier, errors = threading.Barrier(n), []

    def guarded(k: int) -> None:
        try:
            barrier.wait()
            target(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors
