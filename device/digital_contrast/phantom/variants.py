"""Phantom variants that leave the intended-use envelope (or test its edges): built from a case
by editing its images with the label map, so the anatomy underneath stays the same."""

from dataclasses import replace

import numpy as np
from scipy import ndimage

from digital_contrast.phantom.case import PhantomCase
from digital_contrast.phantom.intensities import HU_MAX
from digital_contrast.phantom.labels import Label

_PHASES = ("ncct", "arterial", "portal_venous")


def _edited(case: PhantomCase, edit: np.ndarray, value: float | None = None,
            delta: float = 0.0) -> PhantomCase:
    images = {}
    for phase in _PHASES:
        image = case.phase(phase).copy()
        image[edit] = value if value is not None else image[edit] + delta
        images[phase] = np.clip(image, -1024, HU_MAX)
    return replace(case, **images)


def with_stent_graft(case: PhantomCase, ring_every_mm: float = 6.0) -> PhantomCase:
    """Nitinol/steel stent rings along the aortic lumen wall: saturated voxels, as scanned."""
    lumen = case.labels == Label.AORTA_LUMEN
    rings = np.zeros_like(lumen)
    step = max(1, round(ring_every_mm / case.spacing[0]))
    for k in range(0, lumen.shape[0], step):
        if lumen[k].any():
            rings[k] = lumen[k] & ~ndimage.binary_erosion(lumen[k])
    return _edited(case, rings, value=HU_MAX)


def with_oral_contrast(case: PhantomCase, bowel_fluid_hu: float = 300.0) -> PhantomCase:
    """Positive oral contrast: bowel fluid made bright, noise kept."""
    fluid = case.labels == Label.BOWEL_FLUID
    return _edited(case, fluid, delta=bowel_fluid_hu - case.parameters.intensities.bowel_fluid_hu)
