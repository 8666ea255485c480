"""UID checks and the retrieve URLs of studies, series and instances (PS3.18 10.4.1)."""

from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode
from digital_contrast.intake.instance import is_uid


def require_uid(value: str, what: str) -> str:
    """A UID taken from a request URL, or `DICOMWEB_BAD_UID` (400) naming which one is wrong."""
    if not is_uid(value):
        raise DicomWebError(DicomWebErrorCode.BAD_UID,
                            f"the {what} in the URL is not a DICOM UID (digits and dots, "
                            "at most 64 characters)")
    return value


def study_url(base_url: str, study: str) -> str:
    """`{base}/studies/{study}`; `base_url` is the DICOMweb service root, e.g. `.../dicomweb`."""
    return f"{base_url.rstrip('/')}/studies/{_checked(study)}"


def series_url(base_url: str, study: str, series: str) -> str:
    return f"{study_url(base_url, study)}/series/{_checked(series)}"


def instance_url(base_url: str, study: str, series: str, sop_instance: str) -> str:
    return f"{series_url(base_url, study, series)}/instances/{_checked(sop_instance)}"


def _checked(uid: str) -> str:
    # UIDs reaching a URL builder were validated on the way in; anything else is a bug.
    if not is_uid(uid):
        raise ValueError(f"not a DICOM UID: {uid!r}")
    return uid
