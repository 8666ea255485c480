"""DICOMweb messages (PS3.18) as pure functions: STOW-RS bodies and responses, WADO-RS bodies,
QIDO-RS queries and results. The FastAPI routes are thin wrappers over this package."""

from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode
from digital_contrast.api.dicomweb.multipart import (
    MultipartRelatedParser,
    Part,
    build_multipart_related,
    iter_multipart_related,
    parse_multipart_related,
)
from digital_contrast.api.dicomweb.qido import (
    QidoQuery,
    parse_qido_query,
    series_result,
    study_result,
)
from digital_contrast.api.dicomweb.store_response import (
    DICOM_JSON,
    StoredInstance,
    store_instances_response,
    stow_status,
)
from digital_contrast.api.dicomweb.stow import StowRequest

__all__ = [
    "DICOM_JSON", "DicomWebError", "DicomWebErrorCode", "MultipartRelatedParser", "Part",
    "QidoQuery", "StoredInstance", "StowRequest", "build_multipart_related",
    "iter_multipart_related", "parse_multipart_related", "parse_qido_query", "series_result",
    "store_instances_response", "stow_status", "study_result",
]
