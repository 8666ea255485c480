"""Intended-use conformity: fail-closed checks of an input against a use case's envelope.

The structural checks of a series (one series, spacing, tilt...) are the reader's; these decide
whether a readable CT is one the model is meant for. Every check reports, passed or not.
"""

from digital_contrast.imaging.conformity.header import HEADER_CHECKS
from digital_contrast.imaging.conformity.image import image_checks
from digital_contrast.imaging.conformity.verdict import (
    CheckResult,
    ConformityError,
    Outcome,
    Verdict,
)
from digital_contrast.imaging.volume import Volume
from digital_contrast.usecases.schema import UseCase

__all__ = ["CheckResult", "ConformityError", "Outcome", "Verdict", "check_conformity",
           "require_conformity"]


def check_conformity(volume: Volume, use_case: UseCase) -> Verdict:
    if volume.source is None:
        raise ValueError("conformity needs the source header: read the volume from DICOM")
    header = volume.source.header
    checks = [check(volume, header, use_case.envelope) for check in HEADER_CHECKS]
    orientation = next(c for c in checks if c.code == "CONF_ORIENTATION")
    if orientation.outcome is Outcome.PASSED:  # the image analysis assumes axial slices
        checks += image_checks(volume, use_case.envelope)
    return Verdict(use_case=use_case.id, checks=tuple(checks))


def require_conformity(volume: Volume, use_case: UseCase) -> Verdict:
    """The verdict, or `ConformityError` carrying it when any check failed."""
    verdict = check_conformity(volume, use_case)
    if not verdict.passed:
        raise ConformityError(verdict)
    return verdict
