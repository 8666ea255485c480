"""Errors of the CT repository, each with a stable code."""

from digital_contrast.errors import DigitalContrastError


class RepositoryError(DigitalContrastError):
    """DEID_BURNED_IN (BurnedInAnnotation is not NO), DEID_SECONDARY_CAPTURE (a screen capture
    may carry text in its pixels; no OCR here), DEID_NOT_IMAGE (no pixel data), DEID_SITE_INVALID
    (a site id the keys folder cannot name), DEID_SAFE_LIST_INVALID (a safe-list of private
    elements that cannot be read), COHORT_INVALID (a cohort name or purpose that cannot be
    saved), COHORT_UNKNOWN (no such cohort or version), COHORT_EMPTY (nothing to export),
    INDEX_UNAVAILABLE (the series index database cannot be used), EXPORT_INVALID (a manifest
    that could not name its folders, a pair without both instance sets), and of ingest runs:
    INGEST_RUN_UNKNOWN, INGEST_BROKER_UNREACHABLE (series left pending), INGEST_KEY_MISSING /
    INGEST_KEY_MISMATCH (a worker without the run's site key, or with another),
    INGEST_SOURCE_CHANGED (a source file gone or changed between the two passes)."""
