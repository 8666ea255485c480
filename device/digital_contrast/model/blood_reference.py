"""The blood reference of an NCCT: the median HU of the aortic lumen at the top of the scan.

Unenhanced blood varies between patients (about 25-55 HU, lower in anaemia) by more than
thrombus differs from blood (-10 to +15 HU), so the lumen/thrombus cue inside an aneurysm sac is
relative. Subtracting the blood reference makes it absolute (the blood-referenced input of the
cascade's second stage, issue 16). The reference is read where the aorta is not aneurysmal and
holds no thrombus: its most cranial `NECK_MM` in the scan (suprarenal), in the lumen core (more
than `CORE_MM` inside the lumen mask, away from the partial-volume wall). On each slice only one
connected part of that core counts, the one nearest the mask's course (the median of its slice
centroids): a first-stage mask may also hold renal arteries, kidney cortex or a bowel loop,
which lie beside the aorta's course, not on it. The lumen mask comes from the phantom's labels
when training and from the first stage when running.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digital_contrast.errors import DigitalContrastError
from digital_contrast.model.crop_grid import centre_xy

NECK_MM = 20.0
CORE_MM = 2.0
MIN_VOXELS = 200  # fewer: the lumen at the top of the scan is too small to read a median from


class BloodReferenceError(DigitalContrastError):
    """BLOOD_REFERENCE_UNAVAILABLE: too little lumen core at the top of the scan."""


@dataclass(frozen=True)
class BloodReference:
    hu: float  # median NCCT HU of the lumen core
    voxels: int  # how many voxels it was read from
    spread_hu: float  # their interquartile range: noise plus any mislabelled wall or thrombus


def blood_reference(ncct: np.ndarray, lumen: np.ndarray, affine: np.ndarray) -> BloodReference:
    """`ncct` (k, j, i) HU and its boolean `lumen` mask on the grid `affine` (LPS mm)."""
    if ncct.shape != lumen.shape:
        raise ValueError(f"mask {lumen.shape} is not on the image's grid {ncct.shape}")
    spacing = tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))
    slices = np.flatnonzero(lumen.reshape(lumen.shape[0], -1).any(axis=1))
    if slices.size == 0:
        raise BloodReferenceError("BLOOD_REFERENCE_UNAVAILABLE", "no aortic lumen was found")
    # Superior is +z in LPS: the neck is the lumen's highest NECK_MM.
    z = np.asarray(affine)[2, 0] * slices + np.asarray(affine)[2, 3]
    neck = slices[z >= z.max() - NECK_MM]
    course = _course_ij(lumen, affine)
    core = np.zeros_like(lumen, dtype=bool)
    for k in neck:  # in-plane erosion: thin slices must not erode the neck away along z
        inside = ndimage.distance_transform_edt(lumen[k], sampling=spacing[1:])
        regions, count = ndimage.label(inside > CORE_MM)
        if count:
            j, i = np.nonzero(regions)
            nearest = np.argmin(((j - course[0]) * spacing[1]) ** 2
                                + ((i - course[1]) * spacing[2]) ** 2)
            core[k] = regions == regions[j[nearest], i[nearest]]
    values = ncct[core]
    if values.size < MIN_VOXELS:
        raise BloodReferenceError("BLOOD_REFERENCE_UNAVAILABLE",
                                  f"only {values.size} voxels of lumen core in the top "
                                  f"{NECK_MM:g} mm of the aorta (at least {MIN_VOXELS} needed)")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return BloodReference(hu=round(float(median), 2), voxels=int(values.size),
                          spread_hu=round(float(q3 - q1), 2))


def _course_ij(lumen: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """The mask's course as in-plane indices (row, column) of an axial grid."""
    x, y = centre_xy(lumen, affine)  # type: ignore[misc]  # the mask has voxels here
    rows_cols = np.linalg.inv(np.asarray(affine)[:3, :3][:2, 1:]) @ (
        np.array([x, y]) - np.asarray(affine)[:2, 3])
    return float(rows_cols[0]), float(rows_cols[1])
