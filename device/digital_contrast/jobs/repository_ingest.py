"""The repository's ingest items on the Celery executor's queue: the same app, quorum queue,
late acknowledgement and prefetch as "run job X" (jobs.celery_executor), so a site runs one
kind of worker for batch synthesis and ingest alike.

A message names a run and an item of the repository index; the worker runs the item there
(repository.ingest_runs.run_item). A worker killed mid-item leaves its message unacknowledged
and RabbitMQ delivers it again: the item, not yet done, runs again and writes the same bytes.
A database outage puts the message back after a pause, as for jobs.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.exceptions import Reject
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.config import Settings
from digital_contrast.keys.folder import keys_folder
from digital_contrast.repository.deid.deidentify import Deidentifier
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.database import open_index, sessions
from digital_contrast.repository.index.tables import IngestRun
from digital_contrast.repository.ingest import site_secret_name
from digital_contrast.repository.ingest_runs import (
    Publish,
    database_outage,
    key_check,
    run_item,
    safe_private_of,
)

log = logging.getLogger(__name__)
INGEST_TASK = "digital_contrast.repository_ingest_item"


def ingest_publisher(app: Celery) -> Publish:
    def publish(run_id: int, item_id: int) -> None:
        app.send_task(INGEST_TASK, args=[run_id, item_id])

    return publish


def site_deidentifier(run: IngestRun) -> Deidentifier:
    """The run's site key from this worker's keys folder, never created here: a worker
    without it fails the item (INGEST_KEY_MISSING) rather than invent a new key."""
    folder, name = keys_folder(), site_secret_name(run.site)
    if folder.read_private("secrets", f"{name}.key") is None:
        raise RepositoryError("INGEST_KEY_MISSING", "this worker's keys folder has no key of "
                                                    "the run's site")
    return Deidentifier(SiteKey(run.site, folder.secret(name)),
                        safe_private=safe_private_of(run))


def register_ingest_task(app: Celery, settings: Settings, backoff_s: float) -> None:
    """The ingest task on `app`; the index opens in the pool process at its first item."""
    index: list[sessionmaker[Session]] = []
    deidentifiers: dict[tuple[str, str, str], Deidentifier] = {}

    def index_sessions() -> sessionmaker[Session]:
        if not index:
            index.append(sessions(open_index(settings.repository_database_url)))
        return index[0]

    def deidentifier_for(run: IngestRun) -> Deidentifier:
        wanted = (run.site, run.key_check, repr(run.safe_private))
        if wanted in deidentifiers:
            return deidentifiers[wanted]
        deidentifier = site_deidentifier(run)
        if key_check(deidentifier.key.key) == run.key_check:  # run_item refuses any other
            deidentifiers[wanted] = deidentifier
        return deidentifier

    # acks late, rejected when the worker is lost (make_celery); not shared, as run_job
    @app.task(name=INGEST_TASK, shared=False)
    def repository_ingest_item(run_id: int, item_id: int) -> None:
        try:
            run_item(index_sessions(), int(run_id), int(item_id), deidentifier_for)
        except Exception as exc:  # the type only: a driver's message may quote a source path
            if database_outage(exc):  # the message stays, after a pause
                log.warning("ingest run %s item %s put back on the queue (%s)", run_id,
                            item_id, type(exc).__name__)
                threading.Event().wait(backoff_s)
                raise Reject(type(exc).__name__, requeue=True) from None
            log.error("ingest run %s item %s not run (%s); resume the run to retry it",
                      run_id, item_id, type(exc).__name__)
            raise Reject(type(exc).__name__, requeue=False) from None
