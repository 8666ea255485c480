"""Files no row claims: removed as soon as the work that wrote them ends without claiming them,
and, after a crash, by the sweep of the intents the dead process left (store.file_journal).

What claims a file: an instance file is claimed by any instance row with its path (identical
bytes share one file, across sites too); a job's maps folder by the job having succeeded; a
job's scratch folder, a half-made maps folder and a spooled upload by nothing (they exist only
while their work runs). A path named by an intent of a process still running is never touched.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.store.columns import utcnow
from digital_contrast.store.enums import JobState
from digital_contrast.store.file_journal import Intent, JournalEntry
from digital_contrast.store.instance_store import InstanceStore
from digital_contrast.store.tables import Instance, Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    intents: int = 0  # intents of dead processes read and removed
    files: int = 0  # instance files removed
    folders: int = 0  # scratch and map folders removed


def _claimed_instance(session: Session, relative: str) -> bool:
    return bool(session.scalar(select(exists().where(Instance.file_path == relative))))


def _succeeded(session: Session, job_id: str) -> bool:
    return session.scalar(select(Job.state).where(Job.id == job_id)) == JobState.SUCCEEDED


def _remove_unclaimed(session: Session, instances: InstanceStore, paths: list[Path],
                      excluding: Intent | None = None) -> tuple[int, int]:
    # A file put again from here on (identical bytes of new work) is kept: its intent may
    # have been written just after the live intents were read.
    since = utcnow()
    live = instances.journal.live_paths(excluding)
    files = folders = 0
    data_dir = instances.root.parent
    for path in paths:
        if path in live:
            continue
        parts = path.relative_to(data_dir).parts
        if parts[0] == instances.root.name and len(parts) == 4:
            relative = "/".join(parts[1:])
            instances.remove_temporaries(relative)
            if not _claimed_instance(session, relative) and instances.delete(
                    relative, unless_put_since=since):
                files += 1
        elif parts[0] == "jobs" and len(parts) == 3 and parts[2] == "maps" and \
                _succeeded(session, parts[1]):
            continue  # published with the job's success
        elif path.is_dir():  # a scratch or half-made maps folder
            shutil.rmtree(path, ignore_errors=True)
            folders += 1
        elif path.exists():  # a spooled upload
            path.unlink(missing_ok=True)
            files += 1
    session.rollback()  # reads only
    return files, folders


def sweep_orphans(session: Session, instances: InstanceStore) -> SweepResult:
    """Remove what the intents of dead processes name and no row claims, then the intents."""
    dead = instances.journal.dead_intents()
    if not dead:
        return SweepResult()
    files = folders = 0
    for entry in dead:
        removed = _remove_unclaimed(session, instances, entry.paths())
        files, folders = files + removed[0], folders + removed[1]
        entry.remove()
    log.info("orphan sweep: %d intents of stopped processes, %d files and %d folders "
             "removed", len(dead), files, folders)
    return SweepResult(len(dead), files, folders)


@contextmanager
def write_intent(sessions: sessionmaker[Session], instances: InstanceStore
                 ) -> Iterator[Intent]:
    """An intent for one unit of work. When the work raises, whatever it wrote that no row
    claims is removed before the error goes on; when it returns, `release` (or the end of
    the block) retires the intent."""
    intent = instances.journal.intent()
    try:
        yield intent
    except BaseException:
        with sessions() as session:
            release(session, instances, intent)
        raise
    intent.close()


def release(session: Session, instances: InstanceStore, intent: Intent,
            paths: list[Path] | None = None) -> None:
    """Remove the unclaimed among `paths` (default: all the intent named), then retire the
    intent. `session` is only read, after its work committed or rolled back."""
    named = JournalEntry(intent.path, instances.root.parent).paths() if paths is None \
        else paths
    try:
        _remove_unclaimed(session, instances, named, excluding=intent)
    except Exception as exc:  # the database is unreachable: the next sweep does it
        log.warning("ORPHAN_REMOVAL_DEFERRED: %s; the files are left to the next sweep",
                    type(exc).__name__)
        intent.abandon()
        return
    intent.close()


def sweep_unclaimed_files(session: Session, instances: InstanceStore, older_than: datetime
                          ) -> int:
    """The purge's full sweep: every instance file (and half-written copy) last put before
    `older_than` that no row claims and no running work names. Finds what no intent recorded
    (a power loss before the journal reached the disk, a store from before the journal)."""
    live = instances.journal.live_paths()
    cutoff = older_than.timestamp()
    removed = 0
    candidates = [p for p in instances.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*.dcm")
                  if p not in live and p.stat().st_mtime < cutoff]
    for start in range(0, len(candidates), 500):
        chunk = candidates[start:start + 500]
        names = {p: _relative_name(instances, p) for p in chunk}
        claimed = set(session.scalars(select(Instance.file_path).where(
            Instance.file_path.in_([n for n in names.values() if n]))))
        for path, name in names.items():
            if name is None:  # a half-written copy
                path.unlink(missing_ok=True)
                removed += 1
            elif name not in claimed and instances.delete(name, unless_put_since=older_than):
                removed += 1
    session.rollback()
    return removed


def _relative_name(instances: InstanceStore, path: Path) -> str | None:
    name = path.relative_to(instances.root).as_posix()
    return None if path.name.startswith(".tmp-") else name
