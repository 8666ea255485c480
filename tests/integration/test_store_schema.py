"""Store schema: migrations up and down on both databases, models match them, engine settings,
CHECK constraints and aware UTC datetimes."""

import hashlib
import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError

from digital_contrast.config import REPO_ROOT
from digital_contrast.store import ApiKey, JobState, StoreError, Study
from digital_contrast.store.audit import append_audit, verify_audit_chain
from digital_contrast.store.audit_seal import AuditSeal
from digital_contrast.store.database import (
    MIGRATIONS_DIR,
    current_revision,
    downgrade,
    make_engine,
    normalise_url,
    session_factory,
    upgrade_to_head,
)
from digital_contrast.store.dicom_senders import add_sender, sender_for
from digital_contrast.store.tables import AuditEvent, Base, Job
from tests.support.databases import (
    STORE_TABLES,
    run_concurrently,
    table_names,
)

EXPECTED_TABLES = {"studies", "series", "instances", "jobs", "job_events", "emission_records",
                   "measurement_slots", "emission_daily", "emission_energy_bins",
                   "emission_energy_bins_monthly",
                   "audit_events", "audit_exports", "auth_failures", "api_keys",
                   "file_deletions", "dicom_senders", "destinations", "deliveries",
                   "batches", "batch_cases"}


def _revisions() -> list[str]:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return [s.revision for s in ScriptDirectory.from_config(config).walk_revisions("base",
                                                                                    "heads")]


@pytest.mark.req("SRS-STORE-001")
def test_upgrade_to_head_creates_every_table(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        assert table_names(engine) == set()
        upgrade_to_head(engine)
        assert table_names(engine) == EXPECTED_TABLES | {"alembic_version"}
        assert set(STORE_TABLES) == EXPECTED_TABLES
        assert current_revision(engine) == _revisions()[0]
    finally:
        engine.dispose()


@pytest.mark.req("SRS-STORE-001")
def test_every_migration_downgrades_to_base_and_upgrades_again(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        upgrade_to_head(engine)
        for revision in _revisions():  # newest first: one migration at a time
            assert current_revision(engine) == revision
            downgrade(engine, "-1")
        assert table_names(engine) == {"alembic_version"}
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert table_names(engine) == EXPECTED_TABLES | {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.req("SRS-STORE-001", "SRS-DIMSE-004")
def test_a_0_1_0_database_upgrades_to_head_keeping_its_rows(blank_url: str) -> None:
    """A site's database of release 0.1.0 (revision 0002, its migrations byte for byte as the
    0.1.0 wheel shipped them), with rows in it, upgraded by this version."""
    wheel = REPO_ROOT / "releases" / "0.1.0" / "digital_contrast-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n for n in archive.namelist()
                         if n.startswith("digital_contrast/store/migrations/versions/0"))
        assert [n.rsplit("/", 1)[1] for n in shipped] == ["0001_initial_schema.py",
                                                           "0002_carbon_accounting.py"]
        for name in shipped:
            assert archive.read(name) == (MIGRATIONS_DIR / "versions" /
                                          name.rsplit("/", 1)[1]).read_bytes()
    engine = make_engine(blank_url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            command.upgrade(config, "0002")
        now = datetime(2026, 11, 30, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO api_keys (id, site, name, role, prefix, salt, key_hash, created_at)"
                " VALUES (1, 'site-a', 'pacs', 'clinician', 'abcdef012345', 's', 'h', :now)"),
                {"now": now})
            connection.execute(text(
                "INSERT INTO studies (id, site, study_instance_uid, created_at) "
                "VALUES (1, 'site-a', '1.2.3', :now)"), {"now": now})
        assert current_revision(engine) == "0002"
        upgrade_to_head(engine)
        assert current_revision(engine) == _revisions()[0]
        sessions = session_factory(engine)
        with sessions() as db:
            assert [(k.name, k.site) for k in db.query(ApiKey)] == [("pacs", "site-a")]
            assert [s.study_instance_uid for s in db.query(Study)] == ["1.2.3"]
            add_sender(db, "PACS_1", "site-a")
            db.commit()
            assert sender_for(db, "PACS_1", "127.0.0.1").site == "site-a"
    finally:
        engine.dispose()


def _database_at(url: str, revision: str) -> Engine:
    engine = make_engine(url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def _database_at_0002(url: str) -> Engine:
    return _database_at(url, "0002")


def _write_0_1_0_audit_events(engine: Engine, n: int, tamper: int | None = None) -> None:
    """Audit events as release 0.1.0 chained them: sha256(prev + canonical JSON of the fields),
    written here from that definition, independently of the code under test."""
    prev = "0" * 64
    with engine.begin() as connection:
        for k in range(n):
            at = datetime(2026, 11, 30, 8, k, 0, 123456, tzinfo=UTC)
            fields = {"at": at.isoformat(timespec="microseconds"), "site": "site-a",
                      "actor": "key:1", "action": "job.submit", "object_type": "job",
                      "object_id": f"job-{k}", "outcome": "success", "detail": {"n": k}}
            digest = hashlib.sha256((prev + json.dumps(
                fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                ).encode()).hexdigest()
            outcome = "failure" if k == tamper else "success"  # edited after hashing
            stored_at = at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at
            connection.execute(text(
                "INSERT INTO audit_events (at, site, actor, action, object_type, object_id, "
                "outcome, detail, prev_hash, hash) VALUES (:at, 'site-a', 'key:1', "
                "'job.submit', 'job', :oid, :outcome, :detail, :prev, :hash)"),
                {"at": stored_at, "oid": f"job-{k}", "outcome": outcome,
                 "detail": json.dumps({"n": k}), "prev": prev, "hash": digest})
            prev = digest


@pytest.mark.req("SRS-AUD-006", "SRS-STORE-001")
def test_a_0_1_0_audit_trail_is_verified_and_sealed_by_the_upgrade(
        blank_url: str, audit_seal: AuditSeal) -> None:
    engine = _database_at_0002(blank_url)
    try:
        _write_0_1_0_audit_events(engine, 3)
        upgrade_to_head(engine, audit_seal)
        sessions = session_factory(engine, audit_seal)
        with sessions() as db:
            result = verify_audit_chain(db)
            assert (result.ok, result.checked, result.anchored_seq) == (True, 4, 4)
            sealed = db.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
            assert (sealed.action, sealed.seq, sealed.detail["legacy_events"]) == (
                "audit.sealed", 4, 3)
            assert db.query(AuditEvent).filter(AuditEvent.mac.is_(None)).count() == 3
            append_audit(db, "site-a", "key:1", "job.submit", "job", "job-9", "success")
            db.commit()
        with sessions() as db:
            assert verify_audit_chain(db).checked == 5
    finally:
        engine.dispose()


@pytest.mark.req("SRS-AUD-006")
@pytest.mark.parametrize("case", ["tampered", "no key"])
def test_an_upgrade_that_cannot_seal_the_earlier_trail_changes_nothing(
        blank_url: str, audit_seal: AuditSeal, case: str) -> None:
    engine = _database_at_0002(blank_url)
    try:
        _write_0_1_0_audit_events(engine, 4, tamper=2 if case == "tampered" else None)
        with pytest.raises(StoreError) as info:
            upgrade_to_head(engine, None if case == "no key" else audit_seal)
        assert info.value.code == ("AUDIT_CHAIN_BROKEN" if case == "tampered"
                                   else "AUDIT_KEY_MISSING")
        assert current_revision(engine) == "0002"
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("audit_events")}
            assert "mac" not in columns and "deliveries" not in table_names(engine)
        assert not audit_seal.anchor_path.exists()
    finally:
        engine.dispose()


@pytest.mark.req("SRS-STORE-001")
def test_the_migrated_schema_matches_the_models(store_engine: Engine) -> None:
    with store_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.req("SRS-STORE-001")
def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'store.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert (tmp_path / "a" / "b" / "store.db").is_file()
    finally:
        engine.dispose()


@pytest.mark.req("SRS-STORE-001")
def test_database_urls_are_normalised_or_refused() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"
    for bad in ("mysql://u@h/db", "not a url"):
        with pytest.raises(StoreError) as info:
            normalise_url(bad)
        assert info.value.code == "DATABASE_URL_INVALID"


@pytest.mark.req("SRS-STORE-001")
def test_enumerations_and_foreign_keys_are_enforced_by_the_database(store_engine: Engine,
                                                                    store_sessions) -> None:
    now = datetime.now(UTC)
    with store_engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(text(
            "INSERT INTO jobs (id, site, use_case, options, bundle_sha256, model_name, "
            "model_version, state, attempts, created_at) VALUES ('j', 's', 'u', '{}', 'b', "
            "'m', '1', 'exploded', 0, :now)"), {"now": now})
    with store_engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(text(
            "INSERT INTO instances (series_id, site, sop_instance_uid, file_path, sha256, "
            "size_bytes, created_at) VALUES (999, 's', '1.2', 'p', 'h', 1, :now)"),
            {"now": now})


@pytest.mark.req("SRS-STORE-001")
def test_datetimes_are_aware_utc_and_naive_ones_refused(store_sessions) -> None:
    local = datetime(2026, 3, 1, 12, 0, 0, 123456).astimezone()
    with store_sessions() as session:
        job = Job(site="s", use_case="u", bundle_sha256="b", model_name="m", model_version="1",
                  state=JobState.QUEUED, created_at=local)
        session.add(job)
        session.commit()
        job_id = job.id
    with store_sessions() as session:
        stored = session.get(Job, job_id)
        assert stored.created_at == local and stored.created_at.tzinfo == UTC
        assert stored.options == {} and stored.attempts == 0
        session.add(Job(site="s", use_case="u", bundle_sha256="b", model_name="m",
                        model_version="1", state=JobState.QUEUED,
                        created_at=datetime(2026, 3, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


@pytest.mark.req("SRS-STORE-001", "SRS-JOB-006")
def test_processes_starting_together_on_a_new_database_migrate_it_once(blank_url: str
                                                                        ) -> None:
    """Workers on several machines started at once: one migrates, the others find it done."""
    engines = [make_engine(blank_url) for _ in range(3)]
    try:
        assert run_concurrently(lambda k: upgrade_to_head(engines[k]), 3) == []
        assert current_revision(engines[0]) == _revisions()[0]
        assert table_names(engines[0]) == EXPECTED_TABLES | {"alembic_version"}
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.req("SRS-STORE-001", "SRS-STORE-008")
def test_the_upgrade_to_0008_sums_the_daily_energy_bins_per_month(blank_url: str) -> None:
    engine = _database_at(blank_url, "0007")
    try:
        with engine.begin() as connection:
            for day, energy_bin, jobs in (("2026-01-31", 7, 2), ("2026-01-01", 7, 3),
                                          ("2026-02-01", 7, 1), ("2026-01-15", 9, 4)):
                connection.execute(text(
                    "INSERT INTO emission_energy_bins (site, day, use_case, model_version, "
                    "factor_set_id, factor_set_version, bin, jobs) VALUES ('site-a', :day, "
                    "'aaa-cta', '1', 'f', '1', :bin, :jobs)"),
                    {"day": date.fromisoformat(day), "bin": energy_bin, "jobs": jobs})
        upgrade_to_head(engine)
        with engine.connect() as connection:
            months = connection.execute(text(
                "SELECT month, bin, jobs FROM emission_energy_bins_monthly ORDER BY month, bin"
            )).all()
        assert [(str(m), b, j) for m, b, j in months] == [
            ("2026-01-01", 7, 5), ("2026-01-01", 9, 4), ("2026-02-01", 7, 1)]
    finally:
        engine.dispose()
