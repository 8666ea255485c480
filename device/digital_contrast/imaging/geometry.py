"""Slice geometry: ordering along the slice normal, spacing checks, DICOM <-> affine."""

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode

# Scanners print positions to ~0.001 mm; 1 % + 0.01 mm tolerates rounding, not a wrong slice.
SPACING_RTOL = 0.01
SPACING_ATOL_MM = 0.01
# A slice-to-slice step off the normal by more than this is a tilted (sheared) stack.
MAX_SHEAR_MM = 0.05


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    row, col = np.asarray(orientation[:3], dtype=float), np.asarray(orientation[3:6], dtype=float)
    normal = np.cross(row, col)
    return normal / np.linalg.norm(normal)


def position_along(ds: Dataset, normal: np.ndarray) -> float:
    return float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float), normal))


def check_spacing(positions: np.ndarray, normal: np.ndarray) -> float:
    """Validate sorted slice positions (N x 3, LPS mm); return the uniform slice spacing."""
    steps = np.diff(positions, axis=0)
    along = steps @ normal
    duplicates = np.flatnonzero(along <= SPACING_ATOL_MM)
    if duplicates.size:
        where = positions[duplicates[0]] @ normal
        raise ImagingError(ImagingErrorCode.DUPLICATE_SLICES,
                           f"{duplicates.size + 1} slices share a position "
                           f"(first at {where:.2f} mm along the slice normal)")
    shear = np.linalg.norm(steps - np.outer(along, normal), axis=1)
    if shear.max() > MAX_SHEAR_MM:
        raise ImagingError(ImagingErrorCode.GANTRY_TILT,
                           f"slice positions drift {shear.max():.2f} mm sideways per slice: the "
                           "stack is tilted or sheared, which is not supported")
    expected = float(np.median(along))
    gaps = np.flatnonzero(along > 1.5 * expected)
    if gaps.size:
        k = gaps[0]
        a, b = positions[k] @ normal, positions[k + 1] @ normal
        raise ImagingError(ImagingErrorCode.MISSING_SLICES,
                           f"slice gap of {along[k]:.2f} mm between positions {a:.2f} and "
                           f"{b:.2f} mm, expected {expected:.2f} mm ({gaps.size} gap(s) in all)")
    uneven = np.flatnonzero(np.abs(along - expected) > SPACING_RTOL * expected + SPACING_ATOL_MM)
    if uneven.size:
        k = uneven[0]
        raise ImagingError(ImagingErrorCode.NONUNIFORM_SPACING,
                           f"slice spacing varies from {along.min():.3f} to {along.max():.3f} mm "
                           f"(first at slice {k + 1}); uniform spacing is required")
    return float(np.mean(along))


def affine_from_dicom(orientation: Sequence[float], pixel_spacing: Sequence[float],
                      first_position: np.ndarray, normal: np.ndarray,
                      slice_spacing: float) -> np.ndarray:
    """Affine mapping array index (k, j, i) = (slice, row, column) to LPS mm."""
    row_dir = np.asarray(orientation[:3], dtype=float)  # increasing column index i
    col_dir = np.asarray(orientation[3:6], dtype=float)  # increasing row index j
    affine = np.eye(4)
    affine[:3, 0] = normal * slice_spacing
    affine[:3, 1] = col_dir * float(pixel_spacing[0])
    affine[:3, 2] = row_dir * float(pixel_spacing[1])
    affine[:3, 3] = first_position
    return affine


def orientation_of(affine: np.ndarray) -> list[float]:
    """ImageOrientationPatient (row direction, then column direction) of an affine."""
    row_dir = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
    col_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    return [*map(float, row_dir), *map(float, col_dir)]
