"""Durable jobs on PostgreSQL: a worker process killed with SIGKILL mid-job leaves the job to
be claimed again after its lease, by another worker process, which finishes it."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from digital_contrast.phantom.export import Phase
from digital_contrast.store import Job, JobState, make_engine, session_factory
from digital_contrast.store.columns import utcnow
from digital_contrast.store.jobs import job_events
from tests.support.databases import throwaway_postgres_database
from tests.support.orphans import leftovers
from tests.support.service import make_settings, running_service, upload

REPO = Path(__file__).resolve().parents[2]


def _worker(settings) -> subprocess.Popen:
    # The lease too: the worker would otherwise hold the job for the default 120 s.
    env = os.environ | {"DC_DATA_DIR": str(settings.data_dir), "DC_DATABASE_URL":
                        settings.database_url, "DC_MLFLOW_URI": settings.mlflow_uri,
                        "DC_RELEASES_DIR": str(settings.releases_dir),
                        "DC_JOB_LEASE_S": str(settings.job_lease_s)}
    return subprocess.Popen([sys.executable, "-m", "digital_contrast", "worker", "--once"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _job(sessions, job_id: str) -> Job:
    with sessions() as db:
        return db.get(Job, job_id)


@pytest.mark.req("SRS-JOB-001", "SRS-JOB-004", "SRS-STORE-007")
def test_killed_worker_job_is_resumed_and_finished(tmp_path: Path, empty_registry_db,
                                                   phantom_series) -> None:
    with throwaway_postgres_database() as url:
        settings = make_settings(tmp_path, empty_registry_db, database_url=url,
                                 job_lease_s=5.0)
        with running_service(settings) as service:
            uid = upload(service, phantom_series[Phase.NCCT])
            job_id = service.client.post("/v1/jobs", json={"series_uid": uid,
                                                           "use_case": "aaa-cta"},
                                         headers=service.headers()).json()["id"]
        engine = make_engine(url)
        sessions = session_factory(engine)
        try:
            first = _worker(settings)
            deadline = time.monotonic() + 120
            while _job(sessions, job_id).state == JobState.QUEUED:
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.05)
            os.kill(first.pid, signal.SIGKILL)  # mid-job: claimed, not finished
            first.wait()
            killed = _job(sessions, job_id)
            assert killed.state == JobState.RUNNING and killed.output_series_uid is None
            assert killed.lease_expires_at - killed.started_at <= timedelta(seconds=10)
            # Nobody renews the lease any more; once it expired, another worker takes over.
            time.sleep(max(0.0, (killed.lease_expires_at - utcnow()).total_seconds()) + 0.5)
            second = _worker(settings)
            output = second.communicate(timeout=300)[0].decode()
            assert second.returncode == 0, output
            done = _job(sessions, job_id)
            assert done.state == JobState.SUCCEEDED, (done.error_code, output)
            assert done.attempts == 2 and done.output_series_uid
            with sessions() as db:
                events = job_events(db, job_id)
            assert [e.to_state for e in events] == [JobState.QUEUED, JobState.RUNNING,
                                                    JobState.RUNNING, JobState.SUCCEEDED]
            assert events[2].detail["reason"] == "lease expired"
            # Nothing of the killed attempt is left (swept when the second worker started).
            assert leftovers(settings.data_dir, sessions) == []
        finally:
            engine.dispose()
