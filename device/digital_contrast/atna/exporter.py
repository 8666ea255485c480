"""The export loop: events after the target's cursor, sent in order in batches, the cursor
moved once the batch was written; a failure leaves the cursor where it was, so the next round
sends the batch again (at least once, in order)."""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.atna.message import audit_message
from digital_contrast.atna.syslog import SyslogError, SyslogSender, SyslogTarget, rfc5424
from digital_contrast.config import Settings
from digital_contrast.keys import keys_folder
from digital_contrast.keys.tls import client_context
from digital_contrast.service import ServiceState
from digital_contrast.service.polling import poll_until
from digital_contrast.store.audit_exports import advance_export, events_after, exported_up_to

log = logging.getLogger(__name__)


class AuditExporter:
    def __init__(self, sessions: sessionmaker[Session], sender: SyslogSender, *,
                 batch: int = 100, hostname: str | None = None) -> None:
        self.sessions, self.sender, self.batch = sessions, sender, batch
        self.hostname = hostname or socket.gethostname()
        self.source_id = f"digital-contrast@{self.hostname}"

    @property
    def target(self) -> str:
        return self.sender.target.name

    def run_once(self) -> bool:
        """Send the next batch; True when there was one (sent or not)."""
        with self.sessions() as db:
            read_at = exported_up_to(db, self.target)
            events = events_after(db, read_at, self.batch)
            if not events:
                return False
            procid = str(os.getpid())
            messages = [rfc5424(e, audit_message(e, self.source_id), self.hostname, procid)
                        for e in events]
            try:
                self.sender.send(messages)
            except SyslogError as exc:
                log.warning("%s: %d audit events not exported yet (%s)", exc.code, len(events),
                            self.target)
                raise
            advance_export(db, self.target, read_at, events[-1].id)
        return True

    def drain(self) -> int:
        """Send everything pending now; the number of batches sent."""
        batches = 0
        while self.run_once():
            batches += 1
        return batches

    def run_until(self, stop: threading.Event, poll_seconds: float) -> None:
        poll_until(stop, self.run_once, poll_seconds, f"audit export to {self.target}")
        self.sender.close()


def audit_sender(settings: Settings) -> SyslogSender | None:
    """The sender to DC_AUDIT_SYSLOG (None when no repository is configured); TLS with the
    node certificate of the keys folder (tls/dimse.pem) and its trusted CAs."""
    if not settings.audit_syslog:
        return None
    target = SyslogTarget.parse(settings.audit_syslog)
    tls = client_context(keys_folder(settings)) if target.transport == "tls" else None
    return SyslogSender(target, tls)


def start_audit_export(state: ServiceState, stop: threading.Event,
                       poll_seconds: float = 1.0) -> list[threading.Thread]:
    """The export thread when a repository is configured (none otherwise)."""
    sender = audit_sender(state.settings)
    if sender is None:
        return []
    exporter = AuditExporter(state.sessions, sender)
    thread = threading.Thread(target=exporter.run_until, args=(stop, poll_seconds),
                              daemon=True, name="audit-export")
    thread.start()
    return [thread]
