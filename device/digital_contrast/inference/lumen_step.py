"""The cascade's second stage at inference: crop around the aorta, segment lumen and thrombus,
render the lumen's enhancement, and compose it with the first stage's.

1. The aorta is stage 1's lumen-bright component that runs along the most slices.
2. The crop (`CropGrid`, patient-aligned) spans that component's slices and is centred on its
   course; the NCCT is resampled there from the scan's own grid. The blood reference is the
   median NCCT HU of the component's core over its top 20 mm, read on the crop, from the part
   stage 1 enhances strongly (at least 60 % of its 95th percentile): a bowel loop or kidney
   that stage 1 joins to the aorta is enhanced less than the aorta itself.
3. Stage 2 gives background / lumen / thrombus probabilities. Lumen is kept only where it is
   connected to the aorta's main lumen (the component along the most slices): the network
   cannot add an isolated bright island.
4. Enhancement on the crop: (lumen HU at the series' kVp - blood reference) x P(lumen) +
   thrombus enhancement x P(thrombus). Stage 2's enhancement replaces stage 1's, with a soft
   seam, where stage 2 sees lumen or thrombus (and a 3 mm rim around them) and wherever stage 1
   drew its aorta within 10 mm of that: stage 1 cannot tell thrombus from lumen, so none of its
   lumen next to the aorta survives unless stage 2 confirms it. Stage 1 renders the rest.

Refusals are typed: no aorta in stage 1's output (AORTA_NOT_FOUND) or too little lumen at its
top to read blood from (BLOOD_REFERENCE_UNAVAILABLE); no result is made without stage 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from digital_contrast.errors import DigitalContrastError
from digital_contrast.inference.aorta import aortic_component, lumen_bright
from digital_contrast.model.blood_reference import (
    BloodReference,
    BloodReferenceError,
    blood_reference,
)
from digital_contrast.model.crop_grid import (
    CropGrid,
    centre_xy,
    from_crop,
    native_box,
    to_crop,
    world_z_range,
)
from digital_contrast.model.lumen_stage import (
    LUMEN,
    THROMBUS,
    LumenStageConfig,
    lumen_input,
)

RIM_VOXELS = 2  # crop voxels (3 mm at 1.5 mm) around lumen and thrombus that stage 2 decides
OVERRULED_MM = 10.0  # stage 1's aorta this close to stage 2's lumen and thrombus is overruled
SEAM_SIGMA_VOXELS = 1.0  # softness of the seam between the stages
STRONG_FRACTION = 0.75  # of stage 1's 95th-percentile aortic enhancement: where blood is read


class AortaNotFoundError(DigitalContrastError):
    """AORTA_NOT_FOUND: the first stage shows no aortic lumen to crop around."""


@dataclass(frozen=True, eq=False)
class LumenPrediction:
    """Stage 2's view of one series: its crop, probabilities and what rendering used."""

    grid: CropGrid
    image: np.ndarray  # (z, y, x) NCCT HU on the crop
    probabilities: np.ndarray  # (3, z, y, x) after the connectivity rule
    blood: BloodReference
    lumen_enhancement_hu: float  # lumen HU at the series' kVp minus the blood reference
    thrombus_enhancement_hu: float
    first_stage_aorta: np.ndarray  # bool, stage 1's aorta on the crop
    lumen_threshold: float = 0.5

    def enhancement(self, probabilities: np.ndarray | None = None) -> np.ndarray:
        """Rendered enhancement (HU) on the crop, of these or other (TTA) probabilities."""
        p = self.probabilities if probabilities is None else probabilities
        return (self.lumen_enhancement_hu * p[LUMEN]
                + self.thrombus_enhancement_hu * p[THROMBUS]).astype(np.float32)

    @property
    def lumen(self) -> np.ndarray:
        """The lumen stage 2 synthesizes (bool, crop grid)."""
        return self.probabilities[LUMEN] > self.lumen_threshold

    def region(self) -> np.ndarray:
        """Weight in [0, 1] on the crop where stage 2's enhancement replaces stage 1's."""
        aorta = (self.probabilities[LUMEN] + self.probabilities[THROMBUS]) > 0.5
        decided = ndimage.binary_dilation(aorta, iterations=RIM_VOXELS)
        if aorta.any():
            near = ndimage.distance_transform_edt(~aorta, sampling=self.grid.spacing_mm)
            decided |= self.first_stage_aorta & (near <= OVERRULED_MM)
        return ndimage.gaussian_filter(decided.astype(np.float32), SEAM_SIGMA_VOXELS)


def locate_aorta(image: np.ndarray, enhancement: np.ndarray) -> np.ndarray:
    """Stage 1's aorta on its grid (AORTA_NOT_FOUND when there is none)."""
    aorta = aortic_component(lumen_bright(image, enhancement))
    if not aorta.any():
        raise AortaNotFoundError("AORTA_NOT_FOUND", "the first stage shows no aortic lumen: "
                                 "the series may not cover the abdominal aorta")
    return aorta


def strongly_enhanced(aorta: np.ndarray, enhancement: np.ndarray) -> np.ndarray:
    """The part of stage 1's aorta it enhances by at least STRONG_FRACTION of its 95th
    percentile enhancement there."""
    return aorta & (enhancement >= STRONG_FRACTION * np.percentile(enhancement[aorta], 95))


def crop_grid(aorta: np.ndarray, affine: np.ndarray, config: LumenStageConfig) -> CropGrid:
    centre, z_range = centre_xy(aorta, affine), world_z_range(aorta, affine)
    assert centre is not None and z_range is not None  # locate_aorta found voxels
    return CropGrid.around(centre, (z_range[0] - config.z_margin_mm,
                                    z_range[1] + config.z_margin_mm),
                           config.spacing_mm, config.crop_yx, z_multiple=config.divisor[0])


def lumen_probabilities(network: torch.nn.Module, image: np.ndarray | torch.Tensor,
                        blood_hu: float, config: LumenStageConfig) -> np.ndarray:
    """(3, z, y, x) softmax of stage 2 on a crop image, computed on the network's device.
    Callers hold `deterministic` and inference mode."""
    hu = torch.as_tensor(image, dtype=torch.float32)[None, None]
    inputs = lumen_input(hu, torch.tensor([blood_hu]), config)
    logits = network(inputs.to(next(network.parameters()).device))
    # The network computes channels-last: back to one contiguous array on the CPU.
    return torch.softmax(logits, dim=1)[0].cpu().contiguous().numpy()


def keep_connected(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Lumen probability kept only in (one voxel around) the lumen component along the most
    slices; what is removed becomes background."""
    out = probabilities.copy()
    main = aortic_component(probabilities[LUMEN] > threshold)
    keep = ndimage.binary_dilation(main, iterations=1)
    removed = np.where(keep, 0.0, out[LUMEN])
    out[LUMEN] -= removed
    out[0] += removed
    return out


def predict_lumen(network: torch.nn.Module, config: LumenStageConfig, ncct: np.ndarray,
                  affine: np.ndarray, working_image: np.ndarray, working_enhancement: np.ndarray,
                  working_affine: np.ndarray, kvp: float) -> LumenPrediction:
    """Stage 2 for a series (`ncct` on `affine`) given stage 1's working-grid output.
    Callers hold `deterministic` and inference mode."""
    aorta = locate_aorta(working_image, working_enhancement)
    grid = crop_grid(aorta, working_affine, config)
    image = to_crop(ncct, affine, grid)
    # Read on the crop: the scan's own resolution, less smoothed than the working grid.
    on_crop, strong = (to_crop(mask.astype(np.float32), working_affine, grid, mode="nearest",
                               padding_value=0.0) > 0.5
                       for mask in (aorta, strongly_enhanced(aorta, working_enhancement)))
    try:
        blood = blood_reference(image, strong, grid.affine)
    except BloodReferenceError:  # too little strong lumen at the top: all of stage 1's aorta
        blood = blood_reference(image, on_crop, grid.affine)
    probabilities = keep_connected(lumen_probabilities(network, image, blood.hu, config),
                                   config.lumen_threshold)
    contrast = config.contrast
    return LumenPrediction(grid=grid, image=image, probabilities=probabilities, blood=blood,
                           lumen_enhancement_hu=max(0.0, contrast.lumen_hu_at(kvp) - blood.hu),
                           thrombus_enhancement_hu=contrast.thrombus_enhancement_hu,
                           first_stage_aorta=on_crop, lumen_threshold=config.lumen_threshold)


def compose(stage1: np.ndarray, lumen: LumenPrediction, affine: np.ndarray) -> np.ndarray:
    """Stage 1's native-grid enhancement (float32, changed in place and returned) with stage
    2's where stage 2 decides."""
    box = native_box(lumen.grid, affine, stage1.shape)
    if box is not None:
        weight = from_crop(lumen.region(), lumen.grid, affine, box)
        rendered = from_crop(lumen.enhancement(), lumen.grid, affine, box)
        stage1[box] += weight * (rendered - stage1[box])
    return stage1
