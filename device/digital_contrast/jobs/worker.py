"""Workers: claim a job under a lease, keep the lease alive while the job runs, repeat.

A worker that dies (kill -9) simply stops renewing: once its lease expires, another worker
claims the job again and runs it from the start (the run is deterministic and its publication
idempotent). A job that keeps killing its workers fails after MAX_ATTEMPTS claims. Under the
Celery executor a worker runs the job a message names (`run_dispatched`) and never looks for
expired leases itself: the broker's redelivery is what retries (jobs.celery_executor).
"""

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from digital_contrast.carbon.meter import JobEnergy
from digital_contrast.jobs.runner import record_footprint, run_job
from digital_contrast.service import ServiceState
from digital_contrast.service.polling import poll_until
from digital_contrast.store import JobState
from digital_contrast.store.columns import utcnow
from digital_contrast.store.errors import StoreError
from digital_contrast.store.jobs import (
    claim_job,
    claim_next_job,
    finish_job,
    get_job,
    renew_lease,
)
from digital_contrast.store.orphans import sweep_orphans
from digital_contrast.store.tables import Job

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


def new_worker_id(kind: str = "worker") -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, service: ServiceState, *, lease_seconds: float = 120.0,
                 poll_seconds: float = 1.0, worker_id: str | None = None,
                 run: Callable[[ServiceState, str, str], JobState] = run_job) -> None:
        self.service = service
        self.lease_seconds, self.poll_seconds = lease_seconds, poll_seconds
        self.worker_id = worker_id or new_worker_id()
        self._run = run

    def _claim(self) -> tuple[str, int] | None:
        with self.service.sessions() as session:
            job = claim_next_job(session, self.worker_id, self.lease_seconds)
            claimed = (job.id, job.attempts) if job is not None else None
            session.commit()
        return claimed

    def _keep_lease(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                with self.service.sessions() as session:
                    renew_lease(session, job_id, self.worker_id, self.lease_seconds)
                    session.commit()
            except StoreError as exc:  # lost: the job's outcome will be refused at finish
                log.warning("job %s: lease not renewed (%s)", job_id, exc.code)
                return

    def run_once(self) -> bool:
        """Claim and run one job; False when there was nothing to do."""
        claimed = self._claim()
        if claimed is None:
            return False
        self._run_claimed(*claimed)
        return True

    def run_dispatched(self, job_id: str) -> JobState | None:
        """Run the job a broker message names (the Celery executor): claim it once it is queued
        or its lease expired, waiting while a live worker holds it; None when it is finished
        or gone (the message was a redelivery of work already done)."""
        while True:
            with self.service.sessions() as session:  # the claim first: SQLite's writer lock
                claimed = claim_job(session, job_id, self.worker_id, self.lease_seconds)
                attempts = claimed.attempts if claimed is not None else None
                job = claimed or get_job(session, job_id)
                gone = job is None or job.state.terminal
                wait_s = _lease_left_s(job) if job is not None else 0.0
                session.commit()
            if attempts is not None:
                return self._run_claimed(job_id, attempts)
            if gone:
                return None
            threading.Event().wait(min(max(wait_s, 0.2), self.poll_seconds * 5))

    def _run_claimed(self, job_id: str, attempts: int) -> JobState:
        if attempts > MAX_ATTEMPTS:
            with self.service.sessions() as session:
                job = finish_job(session, job_id, self.worker_id, JobState.FAILED,
                                 error_code="JOB_ATTEMPTS_EXHAUSTED",
                                 error_detail=f"the job was interrupted {attempts - 1} times")
                record_footprint(session, self.service, job, JobState.FAILED, JobEnergy(
                    reason="not measured: every attempt of the job was interrupted"))
                session.commit()
            return JobState.FAILED
        if attempts > 1:  # an earlier attempt was interrupted: what its process left goes first
            with self.service.sessions() as session:
                sweep_orphans(session, self.service.instances)
        done = threading.Event()
        keeper = threading.Thread(target=self._keep_lease, args=(job_id, done), daemon=True,
                                  name=f"lease-{job_id[:8]}")
        keeper.start()
        try:
            return self._run(self.service, job_id, self.worker_id)
        finally:
            done.set()
            keeper.join()

    def run_until(self, stop: threading.Event) -> None:
        poll_until(stop, self.run_once, self.poll_seconds, f"worker {self.worker_id}")


def _lease_left_s(job: Job) -> float:
    expires = job.lease_expires_at
    return (expires - utcnow()).total_seconds() if expires is not None else 0.0


def start_worker_threads(service: ServiceState, count: int, stop: threading.Event, *,
                         lease_seconds: float, poll_seconds: float) -> list[threading.Thread]:
    threads = []
    for index in range(count):
        worker = Worker(service, lease_seconds=lease_seconds, poll_seconds=poll_seconds,
                        worker_id=new_worker_id(f"service{index}"))
        thread = threading.Thread(target=worker.run_until, args=(stop,), daemon=True,
                                  name=f"job-worker-{index}")
        thread.start()
        threads.append(thread)
    return threads
