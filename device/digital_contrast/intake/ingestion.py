"""Storing checked instances, whatever the channel (STOW-RS, zip upload, DIMSE C-STORE): files
into the content-addressed store, rows in one transaction. Our own output is refused (a
synthetic series must never become an input)."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from io import BytesIO

import pydicom
from sqlalchemy.orm import Session

from digital_contrast.intake.instance import ParsedInstance
from digital_contrast.intake.statuses import FailureReason
from digital_contrast.store import Instance, InstanceStore, Origin, StoredFile, StoreError
from digital_contrast.store.audit import append_audit
from digital_contrast.store.orphans import release
from digital_contrast.store.studies import SameContent, is_synthetic, record_instances

log = logging.getLogger(__name__)


class IntakeAborted(Exception):
    """The request ended before its body did (cancelled or disconnected)."""


@dataclass
class IntakeResult:
    stored: list[ParsedInstance] = field(default_factory=list)
    failed: list[tuple[ParsedInstance, FailureReason, str]] = field(default_factory=list)

    @property
    def series_uids(self) -> list[str]:
        return sorted({i.series_instance_uid for i in self.stored})


def ingest(store: InstanceStore, db: Session, site: str, actor: str,
           instances: Iterable[ParsedInstance], channel: str) -> IntakeResult:
    """Store checked instances for `site` (audited as `actor`); all rows commit together. A
    conflicting or synthetic instance fails alone; the others are kept.

    `instances` may be lazy (parts checked as they are drawn, even as the request body
    arrives): each accepted file is written at once, named in the request's intent
    (store.file_journal) before it is written. When drawing raises (the body
    turned out malformed, too large or cut off), no row is written and the files no row claims
    are removed; a file written for a refused instance, or a second copy of one kept, is
    removed after the commit. A process killed on the way leaves its intent to the sweep.
    """
    outcome = IntakeResult()
    accepted: list[ParsedInstance] = []  # written, their bytes dropped (headers kept)
    stored: list[StoredFile] = []
    # Files first (idempotent, invisible until their rows commit), made durable by one sync
    # for the whole request before any row is written. Written here, not handed to other
    # threads: hashing and writing release the GIL, and a hand-off per file cost more than
    # it overlapped.
    intent = store.journal.intent()
    try:
        for instance in instances:
            if is_synthetic(instance.header):
                outcome.failed.append((instance, FailureReason.SYNTHETIC_INPUT,
                                       "synthetic images are never accepted as input"))
                continue
            stored.append(store.put(instance.data, sync=False, intent=intent))
            accepted.append(replace(instance, data=b""))
    except BaseException:
        db.rollback()
        release(db, store, intent)
        raise
    try:
        store.sync()
        rows = record_instances(db, site, [(i.header, f) for i, f in
                                           zip(accepted, stored, strict=True)],
                                Origin.RECEIVED, same_content=_same_data_set(store))
        unused = []  # refused, or a re-sent instance whose first file is kept
        for instance, row, file in zip(accepted, rows, stored, strict=True):
            if isinstance(row, StoreError):
                outcome.failed.append((instance, FailureReason.PROCESSING_FAILURE, row.detail))
                unused.append(file)
            else:
                outcome.stored.append(instance)
                if row.file_path != file.path:
                    unused.append(file)
        append_audit(db, site, actor, f"intake.{channel}", "series",
                     ",".join(outcome.series_uids) or None,
                     "success" if not outcome.failed else "partial" if outcome.stored
                     else "refused", {"stored": len(outcome.stored),
                                      "failed": len(outcome.failed)})
        db.commit()
    except BaseException:
        db.rollback()
        release(db, store, intent)
        raise
    release(db, store, intent, [store.path(f.path) for f in unused])
    log.info("intake via %s: %d stored, %d failed", channel, len(outcome.stored),
             len(outcome.failed))
    return outcome


def _same_data_set(store: InstanceStore) -> SameContent:
    """The same instance in other bytes: every data element equal, File Meta aside (another
    peer's implementation UID, another transfer syntax of the same native pixels)."""

    def same(row: Instance, file: StoredFile) -> bool:
        try:
            kept = pydicom.dcmread(BytesIO(store.read(row.file_path, row.sha256)))
            new = pydicom.dcmread(store.path(file.path))
            return bool(kept == new)
        except Exception:  # unreadable either side: not provably the same
            return False

    return same
