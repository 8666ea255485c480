"""Procedural abdominal CT phantom: realistic anatomy, three phases, labels, known truth.

The test, training and validation data of the product (SI-PHANTOM); no clinical item imports it.
Light on purpose: the command line imports these choices without loading the generator.
"""

from enum import StrEnum


class PhantomSize(StrEnum):
    SMALL = "small"  # clinical pixel spacing, reduced field and slice count: fast tests
    CLINICAL = "clinical"  # 512x512 matrix, whole cross-section


class OutputFormat(StrEnum):
    DICOM = "dicom"
    NIFTI = "nifti"
