"""The outcome statuses of one received instance, shared by every intake channel: DICOM
status codes (PS3.7 C.4, PS3.4 GG.4 for C-STORE; PS3.18 I.2 for STOW-RS uses the same values).
The implementation-specific ones (marked below) belong in the conformance statement."""

from enum import IntEnum, StrEnum
from typing import NamedTuple


class FailureReason(IntEnum):
    """Failure Reason (0008,1197) values (PS3.18 Table I.2-2, PS3.7 C.4)."""

    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    # Implementation specific, in the A9xx range: the instance belongs to another study than the
    # one named in the request URL (POST /studies/{study}).
    STUDY_INSTANCE_UID_MISMATCH = 0xA901
    # Implementation specific: a synthetic image (SyntheticData YES, or made by this product)
    # is never accepted as an input.
    SYNTHETIC_INPUT = 0xA902
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
    PROCESSING_FAILURE = 0x0110
    # PS3.7 general status "Duplicate SOP Instance": the same SOP Instance UID came earlier in
    # the same request; only the first occurrence is considered for storage.
    DUPLICATE_SOP_INSTANCE = 0x0111
    SOP_CLASS_NOT_SUPPORTED = 0x0122


# What each refusal means to a sender (the conformance statement lists them).
MEANINGS: dict[FailureReason, str] = {
    FailureReason.OUT_OF_RESOURCES: "out of resources: larger than the limit, or the disk is full",
    FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS: "damaged: missing or invalid UIDs, File "
    "Meta contradicting the data set, an image pixel module that is incomplete, out of range "
    "or inconsistent with its pixel data",
    FailureReason.STUDY_INSTANCE_UID_MISMATCH: "STOW-RS only: another study than the one in "
    "the URL",
    FailureReason.SYNTHETIC_INPUT: "a synthetic image (SyntheticData YES, or this device's "
    "derived output): never an input",
    FailureReason.CANNOT_UNDERSTAND: "not readable as DICOM (no File Meta, no SOP Class UID, "
    "an element of unknown or invalid value representation)",
    FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED: "STOW-RS only: a transfer syntax not accepted",
    FailureReason.PROCESSING_FAILURE: "another image under a SOP Instance UID already stored, "
    "or a storage failure",
    FailureReason.DUPLICATE_SOP_INSTANCE: "STOW-RS only: the SOP Instance UID repeated in one "
    "request",
    FailureReason.SOP_CLASS_NOT_SUPPORTED: "a data set of a SOP class not accepted",
}


class WarningReason(IntEnum):
    """Warning Reason (0008,1196) values (PS3.18 Table I.2-1)."""

    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007


class IntakeCode(StrEnum):
    """Why intake refused an instance, finer than its DICOM status; stable: senders, logs and
    the audit match on it (docs/clinical-integration.md, 'What intake refuses')."""

    NOT_DICOM = "INTAKE_NOT_DICOM"
    UNREADABLE = "INTAKE_UNREADABLE"
    NO_FILE_META = "INTAKE_NO_FILE_META"
    NO_SOP_CLASS = "INTAKE_NO_SOP_CLASS"
    SOP_CLASS = "INTAKE_SOP_CLASS"
    TRANSFER_SYNTAX = "INTAKE_TRANSFER_SYNTAX"
    UID_INVALID = "INTAKE_UID_INVALID"
    FILE_META_MISMATCH = "INTAKE_FILE_META_MISMATCH"
    STUDY_MISMATCH = "INTAKE_STUDY_MISMATCH"
    ELEMENT_UNREADABLE = "INTAKE_ELEMENT_UNREADABLE"
    IMAGE_INCOMPLETE = "INTAKE_IMAGE_INCOMPLETE"
    IMAGE_DIMENSIONS = "INTAKE_IMAGE_DIMENSIONS"
    IMAGE_FRAMES = "INTAKE_IMAGE_FRAMES"
    IMAGE_BITS = "INTAKE_IMAGE_BITS"
    IMAGE_SAMPLES = "INTAKE_IMAGE_SAMPLES"
    IMAGE_DECODED_SIZE = "INTAKE_IMAGE_DECODED_SIZE"
    IMAGE_PIXEL_LENGTH = "INTAKE_IMAGE_PIXEL_LENGTH"
    IMAGE_FRAGMENTS = "INTAKE_IMAGE_FRAGMENTS"


class FailedInstance(NamedTuple):
    """An instance that was not stored: an item of Failed SOP Sequence (0008,1198). The UIDs are
    None when the part could not be read; `detail` is for people (problem details, audit) and
    is never put in the DICOM response."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    failure_reason: int
    detail: str = ""
    code: str = ""  # an IntakeCode where validation refused it
