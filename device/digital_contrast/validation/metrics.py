"""Per-case metrics of a synthetic CT against its reference, and the catalogue protocols name.

Phantom cases have a label map: lumen and thrombus Dice (the synthetic CTA thresholded at
150 HU inside the aortic region without calcium; the reference thresholded the same way, so a
perfect synthesis scores 1.0), spurious lumen, maximum lumen diameter error, and change in
tissue contrast never enhances (fat, bone, air). Paired cases (a site's NCCT with its acquired
CECT) have none: their metrics read the enhancement itself (reference - NCCT above 100 HU) and
are computed for phantom cases too, so one protocol can be run on both.
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from digital_contrast.phantom.labels import Label
from digital_contrast.phantom.parameters import PhantomParameters

LUMEN_HU = 150.0
SPURIOUS_TOLERANCE_MM = 2.0  # one working-grid voxel: the partial-volume shell is not spurious
ENHANCED_HU = 100.0  # paired: contrast raised this voxel at least this much
BODY_HU = -500.0
PRIMARY = "primary"
UNCERTAIN_LUMEN_FRACTION = "uncertain_lumen_fraction"  # from the job's confidence step
_HU_RANGE = 4095.0


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    better: str  # "higher" or "lower"
    datasets: tuple[str, ...]  # the dataset kinds it can be measured on
    description: str


def _catalogue(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


_BOTH = ("phantom", "paired")
METRICS = _catalogue(
    Metric("lumen_dice", "", "higher", ("phantom",),
           "Dice of lumen (> 150 HU in the aortic region), synthetic vs reference"),
    Metric("thrombus_dice", "", "higher", ("phantom",),
           "Dice of the non-enhancing part of the aneurysm sac (cases with thrombus)"),
    Metric("lumen_mae_hu", "HU", "lower", ("phantom",), "mean |error| inside the true lumen"),
    Metric("diameter_error_mm", "mm", "lower", ("phantom",),
           "|maximum lumen diameter, synthetic - reference|"),
    Metric("spurious_lumen_ml", "mL", "lower", ("phantom",),
           "lumen synthesized where the reference has none"),
    Metric("spurious_lumen_beyond_2mm_ml", "mL", "lower", ("phantom",),
           "the same, more than 2 mm (one working-grid voxel) from the true lumen"),
    Metric("unchanged_median_abs_hu", "HU", "lower", ("phantom",),
           "median |synthetic - NCCT| in fat, bone and air (never enhanced)"),
    Metric("unchanged_p99_abs_hu", "HU", "lower", ("phantom",),
           "99th percentile of the same"),
    Metric("mae_body_hu", "HU", "lower", _BOTH, "mean |synthetic - reference| inside the body"),
    Metric("psnr_db", "dB", "higher", _BOTH, "PSNR inside the body (data range 4095 HU)"),
    Metric("ssim", "", "higher", _BOTH, "3-D SSIM over the volume (data range 4095 HU)"),
    Metric("enhancement_dice", "", "higher", _BOTH,
           "Dice of enhancement > 100 HU over the NCCT, synthetic vs reference"),
    Metric("enhanced_mae_hu", "HU", "lower", _BOTH,
           "mean |synthetic - reference| where the reference is enhanced"),
    Metric("spurious_enhancement_ml", "mL", "lower", _BOTH,
           "enhancement > 100 HU synthesized more than 2 mm from any reference enhancement"),
    Metric(UNCERTAIN_LUMEN_FRACTION, "", "lower", _BOTH,
           "fraction of the synthesized lumen whose test-time-augmentation uncertainty exceeds "
           "the bundle's calibrated threshold, as a job reports it (not measurable for an "
           "uncalibrated bundle, whose every result is labelled LOW CONFIDENCE)"),
)


def phantom_stratum(parameters: PhantomParameters) -> str:
    """The protocol's primary stratum is |thrombus - blood| >= 5 HU and noise <= 20 HU."""
    if parameters.scanner.noise_sd_hu > 20:
        return "noise > 20 HU"
    contrast = parameters.intensities.thrombus_minus_blood_hu
    if parameters.aorta.thrombus_shape != "none" and abs(contrast) < 5:
        return "|thrombus-blood| < 5 HU"
    return PRIMARY


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else float("nan")


def _max_diameter_mm(mask: np.ndarray, pixel_mm: float) -> float:
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1) * pixel_mm**2
    return float(2 * np.sqrt(areas.max() / np.pi)) if areas.max() else 0.0


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from monai.metrics import SSIMMetric

    def as_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((x + 1024.0)[None, None].astype(np.float32))

    return float(SSIMMetric(spatial_dims=3, data_range=_HU_RANGE)(as_tensor(a),
                                                                  as_tensor(b)).mean())


def _beyond(mask: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Voxels of `mask` farther than the tolerance from every voxel of `reference`."""
    distance = ndimage.distance_transform_edt(~reference, sampling=spacing)
    return mask & (distance > SPURIOUS_TOLERANCE_MM)


def paired_metrics(ncct: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                   spacing: tuple[float, float, float]) -> dict[str, float]:
    """Label-free metrics: arrays (k, j, i) in HU on one grid, `spacing` in mm."""
    body = (ncct > BODY_HU) | (reference > BODY_HU)
    error = synthetic - reference
    voxel_ml = float(np.prod(spacing)) / 1000.0
    true = ((reference - ncct) > ENHANCED_HU) & body
    pred = ((synthetic - ncct) > ENHANCED_HU) & body
    mse = float(np.mean(error[body] ** 2)) if body.any() else float("nan")
    return {
        "mae_body_hu": float(np.abs(error[body]).mean()) if body.any() else float("nan"),
        "psnr_db": 20 * np.log10(_HU_RANGE) - 10 * np.log10(max(mse, 1e-9)),
        "ssim": _ssim(synthetic, reference),
        "enhancement_dice": _dice(pred, true),
        "enhanced_mae_hu": float(np.abs(error[true]).mean()) if true.any() else float("nan"),
        "spurious_enhancement_ml": float(_beyond(pred, true, spacing).sum() * voxel_ml),
    }


def phantom_metrics(ncct: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                    labels: np.ndarray, spacing: tuple[float, float, float],
                    has_thrombus: bool) -> dict[str, float]:
    """Every metric of the catalogue plus per-label MAE and bias, for one phantom case."""
    out = paired_metrics(ncct, synthetic, reference, spacing)
    body = labels != Label.AIR
    error = synthetic - reference
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for label in Label:
        mask = (labels == label) & body
        if mask.sum() >= 20:
            out[f"mae_{label.name.lower()}"] = float(np.abs(error[mask]).mean())
            out[f"bias_{label.name.lower()}"] = float(error[mask].mean())
    # The reference CTA is read exactly like the synthetic one: thresholded in the same region,
    # so that enhanced branches and veins beside the aorta count on both sides.
    vessel = np.isin(labels, [Label.AORTA_LUMEN, Label.THROMBUS, Label.AORTIC_WALL])
    calcium = ndimage.binary_dilation(labels == Label.CALCIFICATION)
    region = ndimage.binary_dilation(vessel, iterations=3) & ~calcium
    true_lumen = (reference > LUMEN_HU) & region
    pred_lumen = (synthetic > LUMEN_HU) & region
    sac = np.isin(labels, [Label.AORTA_LUMEN, Label.THROMBUS]) & region
    out["lumen_dice"] = _dice(pred_lumen, true_lumen)
    out["thrombus_dice"] = (_dice(sac & ~pred_lumen, sac & ~true_lumen) if has_thrombus
                            else float("nan"))
    lumen = (labels == Label.AORTA_LUMEN) & region
    out["lumen_mae_hu"] = float(np.abs(error[lumen]).mean()) if lumen.any() else float("nan")
    out["spurious_lumen_ml"] = float((pred_lumen & ~true_lumen).sum() * voxel_ml)
    out["spurious_lumen_beyond_2mm_ml"] = float(
        _beyond(pred_lumen, true_lumen, spacing).sum() * voxel_ml)
    out["diameter_error_mm"] = abs(_max_diameter_mm(pred_lumen, spacing[1])
                                   - _max_diameter_mm(true_lumen, spacing[1]))
    unchanged = np.isin(labels, [Label.FAT_SUBCUTANEOUS, Label.FAT_VISCERAL,
                                 Label.BONE_CORTICAL, Label.BONE_CANCELLOUS, Label.AIR,
                                 Label.BOWEL_AIR])
    change = np.abs(synthetic - ncct)[unchanged]
    out["unchanged_median_abs_hu"] = float(np.median(change))
    out["unchanged_p99_abs_hu"] = float(np.percentile(change, 99))
    return out
