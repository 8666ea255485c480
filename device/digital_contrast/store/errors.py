"""Typed errors of the store. Codes are stable: the API maps them to problem details."""

from enum import StrEnum

from digital_contrast.errors import DigitalContrastError


class StoreErrorCode(StrEnum):
    INSTANCE_CORRUPT = "INSTANCE_CORRUPT"  # a stored file no longer matches its hash
    INSTANCE_MISSING = "INSTANCE_MISSING"  # a row points at a file that is not there
    INSTANCE_CONFLICT = "INSTANCE_CONFLICT"  # same SOP Instance UID, different content
    INSTANCE_INVALID = "INSTANCE_INVALID"  # a header lacks an identifying UID
    QUERY_INVALID = "QUERY_INVALID"  # a query filter that is not well formed
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    JOB_CONFLICT = "JOB_CONFLICT"  # an idempotency key reused for another request
    JOB_LEASE_LOST = "JOB_LEASE_LOST"  # the worker no longer holds the job
    JOB_INVALID_STATE = "JOB_INVALID_STATE"
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND"
    API_KEY_INVALID = "API_KEY_INVALID"  # a validity or grace period out of range
    SENDER_INVALID = "SENDER_INVALID"  # a DIMSE sender's AE title or address is not usable
    SENDER_EXISTS = "SENDER_EXISTS"  # the AE title is already a sender (of any site)
    SENDER_NOT_FOUND = "SENDER_NOT_FOUND"
    DESTINATION_INVALID = "DESTINATION_INVALID"  # a destination that could not be reached
    DESTINATION_EXISTS = "DESTINATION_EXISTS"  # the site already has one of that name
    DESTINATION_NOT_FOUND = "DESTINATION_NOT_FOUND"  # none of that name (or disabled)
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND"
    DELIVERY_INVALID_STATE = "DELIVERY_INVALID_STATE"  # e.g. re-queueing one not failed
    DELIVERY_NOTHING_TO_SEND = "DELIVERY_NOTHING_TO_SEND"  # the job has no result series
    AUDIT_INVALID = "AUDIT_INVALID"  # an audit detail that is not plain JSON
    AUDIT_KEY_MISSING = "AUDIT_KEY_MISSING"  # a session that cannot seal audit events
    AUDIT_UNSEALED = "AUDIT_UNSEALED"  # legacy audit rows never sealed by migration 0005
    AUDIT_CHAIN_BROKEN = "AUDIT_CHAIN_BROKEN"  # refused to seal a chain that does not verify
    DATABASE_URL_INVALID = "DATABASE_URL_INVALID"
    OUTCOME_NOT_APPLICABLE = "OUTCOME_NOT_APPLICABLE"  # an outcome for a job with no result
    RANGE_INVALID = "RANGE_INVALID"  # a time range that starts after it ends
    BUCKET_INVALID = "BUCKET_INVALID"


class StoreError(DigitalContrastError):
    """A refusal of the store; `code` is a `StoreErrorCode`."""

    def __init__(self, code: StoreErrorCode | str, detail: str = "") -> None:
        super().__init__(StoreErrorCode(code).value, detail)
