"""Handing queued jobs to the Celery executor: publish, then record that the broker has them.

A job is marked dispatched only after RabbitMQ confirmed its message (publisher confirms), in
the transaction that locked it: a broker that is down leaves the job undispatched and the next
round publishes it. Crashing between the confirm and the commit publishes it twice, which is
harmless: the second message finds the job claimed or finished (jobs.worker.run_dispatched).
"""

import logging
from collections.abc import Callable

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.jobs.celery_executor import TASK
from digital_contrast.store.columns import utcnow
from digital_contrast.store.jobs import undispatched_jobs

log = logging.getLogger(__name__)
BATCH = 200  # messages per transaction: a cohort of a million cases is handed over in rounds

Publish = Callable[[str], None]


def celery_publisher(app: Celery) -> Publish:
    def publish(job_id: str) -> None:
        app.send_task(TASK, args=[job_id], task_id=job_id)

    return publish


def dispatch_pending(sessions: sessionmaker[Session], publish: Publish) -> int:
    """Publish every job still waiting for its message; returns how many were published. A
    broker error stops the round (the rest stay for the next); nothing is lost."""
    published = 0
    while True:
        with sessions() as session:
            jobs = undispatched_jobs(session, BATCH)
            for job in jobs:
                try:
                    publish(job.id)
                except Exception as exc:  # broker unreachable or unconfirmed
                    session.commit()  # what was confirmed so far stays dispatched
                    log.warning("job dispatch paused: the broker refused or is unreachable "
                                "(%s); %d published this round", type(exc).__name__, published)
                    return published
                job.dispatched_at = utcnow()
                published += 1
            session.commit()
        if len(jobs) < BATCH:
            return published
