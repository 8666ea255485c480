"""Ingest runs in the index, on SQLite and PostgreSQL, without a broker: the r0005 migration
from r0004 with rows, a run planned from pass 1 (one item per series, the refused one
refused), its items run once each to the same bytes as an in-process ingest, a failed item
reopened by a resume, a source changed after planning refused, and logs without identifiers.
The same items through a real Celery worker: test_repository_ingest_celery.py."""

import logging
import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydicom import dcmread
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.repository.deid.deidentify import Deidentifier
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.index.cohorts import save_cohort
from digital_contrast.repository.index.database import MIGRATIONS, open_index, sessions
from digital_contrast.repository.index.records import record_series
from digital_contrast.repository.index.search import SeriesQuery
from digital_contrast.repository.index.tables import Base, IngestItem, IngestRun, Series
from digital_contrast.repository.ingest import ingest
from digital_contrast.repository.ingest_runs import (
    COMPLETE,
    DONE,
    FAILED,
    PENDING,
    REFUSED,
    SKIPPED,
    UNKNOWN,
    plan_run,
    progress,
    reopen_failed,
    run_item,
)
from tests.support.ingest_source import identifying_values, ingest_source, tree
from tests.support.repository import index_at, index_row

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DA")


@pytest.mark.req("SRS-REPO-012", "SRS-REPO-007")
def test_the_index_upgrades_from_r0004_with_rows(blank_url: str) -> None:
    engine = index_at(blank_url, "r0004")
    with sessions(engine).begin() as session:
        record_series(session, [index_row(0), index_row(1, phase="arterial")])
        save_cohort(session, "all", SeriesQuery(), "everything")
    engine.dispose()
    engine = open_index(blank_url)
    scripts = ScriptDirectory(str(MIGRATIONS))
    assert scripts.get_revision("r0005").down_revision == "r0004"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM repository_series")).scalar() == 2
        assert connection.execute(text(
            "SELECT count(*) FROM repository_cohort_members")).scalar() == 2
        assert connection.execute(text(
            "SELECT version_num FROM repository_alembic_version")).scalar() == \
            scripts.get_current_head()
        # the migrations build what the tables declare, ingest runs included
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "version_table": "repository_alembic_version"})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


@pytest.fixture
def site_key() -> SiteKey:
    return SiteKey("site-a", secrets.token_bytes(32))


def _ours(caplog: pytest.LogCaptureFixture) -> str:
    """This package's log lines (pydicom's are scrubbed by the service process's handler:
    test_repository_ingest_celery.py reads a worker's)."""
    return "\n".join(r.getMessage() for r in caplog.records
                     if r.name.startswith("digital_contrast"))


def _items(make: sessionmaker[Session], run_id: int) -> list[IngestItem]:
    with make() as session:
        return list(session.scalars(select(IngestItem).where(IngestItem.run_id == run_id)
                                    .order_by(IngestItem.id)))


@pytest.mark.req("SRS-REPO-012", "SRS-REPO-003", "SRS-REPO-005")
def test_a_run_is_planned_and_each_item_runs_once_to_the_same_bytes(
        blank_url: str, tmp_path: Path, phantom_series: dict, site_key: SiteKey,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    source = ingest_source(phantom_series, tmp_path / "source")
    engine = open_index(blank_url)
    make = sessions(engine)
    with make.begin() as session:
        run = plan_run(session, source, tmp_path / "out", site_key)
    items = _items(make, run.id)
    assert sorted(i.state for i in items) == [PENDING, PENDING, REFUSED]
    assert [i.code for i in items if i.state == REFUSED] == ["DEID_BURNED_IN"]
    assert all(Path(p).is_absolute() for i in items for p in i.sources)
    source_uids = {str(dcmread(p, stop_before_pixels=True).SeriesInstanceUID)
                   for p in source.rglob("*.dcm")}
    assert not {i.item_key for i in items} & source_uids and len({i.item_key
                                                                  for i in items}) == 3
    with make() as session:
        planned = progress(session, run.id)
    assert (planned.run.series, planned.run.not_dicom, planned.unpublished) == (3, 1, 2)
    assert planned.run.files == len(list(source.rglob("*.dcm")))

    def deidentifier_for(_: IngestRun) -> Deidentifier:
        return Deidentifier(site_key)

    pending = [i for i in items if i.state == PENDING]
    assert [run_item(make, run.id, i.id, deidentifier_for) for i in pending] == [DONE, DONE]
    first = tree(tmp_path / "out")
    # a second message for an item already done: skipped; an item run again: same bytes
    assert run_item(make, run.id, pending[0].id, deidentifier_for) == SKIPPED
    assert run_item(make, run.id, 10_000, deidentifier_for) == UNKNOWN
    with make.begin() as session:
        session.get(IngestItem, pending[0].id).state = PENDING
    assert run_item(make, run.id, pending[0].id, deidentifier_for) == DONE
    assert tree(tmp_path / "out") == first
    ingest(source, tmp_path / "in-process", Deidentifier(site_key))
    assert tree(tmp_path / "in-process") == first

    with make() as session:
        done = progress(session, run.id)
        series = session.scalar(select(func.count()).select_from(Series))
        uids = set(session.scalars(select(Series.series_uid)))
    assert series == 2 and uids == {i.series_uid for i in _items(make, run.id) if i.series_uid}
    assert (done.run.state, done.items[DONE], done.items[REFUSED], done.open) == (
        COMPLETE, 2, 1, 0)
    assert done.written == len(first) and done.ms_per_instance > 0
    assert dict(done.codes) == {(REFUSED, "DEID_BURNED_IN"): 1}
    logged = _ours(caplog)
    assert "ingest run" in logged
    assert not [v for v in identifying_values(source) if v in logged]
    engine.dispose()


@pytest.mark.req("SRS-REPO-012", "SRS-REPO-002")
def test_a_failed_item_waits_for_a_resume_and_a_changed_source_is_refused(
        blank_url: str, tmp_path: Path, phantom_series: dict, site_key: SiteKey,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    source = ingest_source(phantom_series, tmp_path / "source")
    engine = open_index(blank_url)
    make = sessions(engine)
    with make.begin() as session:
        run = plan_run(session, source, tmp_path / "out", site_key)
    changed, kept = [i for i in _items(make, run.id) if i.state == PENDING]
    other_site = Deidentifier(SiteKey("site-a", secrets.token_bytes(32)))
    # a worker holding another key than the run's: fails the item, writes nothing
    assert run_item(make, run.id, kept.id, lambda _: other_site) == FAILED
    assert not (tmp_path / "out").exists()
    with make() as session:
        failed = progress(session, run.id)
    assert dict(failed.codes) == {(REFUSED, "DEID_BURNED_IN"): 1,
                                  (FAILED, "INGEST_KEY_MISMATCH"): 1}
    assert failed.run.state != COMPLETE
    with make.begin() as session:
        assert reopen_failed(session, run.id) == 1
    assert run_item(make, run.id, kept.id, lambda _: Deidentifier(site_key)) == DONE

    Path(changed.sources[-1]).unlink()  # the source changed after planning
    assert run_item(make, run.id, changed.id, lambda _: Deidentifier(site_key)) == REFUSED
    with make() as session:
        final = progress(session, run.id)
        assert session.scalar(select(func.count()).select_from(Series)) == 1
    assert (final.run.state, final.items[DONE]) == (COMPLETE, 1)
    assert final.codes[(REFUSED, "INGEST_SOURCE_CHANGED")] == 1
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == kept.instances  # nothing of it
    assert not [v for v in identifying_values(source) if v in _ours(caplog)]
    engine.dispose()
