"""The Celery executor: RabbitMQ carries "run job X" messages; the database stays the record.

A message only names a job. The worker that receives it claims the job in the database under a
lease (as the embedded workers do) and runs it; the message is acknowledged after the job's
outcome is committed (acks_late), so a worker that dies mid-job (kill -9 of the pool child or of
the whole worker) leaves it unacknowledged and RabbitMQ delivers it again. That redelivery is the
only retry: nothing reaps expired leases under this executor. The lease only fences the
redelivered message from a worker that may still be alive: it waits until the job is finished
or its lease has expired (its holder stopped renewing) and claims it then. The claim, the pinned
inputs and the deterministic output UIDs make a second run publish nothing twice.

Queues are quorum queues (replicated, persistent messages, publisher confirms), one per
installation: `dc-jobs-<database identity>`, so two sites sharing a broker never run each
other's jobs. Prefetch is one message per worker process: a waiting job is never held by a
busy worker. The repository's ingest items ride the same queue (jobs.repository_ingest).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from celery import Celery
from celery.exceptions import Reject
from kombu import Queue
from sqlalchemy.exc import OperationalError

from digital_contrast.config import Settings
from digital_contrast.jobs.repository_ingest import register_ingest_task
from digital_contrast.store.errors import StoreError

if TYPE_CHECKING:
    from digital_contrast.jobs.worker import Worker

log = logging.getLogger(__name__)
TASK = "digital_contrast.run_job"
# A worker that cannot reach the database puts the message back after this pause, so that an
# outage makes a slow loop rather than a hot one.
INFRASTRUCTURE_BACKOFF_S = 5.0


def queue_name(settings: Settings) -> str:
    return f"dc-jobs-{settings.database_identity}"


def make_celery(settings: Settings) -> Celery:
    """The Celery app of this installation (producer and worker alike)."""
    queue = Queue(queue_name(settings), routing_key=queue_name(settings), durable=True,
                  queue_arguments={"x-queue-type": "quorum",
                                   # RabbitMQ 3.12+; older nodes take it from rabbitmq.conf
                                   "x-consumer-timeout":
                                       int(settings.broker_consumer_timeout_s * 1000)})
    app = Celery("digital_contrast", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_queues=[queue], task_default_queue=queue.name,
        task_default_routing_key=queue.name, task_create_missing_queues=False,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_ignore_result=True, task_serializer="json", accept_content=["json"],
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.5,
                                   "interval_step": 1.0, "interval_max": 3.0},
        worker_hijack_root_logger=False, worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False, task_send_sent_event=False,
        worker_cancel_long_running_tasks_on_connection_loss=False)

    worker: list[Worker] = []  # opened in the pool process at its first job, never before the fork

    def current() -> Worker:
        # imported here: the job worker loads torch, which a producer (`batch submit`,
        # `repository ingest`) never needs
        from digital_contrast.jobs.worker import Worker, new_worker_id
        from digital_contrast.service import open_state

        if not worker:
            worker.append(Worker(open_state(settings), lease_seconds=settings.job_lease_s,
                                 worker_id=new_worker_id("celery")))
        return worker[0]

    # acks late, rejected when the worker is lost: app.conf above. Not shared: a shared task
    # would join every app made later in the process, with this app's settings.
    @app.task(name=TASK, shared=False)
    def run_job(job_id: str) -> None:
        try:
            current().run_dispatched(job_id)
        except (OperationalError, StoreError) as exc:  # database gone: the message stays
            log.warning("job %s put back on the queue (%s)", job_id, type(exc).__name__)
            threading.Event().wait(INFRASTRUCTURE_BACKOFF_S)
            raise Reject(type(exc).__name__, requeue=True) from None

    # the repository's ingest items share the queue: one kind of worker for both
    register_ingest_task(app, settings, INFRASTRUCTURE_BACKOFF_S)
    return app
