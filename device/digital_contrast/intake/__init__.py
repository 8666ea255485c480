"""Intake: one received DICOM instance checked (`validate_instance`) and stored (`ingest`), the
same for every channel that receives images (STOW-RS, zip upload, DIMSE C-STORE), with the
DICOM statuses each refusal is reported with."""

from digital_contrast.intake.ingestion import IntakeAborted, IntakeResult, ingest
from digital_contrast.intake.instance import (
    DEFAULT_ACCEPTED_SOP_CLASSES,
    ParsedInstance,
    is_uid,
    validate_instance,
)
from digital_contrast.intake.statuses import (
    FailedInstance,
    FailureReason,
    IntakeCode,
    WarningReason,
)

__all__ = [
    "DEFAULT_ACCEPTED_SOP_CLASSES", "FailedInstance", "FailureReason", "IntakeAborted",
    "IntakeCode", "IntakeResult", "ParsedInstance", "WarningReason", "ingest", "is_uid",
    "validate_instance",
]
