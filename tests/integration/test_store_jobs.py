"""Jobs: idempotent submission (also racing), exclusive leased claims, lease expiry, events."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from digital_contrast.store import JobState, StoreError
from digital_contrast.store.columns import utcnow
from digital_contrast.store.jobs import (
    claim_job,
    claim_next_job,
    finish_job,
    get_job,
    job_events,
    list_jobs,
    renew_lease,
    submit_job,
    undispatched_jobs,
)
from tests.support.databases import run_concurrently

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
BUNDLE = "b" * 64


def _submit(session, key: str, *, site: str = "site-a", series_id: int | None = None,
            use_case: str = "aaa-cta", now: datetime = T0):
    return submit_job(session, site=site, series_id=series_id, use_case=use_case,
                      bundle_sha256=BUNDLE, model_name="aaa-cta", model_version="3",
                      idempotency_key=key, instance_set_sha256="a" * 64,
                      options={"explain": True}, now=now)


def _transitions(session, job_id: str) -> list[tuple[JobState | None, JobState]]:
    return [(e.from_state, e.to_state) for e in job_events(session, job_id)]


@pytest.mark.req("SRS-STORE-005")
def test_submission_is_idempotent_on_the_key(store_sessions) -> None:
    with store_sessions() as session:
        first = _submit(session, "k1")
        session.commit()
        assert first.created and first.job.state == JobState.QUEUED
    with store_sessions() as session:
        again = _submit(session, "k1", now=T0 + timedelta(minutes=5))
        assert not again.created and again.job.id == first.job.id
        assert again.job.created_at == T0 and again.job.options == {"explain": True}
        assert _transitions(session, first.job.id) == [(None, JobState.QUEUED)]
        with pytest.raises(StoreError) as info:
            _submit(session, "k1", use_case="other")
        assert info.value.code == "JOB_CONFLICT"
        assert _submit(session, "k2").created


@pytest.mark.req("SRS-STORE-005")
def test_racing_submissions_make_one_job(store_sessions) -> None:
    ids = []

    def submit(_k: int) -> None:
        with store_sessions() as session:
            submitted = _submit(session, "same-key")
            session.commit()
            ids.append(submitted.job.id)

    assert run_concurrently(submit, 4) == []
    assert len(ids) == 4 and len(set(ids)) == 1
    with store_sessions() as session:
        assert len(list_jobs(session, "site-a")) == 1
        assert _transitions(session, ids[0]) == [(None, JobState.QUEUED)]


@pytest.mark.req("SRS-STORE-005")
def test_a_lost_insert_race_returns_the_winner(store_sessions,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The path taken when another transaction inserts the key after our first look."""
    from digital_contrast.store import jobs

    with store_sessions() as session:
        winner = _submit(session, "k").job
        session.commit()
    real_lookup, calls = jobs._by_key, []

    def first_look_misses(session, key):
        calls.append(key)
        return None if len(calls) == 1 else real_lookup(session, key)

    monkeypatch.setattr(jobs, "_by_key", first_look_misses)
    with store_sessions() as session:
        again = _submit(session, "k")
        assert not again.created and again.job.id == winner.id and len(calls) == 2
        session.commit()  # the outer transaction survived the failed insert


@pytest.mark.req("SRS-STORE-006")
def test_claim_lease_and_finish_write_an_event_per_state_change(store_sessions) -> None:
    with store_sessions() as session:
        job_id = _submit(session, "k").job.id
        session.commit()
    with store_sessions() as session:
        claimed = claim_next_job(session, "worker-1", 60, now=T0)
        session.commit()
        assert claimed.id == job_id and claimed.state == JobState.RUNNING
        assert claimed.lease_owner == "worker-1" and claimed.attempts == 1
        assert claimed.lease_expires_at == T0 + timedelta(seconds=60)
        assert claim_next_job(session, "worker-2", 60, now=T0 + timedelta(seconds=30)) is None
        assert renew_lease(session, job_id, "worker-1", 60, now=T0 + timedelta(seconds=50)) \
            == T0 + timedelta(seconds=110)
        with pytest.raises(StoreError) as info:
            renew_lease(session, job_id, "worker-2", 60)
        assert info.value.code == "JOB_LEASE_LOST"
        with pytest.raises(StoreError) as info:
            finish_job(session, job_id, "worker-1", JobState.QUEUED)
        assert info.value.code == "JOB_INVALID_STATE"
        done = finish_job(session, job_id, "worker-1", "succeeded",
                          result={"output_sha256": "c" * 64}, output_series_uid="2.25.1",
                          now=T0 + timedelta(seconds=90))
        session.commit()
        assert (done.state, done.finished_at, done.result["output_sha256"]) == (
            JobState.SUCCEEDED, T0 + timedelta(seconds=90), "c" * 64)
        with pytest.raises(StoreError) as info:
            finish_job(session, job_id, "worker-1", JobState.FAILED)
        assert info.value.code == "JOB_LEASE_LOST"
        with pytest.raises(StoreError) as info:
            finish_job(session, "no-such-job", "worker-1", JobState.FAILED)
        assert info.value.code == "JOB_NOT_FOUND"
        events = job_events(session, job_id)
        assert [(e.from_state, e.to_state) for e in events] == [
            (None, JobState.QUEUED), (JobState.QUEUED, JobState.RUNNING),
            (JobState.RUNNING, JobState.SUCCEEDED)]
        assert events[1].detail == {"worker": "worker-1", "attempt": 1}


@pytest.mark.req("SRS-STORE-006")
def test_an_expired_lease_is_claimed_again(store_sessions) -> None:
    with store_sessions() as session:
        job_id = _submit(session, "k").job.id
        claim_next_job(session, "crashed-worker", 60, now=T0)
        session.commit()
    with store_sessions() as session:
        assert claim_next_job(session, "worker-2", 60, now=T0 + timedelta(seconds=59)) is None
        session.commit()
        again = claim_next_job(session, "worker-2", 60, now=T0 + timedelta(seconds=61))
        session.commit()
        assert again.id == job_id and again.lease_owner == "worker-2" and again.attempts == 2
        assert again.started_at == T0
        with pytest.raises(StoreError):  # the first worker lost its job
            finish_job(session, job_id, "crashed-worker", JobState.SUCCEEDED)
        finish_job(session, job_id, "worker-2", JobState.REJECTED, error_code="CONF_CONTRAST",
                   error_detail="contrast already given")
        session.commit()
        events = job_events(session, job_id)
        assert [(e.from_state, e.to_state) for e in events] == [
            (None, JobState.QUEUED), (JobState.QUEUED, JobState.RUNNING),
            (JobState.RUNNING, JobState.RUNNING), (JobState.RUNNING, JobState.REJECTED)]
        assert events[2].detail["reason"] == "lease expired"
        assert events[2].detail["previous_worker"] == "crashed-worker"
        assert events[3].detail["error_code"] == "CONF_CONTRAST"


@pytest.mark.req("SRS-STORE-006")
def test_concurrent_workers_never_claim_the_same_job(store_sessions) -> None:
    with store_sessions() as session:
        for k in range(12):
            _submit(session, f"k{k}", now=T0 + timedelta(seconds=k))
        session.commit()
    claims = []

    def work(k: int) -> None:
        with store_sessions() as session:
            while True:
                job = claim_next_job(session, f"worker-{k}", 300)
                session.commit()
                if job is None:
                    return
                claims.append((job.id, f"worker-{k}"))

    assert run_concurrently(work, 6) == []
    counts = Counter(job_id for job_id, _ in claims)
    assert len(counts) == 12 and set(counts.values()) == {1}
    with store_sessions() as session:
        running = list_jobs(session, "site-a", JobState.RUNNING)
        assert len(running) == 12
        assert {(j.id, j.lease_owner) for j in running} == set(claims)
        for job in running:
            assert _transitions(session, job.id) == [(None, JobState.QUEUED),
                                                     (JobState.QUEUED, JobState.RUNNING)]


@pytest.mark.req("SRS-STORE-006")
def test_claims_take_the_oldest_job_of_the_site(store_sessions) -> None:
    with store_sessions() as session:
        newer = _submit(session, "new", now=T0 + timedelta(seconds=5)).job.id
        older = _submit(session, "old", now=T0).job.id
        elsewhere = _submit(session, "b", site="site-b", now=T0 - timedelta(seconds=5)).job.id
        session.commit()
        assert claim_next_job(session, "w", 60, site="site-a").id == older
        assert claim_next_job(session, "w", 60, site="site-a").id == newer
        assert claim_next_job(session, "w", 60, site="site-a") is None
        assert claim_next_job(session, "w", 60).id == elsewhere
        session.commit()


@pytest.mark.req("SRS-STORE-005")
def test_list_jobs_filters_by_site_state_and_time(store_sessions) -> None:
    with store_sessions() as session:
        a = _submit(session, "a", now=T0).job
        b = _submit(session, "b", now=T0 + timedelta(hours=1)).job
        _submit(session, "c", site="site-b", now=T0)
        claim_next_job(session, "w", 60, site="site-a", now=T0 + timedelta(hours=2))
        session.commit()
        assert [j.id for j in list_jobs(session, "site-a")] == [b.id, a.id]
        assert [j.id for j in list_jobs(session, "site-a", "running")] == [a.id]
        assert [j.id for j in list_jobs(session, "site-a", since=T0 + timedelta(minutes=1))] \
            == [b.id]
        assert get_job(session, a.id, site="site-b") is None
        assert get_job(session, a.id, site="site-a").id == a.id


@pytest.mark.req("SRS-JOB-007")
def test_a_named_job_is_claimed_only_when_queued_or_abandoned(store_sessions) -> None:
    """What a Celery message's worker may do with the job it names."""
    with store_sessions() as session:
        job_id = _submit(session, "named").job.id
        other = _submit(session, "other").job.id
        session.commit()
    with store_sessions() as session:
        claimed = claim_job(session, job_id, "w1", 60, now=T0)
        session.commit()
        assert claimed is not None and claimed.id == job_id and claimed.attempts == 1
    with store_sessions() as session:  # a live holder: a redelivered message must wait
        assert claim_job(session, job_id, "w2", 60, now=T0 + timedelta(seconds=30)) is None
        session.commit()
    with store_sessions() as session:  # its holder stopped renewing: taken over
        again = claim_job(session, job_id, "w2", 60, now=T0 + timedelta(seconds=61))
        session.commit()
        assert again is not None and (again.lease_owner, again.attempts) == ("w2", 2)
    with store_sessions() as session:
        finish_job(session, job_id, "w2", JobState.SUCCEEDED, now=T0 + timedelta(seconds=70))
        session.commit()
    with store_sessions() as session:  # finished: a late redelivery claims nothing
        assert claim_job(session, job_id, "w3", 60, now=T0 + timedelta(hours=1)) is None
        assert get_job(session, other).state == JobState.QUEUED  # never another job


@pytest.mark.req("SRS-JOB-006", "SRS-JOB-008")
def test_undispatched_jobs_are_those_waiting_without_a_confirmed_message(store_sessions
                                                                          ) -> None:
    with store_sessions() as session:
        waiting = _submit(session, "waiting").job.id
        sent = _submit(session, "sent", now=T0 + timedelta(seconds=1)).job.id
        left = _submit(session, "left", now=T0 + timedelta(seconds=2)).job.id
        done = _submit(session, "done", now=T0 + timedelta(seconds=3)).job.id
        session.commit()
    with store_sessions() as session:
        get_job(session, sent).dispatched_at = T0
        for job_id in (left, done):  # claimed by an embedded worker before the switch
            claim_job(session, job_id, "embedded-1", 60, now=T0)
        finish_job(session, done, "embedded-1", JobState.SUCCEEDED, now=T0)
        session.commit()
    with store_sessions() as session:
        assert [j.id for j in undispatched_jobs(session, 10)] == [waiting, left]
        session.commit()
    with store_sessions() as session:  # a live embedded holder is not handed to Celery
        live = claim_job(session, waiting, "embedded-2", 3600, now=utcnow())
        session.commit()
        assert live is not None
    with store_sessions() as session:
        assert [j.id for j in undispatched_jobs(session, 10)] == [left]
