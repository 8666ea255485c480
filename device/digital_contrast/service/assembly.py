"""Opening the service's state from the settings (database migrated to head first) and the one
operation on it that the API's scheduler and the `purge` command share."""

import logging
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from digital_contrast.carbon.meter import process_meter
from digital_contrast.carbon.site import site_carbon
from digital_contrast.config import Settings
from digital_contrast.keys import keys_folder
from digital_contrast.service.state import ServiceState
from digital_contrast.store import InstanceStore, make_engine, session_factory, upgrade_to_head
from digital_contrast.store.audit import append_audit
from digital_contrast.store.audit_seal import AuditSeal
from digital_contrast.store.columns import utcnow
from digital_contrast.store.job_artifacts import JobArtifacts
from digital_contrast.store.orphans import sweep_orphans, sweep_unclaimed_files
from digital_contrast.store.retention import purge

log = logging.getLogger(__name__)

AUDIT_SECRET = "audit"  # secrets/audit.key in the keys folder
# Files younger than this are left to the journal's sweep (a copy may be on its way to a row).
UNCLAIMED_GRACE = timedelta(minutes=10)


def audit_seal(settings: Settings) -> AuditSeal:
    """The audit key (made on first use) and the keys it replaced, from the keys folder, and
    the anchor file."""
    folder = keys_folder(settings)
    return AuditSeal(folder.secret(AUDIT_SECRET), tuple(folder.retired_secrets(AUDIT_SECRET)),
                     settings.audit_anchor_file)


def private_data_dir(data_dir: Path) -> None:
    """The data folder (instances, databases, job files: patient data) is its user's alone:
    created 0700, or restricted when an older installation left it open to others. Files
    already inside keep their modes (docs/operations.md, 'Logs', says how to restrict them)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        try:
            data_dir.chmod(mode & 0o700)
        except PermissionError:  # another user's folder: say so, the service still starts
            log.warning("the data folder is open to other users and cannot be restricted "
                        "(not ours)", extra={"event": "service.file_mode"})


def open_state(settings: Settings) -> ServiceState:
    carbon = site_carbon(settings)  # CONFIG_INVALID before anything is opened
    private_data_dir(settings.data_dir)
    seal = audit_seal(settings)
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine, seal)
    sessions = session_factory(engine, seal)
    instances = InstanceStore.for_data_dir(settings.data_dir)
    with sessions() as db:  # what a killed process of this data folder left behind
        sweep_orphans(db, instances)
    return ServiceState(settings=settings, engine=engine, sessions=sessions,
                        instances=instances,
                        work_dir=settings.data_dir / "work",
                        artifacts=JobArtifacts.for_data_dir(settings.data_dir),
                        meter=process_meter(carbon.meter), factors=carbon.factors)


@contextmanager
def opened_state(settings: Settings) -> Iterator[ServiceState]:
    """`open_state`, its database connections released afterwards (one command's use)."""
    state = open_state(settings)
    try:
        yield state
    finally:
        state.engine.dispose()


def purge_expired(state: ServiceState) -> None:
    """Delete what is older than the retention period and every file no row claims, and
    audit the purge."""
    cutoff = utcnow() - timedelta(days=state.settings.retention_days)
    with state.sessions() as db:
        result = purge(db, state.instances, cutoff, artifacts=state.artifacts)
        swept = sweep_orphans(db, state.instances)
        unclaimed = sweep_unclaimed_files(db, state.instances, utcnow() - UNCLAIMED_GRACE)
    with state.sessions() as db:
        append_audit(db, state.settings.site, "retention", "purge", "store", None, "success",
                     {"cutoff": cutoff.isoformat(), **asdict(result),
                      "orphans_removed": swept.files + swept.folders + unclaimed})
        db.commit()
