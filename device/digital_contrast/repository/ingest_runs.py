"""Ingest runs: `repository ingest` worked off one series at a time by the Celery executor's
workers, resumable, with its progress kept in the index.

Planning is ingest's pass 1 (headers only): one item per source series, refused there whole or
left pending. Each pending item is handed to the broker (`dispatch_items`); a worker runs it
(`run_item`: pass 2 for that series) and marks it done in the transaction that records its
index row, after its files are written. An item already done is skipped, and one run again (a
redelivered message, a resume) writes the same bytes, since UIDs are keyed: a duplicate message
costs time, never a duplicate file or row. On PostgreSQL the item's row is locked while it
runs, so two messages for one item never run it at once.

An item's source paths are identifying: they stay in the site's own index. Logs and reports
carry run and item numbers, counts, codes and pseudonymous UIDs only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.errors import DigitalContrastError
from digital_contrast.repository.deid.deidentify import Deidentifier, SafePrivate
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.records import record_series
from digital_contrast.repository.index.tables import IngestItem, IngestRun
from digital_contrast.repository.ingest import IngestReport, deidentify_series, series_of

log = logging.getLogger(__name__)

PENDING, DONE, REFUSED, FAILED = "pending", "done", "refused", "failed"
SKIPPED, UNKNOWN = "skipped", "unknown"  # run_item's other outcomes: nothing was done
PLANNED, DISPATCHED, COMPLETE = "planned", "dispatched", "complete"  # a run's states
BATCH = 200  # items per transaction when handing them to the broker

Publish = Callable[[int, int], None]  # (run id, item id): returns once the broker confirmed it
DeidentifierFor = Callable[[IngestRun], Deidentifier]


def _mac(secret: bytes, label: str, value: str = "") -> str:
    return hmac.new(secret, f"{label}\x00{value}".encode(), hashlib.sha256).hexdigest()


def key_check(secret: bytes) -> str:
    """What proves a worker holds the key a run was planned with, revealing nothing of it."""
    return _mac(secret, "ingest-run-key-check")


def safe_private_of(run: IngestRun) -> frozenset[SafePrivate]:
    return frozenset(SafePrivate(e["creator"], e["group"], e["element"])
                     for e in run.safe_private)


def get_run(session: Session, run_id: int) -> IngestRun:
    run = session.get(IngestRun, run_id)
    if run is None:
        raise RepositoryError("INGEST_RUN_UNKNOWN", f"no ingest run {run_id} in this index")
    return run


def plan_run(session: Session, source: Path, out: Path, key: SiteKey,
             safe_private: frozenset[SafePrivate] = frozenset()) -> IngestRun:
    """Pass 1 over `source` recorded as a run: one item per series, refused whole (with the
    code of its first refused instance) or pending."""
    report = IngestReport()
    found = series_of(Path(source).resolve(), report)  # absolute: workers run elsewhere
    run = IngestRun(site=key.site, created_at=dt.datetime.now(dt.UTC),
                    out=str(Path(out).resolve()), state=PLANNED, series=len(found),
                    files=sum(len(members) for members in found.values()),
                    not_dicom=report.not_dicom, key_check=key_check(key.key),
                    safe_private=[{"creator": s.creator, "group": s.group, "element": s.element}
                                  for s in sorted(safe_private, key=repr)])
    session.add(run)
    session.flush()
    for series_uid, members in found.items():  # the UID is keyed, never stored
        codes = sorted({code for _, code in members if code})
        session.add(IngestItem(run_id=run.id, item_key=_mac(key.key, "ingest-item", series_uid),
                               sources=[str(path) for path, _ in members],
                               state=REFUSED if codes else PENDING,
                               code=codes[0] if codes else None, instances=len(members),
                               written=0))
    session.flush()
    log.info("ingest run %d planned: %d series, %d instances, %d files not DICOM", run.id,
             run.series, run.files, run.not_dicom)
    return run


@dataclass(frozen=True)
class Dispatch:
    published: int
    waiting: int  # pending items whose message the broker did not confirm this round
    error: str | None  # the broker error's type, when it stopped the round


def dispatch_items(sessions: sessionmaker[Session], run_id: int, publish: Publish) -> Dispatch:
    """Publish one message per pending item of the run (again, for a resume: a lost message is
    worse than a duplicate). A broker error stops the round; the items stay pending."""
    with sessions() as session:
        get_run(session, run_id)
        pending = _count(session, run_id, PENDING)
    published, last = 0, 0
    while True:
        with sessions() as session:
            ids = list(session.scalars(
                select(IngestItem.id).where(IngestItem.run_id == run_id,
                                            IngestItem.state == PENDING, IngestItem.id > last)
                .order_by(IngestItem.id).limit(BATCH)))
        confirmed: list[int] = []
        error = None
        for item_id in ids:
            try:
                publish(run_id, item_id)
            except Exception as exc:  # broker unreachable, or the message unconfirmed
                error = type(exc).__name__
                break
            confirmed.append(item_id)
        if confirmed:
            with sessions.begin() as session:
                session.execute(update(IngestItem).where(
                    IngestItem.id.in_(confirmed), IngestItem.state == PENDING)
                    .values(published_at=dt.datetime.now(dt.UTC)))
        published += len(confirmed)
        last = ids[-1] if ids else last
        if error is not None:
            log.warning("ingest run %d: the broker refused or is unreachable (%s); %d items "
                        "published, %d left pending", run_id, error, published,
                        pending - published)
            return Dispatch(published, max(pending - published, 0), error)
        if len(ids) < BATCH:
            break
    with sessions.begin() as session:
        session.execute(update(IngestRun).where(IngestRun.id == run_id,
                                                IngestRun.state == PLANNED)
                        .values(state=DISPATCHED))
    log.info("ingest run %d: %d items published", run_id, published)
    return Dispatch(published, 0, None)


def reopen_failed(session: Session, run_id: int) -> int:
    """Failed items back to pending (a resume retries them); returns how many."""
    get_run(session, run_id)
    return session.execute(update(IngestItem).where(
        IngestItem.run_id == run_id, IngestItem.state == FAILED)
        .values(state=PENDING, code=None, finished_at=None, published_at=None)).rowcount


def resume(sessions: sessionmaker[Session], run_id: int, publish: Publish) -> Dispatch:
    """Failed items back to pending, then every pending item's message published again."""
    with sessions.begin() as session:
        reopen_failed(session, run_id)
    return dispatch_items(sessions, run_id, publish)


def run_item(sessions: sessionmaker[Session], run_id: int, item_id: int,
             deidentifier_for: DeidentifierFor) -> str:
    """Run one item: done, refused (a file changed since planning), skipped (not pending),
    unknown, or failed (anything but a database outage, which propagates: the message goes
    back to the queue). A failed item waits for `resume`."""
    try:
        outcome = _run_locked(sessions, run_id, item_id, deidentifier_for)
    except Exception as exc:  # a full disk, a missing key, a bug: retried by a resume
        if database_outage(exc):
            raise
        code = exc.code if isinstance(exc, DigitalContrastError) else type(exc).__name__
        with sessions.begin() as session:
            session.execute(update(IngestItem).where(IngestItem.id == item_id,
                                                     IngestItem.state == PENDING)
                            .values(state=FAILED, code=code[:64],
                                    finished_at=dt.datetime.now(dt.UTC)))
        log.error("ingest run %d item %d failed (%s); resume the run to retry it", run_id,
                  item_id, code)
        return FAILED
    if outcome in (DONE, REFUSED):
        _complete(sessions, run_id)
    return outcome


def database_outage(exc: BaseException) -> bool:
    """The database unreachable or its connection lost: worth waiting for, not a failure."""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _run_locked(sessions: sessionmaker[Session], run_id: int, item_id: int,
                deidentifier_for: DeidentifierFor) -> str:
    with sessions.begin() as session:
        item = session.scalars(select(IngestItem).where(
            IngestItem.id == item_id, IngestItem.run_id == run_id).with_for_update()
        ).one_or_none()
        if item is None:
            log.warning("ingest run %d has no item %d: message dropped", run_id, item_id)
            return UNKNOWN
        if item.state != PENDING:  # done by an earlier message, or refused, or failed
            return SKIPPED
        run = get_run(session, run_id)
        deidentifier = deidentifier_for(run)
        if not hmac.compare_digest(key_check(deidentifier.key.key), run.key_check):
            raise RepositoryError("INGEST_KEY_MISMATCH", "this worker's site key is not the "
                                                         "one the run was planned with")
        started, wall = time.perf_counter(), time.time()
        try:
            series = deidentify_series([Path(p) for p in item.sources], Path(run.out),
                                       deidentifier)
        except RepositoryError as exc:  # a source file changed since planning
            item.state, item.code = REFUSED, exc.code
            log.info("ingest run %d item %d refused: %s (%d instances)", run_id, item_id,
                     exc.code, item.instances)
        else:
            _sweep_parts({path.parent for path, _ in series.files}, wall)
            record_series(session, [series.row])
            item.state, item.written = DONE, len(series.files)
            item.series_uid = str(series.row["series_uid"])
            log.info("ingest run %d item %d done: %d instances of series %s", run_id, item_id,
                     item.written, item.series_uid)
        item.seconds = time.perf_counter() - started
        item.finished_at = dt.datetime.now(dt.UTC)
        return item.state


def _sweep_parts(folders: Iterable[Path], before: float) -> None:
    """Temporary files that a worker killed while writing this series left behind."""
    for folder in folders:
        for part in folder.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if part.stat().st_mtime < before:
                    part.unlink()


def _complete(sessions: sessionmaker[Session], run_id: int) -> None:
    """The run complete once nothing is pending or failed. A transaction of its own, after
    the item's: of two items finishing at once, the later check sees both."""
    with sessions.begin() as session:
        session.execute(update(IngestRun).where(
            IngestRun.id == run_id, IngestRun.state != COMPLETE,
            ~exists().where(IngestItem.run_id == run_id,
                            IngestItem.state.in_((PENDING, FAILED))))
            .values(state=COMPLETE))


def _count(session: Session, run_id: int, state: str) -> int:
    return session.scalar(select(func.count()).select_from(IngestItem).where(
        IngestItem.run_id == run_id, IngestItem.state == state)) or 0


@dataclass(frozen=True)
class Progress:
    run: IngestRun
    items: Counter[str]  # state -> items
    codes: Counter[tuple[str, str]]  # (refused or failed, code) -> items
    unpublished: int  # pending items no broker has confirmed a message for
    written: int  # instances
    seconds: float  # workers' time de-identifying and writing
    last_finished: dt.datetime | None

    @property
    def open(self) -> int:
        """Items left to do: pending, or failed and waiting for a resume."""
        return self.items[PENDING] + self.items[FAILED]

    @property
    def ms_per_instance(self) -> float:
        return 1000.0 * self.seconds / self.written if self.written else 0.0


def progress(session: Session, run_id: int) -> Progress:
    run = get_run(session, run_id)
    items: Counter[str] = Counter()
    codes: Counter[tuple[str, str]] = Counter()
    unpublished = written = 0
    seconds = 0.0
    last: dt.datetime | None = None
    for state, code, count, not_sent, instances, spent, finished in session.execute(
            select(IngestItem.state, IngestItem.code, func.count(),
                   func.sum(case((IngestItem.published_at.is_(None), 1), else_=0)),
                   func.sum(IngestItem.written), func.sum(IngestItem.seconds),
                   func.max(IngestItem.finished_at))
            .where(IngestItem.run_id == run_id).group_by(IngestItem.state, IngestItem.code)):
        items[state] += count
        if code and state in (REFUSED, FAILED):
            codes[(state, code)] += count
        unpublished += int(not_sent or 0) if state == PENDING else 0
        written += int(instances or 0)
        seconds += float(spent or 0.0)
        last = finished if last is None or (finished is not None and finished > last) else last
    return Progress(run, items, codes, unpublished, written, seconds, last)
