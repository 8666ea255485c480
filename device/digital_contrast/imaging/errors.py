"""Typed errors of the imaging item. Codes are stable: clients and audit records match on them."""

from enum import StrEnum

from digital_contrast.errors import DigitalContrastError


class ImagingErrorCode(StrEnum):
    EMPTY = "IMG_EMPTY"
    NOT_DICOM = "IMG_NOT_DICOM"
    TRUNCATED = "IMG_TRUNCATED"
    CORRUPT_PIXEL_DATA = "IMG_CORRUPT_PIXEL_DATA"
    NOT_CT = "IMG_NOT_CT"
    UNSUPPORTED_SOP_CLASS = "IMG_UNSUPPORTED_SOP_CLASS"
    UNSUPPORTED_TRANSFER_SYNTAX = "IMG_UNSUPPORTED_TRANSFER_SYNTAX"
    MISSING_ATTRIBUTE = "IMG_MISSING_ATTRIBUTE"
    MIXED_SERIES = "IMG_MIXED_SERIES"
    MIXED_FRAME_OF_REFERENCE = "IMG_MIXED_FRAME_OF_REFERENCE"
    MIXED_ORIENTATION = "IMG_MIXED_ORIENTATION"
    INCONSISTENT_GEOMETRY = "IMG_INCONSISTENT_GEOMETRY"
    DUPLICATE_SLICES = "IMG_DUPLICATE_SLICES"
    MISSING_SLICES = "IMG_MISSING_SLICES"
    NONUNIFORM_SPACING = "IMG_NONUNIFORM_SPACING"
    GANTRY_TILT = "IMG_GANTRY_TILT"
    TOO_FEW_SLICES = "IMG_TOO_FEW_SLICES"
    ZIP_INVALID = "ZIP_INVALID"
    ZIP_UNSAFE_PATH = "ZIP_UNSAFE_PATH"
    ZIP_TOO_LARGE = "ZIP_TOO_LARGE"
    ZIP_NESTED = "ZIP_NESTED"
    NIFTI_INVALID = "NIFTI_INVALID"
    DERIVED_GEOMETRY_MISMATCH = "DER_GEOMETRY_MISMATCH"


class ImagingError(DigitalContrastError):
    """Input or output that the imaging item refuses; `code` is an `ImagingErrorCode`."""

    def __init__(self, code: ImagingErrorCode, detail: str) -> None:
        super().__init__(code.value, detail)
