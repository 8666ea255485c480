"""Closed vocabularies of the store, stored as strings guarded by CHECK constraints."""

from enum import StrEnum


class Origin(StrEnum):
    """Where a series came from: sent to us, or written by us."""

    RECEIVED = "received"
    PRODUCED = "produced"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.REJECTED, JobState.FAILED)


class Role(StrEnum):
    """What an API key may do; the API maps roles to permissions."""

    CLINICIAN = "clinician"
    REGULATORY = "regulatory"
    SUSTAINABILITY = "sustainability"
    ADMIN = "admin"
    RESEARCHER = "researcher"  # the repository's search and cohorts, never the clinical store


class EnergyStatus(StrEnum):
    """How a job's compute energy is known: measured by RAPL/NVML counters, estimated by
    CodeCarbon from CPU load x TDP (and RAM size), or unavailable (the tracker failed)."""

    MEASURED = "measured"
    ESTIMATED = "estimated"
    UNAVAILABLE = "unavailable"


class Protocol(StrEnum):
    """How results reach a destination."""

    DIMSE = "dimse"  # C-STORE SCU
    STOW_RS = "stow-rs"  # DICOMweb STOW-RS client


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (first, or after a retryable failure)
    SENDING = "sending"  # held by a delivery worker under a lease
    DELIVERED = "delivered"
    FAILED = "failed"  # attempts exhausted or refused for good; `deliveries retry` re-queues
