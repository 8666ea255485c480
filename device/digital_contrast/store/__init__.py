"""The store (software item SI-STORE): database models and migrations, sessions, the
content-addressed instance files, jobs, the hash-chained audit trail, API keys and retention.

Repositories are modules taking a `Session` (`studies`, `jobs`, `audit`, `api_keys`,
`retention`, `footprints`, `measurement_slots`); they flush and leave the commit to the
caller, except `retention.purge` and the measurement slot (a lease commits at once).
No patient identifier is ever written to a log line.
"""

from digital_contrast.store.database import (
    begin_write,
    downgrade,
    make_engine,
    session_factory,
    upgrade_to_head,
)
from digital_contrast.store.enums import EnergyStatus, JobState, Origin, Role
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.instance_store import InstanceStore, StoredFile
from digital_contrast.store.tables import (
    ApiKey,
    AuditEvent,
    Base,
    EmissionRecord,
    Instance,
    Job,
    JobEvent,
    MeasurementSlot,
    Series,
    Study,
)

__all__ = [
    "ApiKey", "AuditEvent", "Base", "EmissionRecord", "EnergyStatus", "Instance",
    "InstanceStore", "Job", "JobEvent", "JobState", "MeasurementSlot", "Origin", "Role",
    "Series", "StoreError", "StoreErrorCode", "StoredFile", "Study", "begin_write", "downgrade",
    "make_engine", "session_factory", "upgrade_to_head",
]
