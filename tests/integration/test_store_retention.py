"""Retention: old studies leave with their files; audit events stay; jobs stay de-identified;
an interrupted purge finishes on the next run."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from digital_contrast.store import InstanceStore, JobState, Origin
from digital_contrast.store.audit import append_audit, verify_audit_chain
from digital_contrast.store.jobs import claim_next_job, finish_job, job_events, submit_job
from digital_contrast.store.retention import PurgeResult, purge
from digital_contrast.store.studies import get_series, record_instance
from digital_contrast.store.tables import FileDeletion, Instance, Job, Series, Study
from tests.support.databases import dicom_header

OLD = datetime(2025, 1, 1, tzinfo=UTC)
CUTOFF = datetime(2025, 6, 1, tzinfo=UTC)


def _ingest(session, store: InstanceStore, study: str, series: str, sop: str, *,
            origin: Origin = Origin.RECEIVED, data: bytes | None = None) -> Instance:
    return record_instance(session, "site-a", dicom_header(study=study, series=series, sop=sop),
                           store.put(data or sop.encode()), origin)


def _age(session, before: datetime) -> None:
    """Make everything recorded so far look as if it arrived at `before`."""
    for model in (Study, Series):
        for row in session.scalars(select(model)):
            row.created_at = before
            if model is Series:
                row.updated_at = before


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def old_and_new(store_sessions, instance_store: InstanceStore) -> dict[str, object]:
    """An old study with a finished job and its produced series, and a recent study."""
    with store_sessions() as session:
        received = [_ingest(session, instance_store, "1.5.1", "1.5.1.1", f"1.5.1.1.{k}")
                    for k in range(3)]
        series_id = received[0].series_id
        job = submit_job(session, site="site-a", series_id=series_id, use_case="aaa-cta",
                         bundle_sha256="b" * 64, model_name="aaa-cta", model_version="3",
                         idempotency_key="1.5.1.1|aaa-cta|bbb", instance_set_sha256="a" * 64,
                         now=OLD).job
        claim_next_job(session, "w", 60, now=OLD)
        finish_job(session, job.id, "w", JobState.SUCCEEDED, result={"series": "2.25.9"},
                   output_series_uid="2.25.9", now=OLD + timedelta(minutes=2))
        produced = _ingest(session, instance_store, "1.5.1", "2.25.9", "2.25.9.1",
                           origin=Origin.PRODUCED)
        append_audit(session, "site-a", "key:1", "job.finish", "job", job.id, "success", {})
        _age(session, OLD)
        session.commit()
        new = _ingest(session, instance_store, "1.5.2", "1.5.2.1", "1.5.2.1.1")
        session.commit()
        return {"job": job.id, "old_files": [i.file_path for i in [*received, produced]],
                "new_file": new.file_path}


@pytest.mark.req("SRS-RET-001", "SRS-AUD-002")
def test_purge_removes_old_studies_and_keeps_audit_and_deidentified_jobs(
        store_sessions, instance_store: InstanceStore, old_and_new: dict) -> None:
    with store_sessions() as session:
        result = purge(session, instance_store, CUTOFF)
        assert result == PurgeResult(studies=1, series=2, instances=4, files=4,
                                     jobs_deidentified=1)
    with store_sessions() as session:
        assert [s.study_instance_uid for s in session.scalars(select(Study))] == ["1.5.2"]
        assert _count(session, Series) == 1 and _count(session, Instance) == 1
        assert _count(session, FileDeletion) == 0
        assert not any(instance_store.exists(p) for p in old_and_new["old_files"])
        assert instance_store.exists(old_and_new["new_file"])
        job = session.get(Job, old_and_new["job"])
        assert (job.series_id, job.instance_set_sha256, job.output_series_uid,
                job.idempotency_key, job.result) == (None, None, None, None, None)
        assert (job.use_case, job.state, job.bundle_sha256, job.model_version) == (
            "aaa-cta", JobState.SUCCEEDED, "b" * 64, "3")
        assert job.finished_at - job.started_at == timedelta(minutes=2)
        assert job.deidentified_at is not None and len(job_events(session, job.id)) == 3
        audit = verify_audit_chain(session)
        assert audit.ok and audit.checked == 1
        assert purge(session, instance_store, CUTOFF) == PurgeResult()


@pytest.mark.req("SRS-RET-001")
def test_studies_in_use_or_with_recent_series_are_kept(store_sessions,
                                                       instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        busy = _ingest(session, instance_store, "1.6.1", "1.6.1.1", "1.6.1.1.1")
        _ingest(session, instance_store, "1.6.2", "1.6.2.1", "1.6.2.1.1")
        _ingest(session, instance_store, "1.6.2", "1.6.2.2", "1.6.2.2.1")
        submit_job(session, site="site-a", series_id=busy.series_id, use_case="aaa-cta",
                   bundle_sha256="b" * 64, model_name="m", model_version="1",
                   idempotency_key="busy")
        _age(session, OLD)
        get_series(session, "site-a", "1.6.2.2").updated_at = CUTOFF + timedelta(days=1)
        session.commit()
        assert purge(session, instance_store, CUTOFF) == PurgeResult()
        assert _count(session, Instance) == 3


@pytest.mark.req("SRS-RET-001")
def test_an_interrupted_purge_leaves_no_row_without_file_and_finishes_on_rerun(
        store_sessions, instance_store: InstanceStore, old_and_new: dict,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def power_cut(self: InstanceStore, relative_path: str, **_kw: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(InstanceStore, "delete", power_cut)
    with store_sessions() as session, pytest.raises(KeyboardInterrupt):
        purge(session, instance_store, CUTOFF)
    monkeypatch.undo()
    with store_sessions() as session:
        # Rows went first: every file a row points at is still there.
        for path in session.scalars(select(Instance.file_path)):
            assert instance_store.exists(path)
        assert _count(session, FileDeletion) == 4
        assert all(instance_store.exists(p) for p in old_and_new["old_files"])
        result = purge(session, instance_store, CUTOFF)
        assert result == PurgeResult(files=4)
        assert not any(instance_store.exists(p) for p in old_and_new["old_files"])
        assert _count(session, FileDeletion) == 0


@pytest.mark.req("SRS-RET-001")
def test_a_file_shared_with_a_kept_row_stays(store_sessions,
                                             instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        old = _ingest(session, instance_store, "1.7.1", "1.7.1.1", "1.7.1.1.1", data=b"same")
        _age(session, OLD)
        session.commit()
        kept = record_instance(session, "site-b", dicom_header(
            study="1.7.1", series="1.7.1.1", sop="1.7.1.1.1"), instance_store.put(b"same"))
        session.commit()
        path, sha256 = kept.file_path, kept.sha256
        assert path == old.file_path
        result = purge(session, instance_store, CUTOFF, site="site-a")
        assert (result.studies, result.instances, result.files) == (1, 1, 0)
        assert instance_store.read(path, sha256) == b"same"


@pytest.mark.req("SRS-RET-001")
def test_a_file_put_again_after_it_was_journaled_is_kept(store_sessions,
                                                         instance_store: InstanceStore) -> None:
    stored = instance_store.put(b"re-sent")
    with store_sessions() as session:
        session.add(FileDeletion(file_path=stored.path,
                                 created_at=datetime.now(UTC) + timedelta(seconds=-60)))
        session.commit()
        instance_store.put(b"re-sent")  # an ingest about to record a row for it
        assert purge(session, instance_store, CUTOFF) == PurgeResult()
        assert instance_store.exists(stored.path) and _count(session, FileDeletion) == 0
