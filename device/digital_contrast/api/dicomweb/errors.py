"""Typed errors of the DICOMweb message layer: a stable code and the HTTP status it maps to."""

from enum import StrEnum

from digital_contrast.errors import DigitalContrastError


class DicomWebErrorCode(StrEnum):
    STOW_MEDIA_TYPE = "STOW_MEDIA_TYPE"  # not multipart/related of application/dicom parts
    STOW_MALFORMED = "STOW_MALFORMED"  # broken MIME framing: no boundary, no close, no parts
    QIDO_BAD_QUERY = "QIDO_BAD_QUERY"  # unknown or unsupported key, bad value, bad paging
    BAD_UID = "DICOMWEB_BAD_UID"  # a UID in the URL that is not digits and dots
    BAD_FRAMES = "DICOMWEB_BAD_FRAMES"  # a frame list that is not numbers from 1
    FRAME_NOT_FOUND = "FRAME_NOT_FOUND"  # a frame beyond the instance's last
    NOT_ACCEPTABLE = "DICOMWEB_NOT_ACCEPTABLE"  # no representation the Accept header allows


_STATUS = {
    DicomWebErrorCode.STOW_MEDIA_TYPE: 415,
    DicomWebErrorCode.STOW_MALFORMED: 400,
    DicomWebErrorCode.QIDO_BAD_QUERY: 400,
    DicomWebErrorCode.BAD_UID: 400,
    DicomWebErrorCode.BAD_FRAMES: 400,
    DicomWebErrorCode.FRAME_NOT_FOUND: 404,
    DicomWebErrorCode.NOT_ACCEPTABLE: 406,
}


class DicomWebError(DigitalContrastError):
    """A whole-request refusal; `status` is the HTTP status of the problem-details response."""

    def __init__(self, code: DicomWebErrorCode, detail: str, status: int | None = None) -> None:
        super().__init__(code.value, detail)
        self.status = status if status is not None else _STATUS[code]
