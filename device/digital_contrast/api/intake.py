"""Intake (STOW-RS and zip uploads): files into the content-addressed store, rows in one
transaction. Our own output is refused (a synthetic series must never become an input)."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from digital_contrast.api.deps import Principal, ServiceState
from digital_contrast.api.dicomweb import FailureReason, ParsedInstance
from digital_contrast.store import Origin, StoreError, begin_write
from digital_contrast.store.audit import append_audit
from digital_contrast.store.studies import is_synthetic, record_instance

log = logging.getLogger(__name__)


@dataclass
class IntakeResult:
    stored: list[ParsedInstance] = field(default_factory=list)
    failed: list[tuple[ParsedInstance, FailureReason, str]] = field(default_factory=list)

    @property
    def series_uids(self) -> list[str]:
        return sorted({i.series_instance_uid for i in self.stored})


def ingest(state: ServiceState, db: Session, caller: Principal,
           instances: Sequence[ParsedInstance], channel: str) -> IntakeResult:
    """Store checked instances for the caller's site; all rows commit together. A conflicting
    or synthetic instance fails alone; the others are kept."""
    outcome = IntakeResult()
    begin_write(db)
    for instance in instances:
        if is_synthetic(instance.header):
            outcome.failed.append((instance, FailureReason.SYNTHETIC_INPUT,
                                   "synthetic images are never accepted as input"))
            continue
        stored = state.instances.put(instance.data)  # idempotent; rows make it visible
        try:
            with db.begin_nested():
                record_instance(db, caller.site, instance.header, stored, Origin.RECEIVED)
        except StoreError as exc:
            outcome.failed.append((instance, FailureReason.PROCESSING_FAILURE, exc.detail))
            continue
        outcome.stored.append(instance)
    append_audit(db, caller.site, caller.actor, f"intake.{channel}", "series",
                 ",".join(outcome.series_uids) or None,
                 "success" if not outcome.failed else "partial" if outcome.stored else "refused",
                 {"stored": len(outcome.stored), "failed": len(outcome.failed)})
    db.commit()
    log.info("intake via %s: %d stored, %d failed", channel, len(outcome.stored),
             len(outcome.failed))
    return outcome
