"""Delivery workers: claim a due delivery under a lease, send its series, record the outcome
(delivered, or the next attempt scheduled, or failed), audit it. Nothing is held in memory
between attempts: a restarted service finds every pending delivery in the outbox."""

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass

from digital_contrast.delivery.c_store import send_by_c_store
from digital_contrast.delivery.credentials import credential_headers
from digital_contrast.delivery.outcome import SendOutcome
from digital_contrast.delivery.stow_rs import send_by_stow_rs
from digital_contrast.keys.folder import keys_folder
from digital_contrast.keys.tls import client_context
from digital_contrast.service import ServiceState
from digital_contrast.service.polling import poll_until
from digital_contrast.store.audit import append_audit
from digital_contrast.store.enums import DeliveryState, Protocol
from digital_contrast.store.errors import StoreError
from digital_contrast.store.outbox import (
    claim_next_delivery,
    delivery_instances,
    mark_attempt_failed,
    mark_delivered,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Claimed:
    id: str
    site: str
    job_id: str
    destination: str
    protocol: Protocol
    ae_title: str | None
    host: str | None
    port: int | None
    url: str | None
    transfer_syntaxes: list[str]
    tls: bool
    has_credential: bool
    files: list[tuple[str, str]]  # (path in the instance store, SHA-256)


class DeliveryWorker:
    def __init__(self, service: ServiceState, *, poll_seconds: float = 1.0,
                 worker_id: str | None = None) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.worker_id = worker_id or \
            f"delivery-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _claim(self) -> _Claimed | None:
        settings = self.service.settings
        with self.service.sessions() as db:
            delivery = claim_next_delivery(db, self.worker_id, settings.delivery_lease_s)
            if delivery is None:
                db.commit()
                return None
            d = delivery.destination
            claimed = _Claimed(
                delivery.id, delivery.site, delivery.job_id, d.name, d.protocol, d.ae_title,
                d.host, d.port, d.url, list(d.transfer_syntaxes), d.tls, d.has_credential,
                [(i.file_path, i.sha256) for i in delivery_instances(db, delivery)])
            db.commit()
        return claimed

    def _send(self, claimed: _Claimed) -> SendOutcome:
        settings = self.service.settings
        if not claimed.files:
            return SendOutcome(problems=["its result series are no longer stored "
                                         "(retention)"], retryable=False)
        try:  # a file that no longer matches its hash never leaves the device
            for path, sha256 in claimed.files:
                self.service.instances.read(path, sha256)
        except StoreError as exc:
            return SendOutcome(problems=[exc.code], retryable=False)
        files = [self.service.instances.path(path) for path, _ in claimed.files]
        if claimed.protocol is Protocol.DIMSE:
            assert claimed.ae_title and claimed.host and claimed.port
            return send_by_c_store(files, our_ae_title=settings.dimse_ae_title,
                                   ae_title=claimed.ae_title, host=claimed.host,
                                   port=claimed.port,
                                   transfer_syntaxes=claimed.transfer_syntaxes,
                                   timeout_s=settings.dimse_timeout_s,
                                   tls=client_context(keys_folder(settings))
                                   if claimed.tls else None)
        assert claimed.url
        headers = (credential_headers(keys_folder(settings), claimed.site, claimed.destination)
                   if claimed.has_credential else {})
        return send_by_stow_rs(files, url=claimed.url, headers=headers,
                               timeout_s=settings.dimse_timeout_s)

    def run_once(self) -> bool:
        """Attempt one due delivery; False when none was due."""
        claimed = self._claim()
        if claimed is None:
            return False
        try:
            outcome = self._send(claimed)
        except Exception as exc:  # a fault of ours or of a library: the next attempt may do
            outcome = SendOutcome(problems=[f"sending failed ({type(exc).__name__})"])
        with self.service.sessions() as db:
            if outcome.delivered:
                row = mark_delivered(db, claimed.id, self.worker_id, outcome.sent)
            else:
                row = mark_attempt_failed(db, claimed.id, self.worker_id, outcome.summary(),
                                          max_attempts=self.service.settings
                                          .delivery_max_attempts,
                                          retryable=outcome.retryable)
            if row is None:  # the lease went to another worker: its outcome counts
                db.rollback()
                return True
            action = {DeliveryState.DELIVERED: "delivery.delivered",
                      DeliveryState.PENDING: "delivery.retry",
                      DeliveryState.FAILED: "delivery.failed"}[row.state]
            append_audit(db, claimed.site, f"worker:{self.worker_id}", action, "delivery",
                         claimed.id, "success" if outcome.delivered else "failure",
                         {"job_id": claimed.job_id, "destination": claimed.destination,
                          "attempt": row.attempts, "instances_sent": outcome.sent,
                          **({} if outcome.delivered else {"error": row.last_error})})
            db.commit()
        log.info("delivery %s of job %s to %s: %s", claimed.id, claimed.job_id,
                 claimed.destination, action.split(".")[1])
        return True

    def run_until(self, stop: threading.Event) -> None:
        poll_until(stop, self.run_once, self.poll_seconds, self.worker_id)


def start_delivery_threads(service: ServiceState, count: int, stop: threading.Event, *,
                           poll_seconds: float = 1.0) -> list[threading.Thread]:
    threads = []
    for index in range(count):
        worker = DeliveryWorker(service, poll_seconds=poll_seconds)
        thread = threading.Thread(target=worker.run_until, args=(stop,), daemon=True,
                                  name=f"delivery-worker-{index}")
        thread.start()
        threads.append(thread)
    return threads
