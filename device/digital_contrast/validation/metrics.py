"""Per-case metrics of a synthetic CT against its reference, and the catalogue protocols name.

Phantom cases have a label map. Lumen geometry is read by a half-maximum threshold on each
image's own enhancement: a voxel of the aortic region (without calcium) is lumen when its
enhancement over the NCCT exceeds half the image's median enhancement in the lumen core (the
true lumen more than 2 mm inside its wall). The reference and the synthetic image are read the
same way, so the bolus, invisible in the NCCT, changes neither mask: a perfect geometry scores
lumen Dice 1.0 whatever the bolus. Lumen intensity is judged by a gain-corrected error (one
gain per case fitted in the lumen core, so that geometry and texture are judged apart from the
bolus guess) and by the bias as a fraction of the true enhancement. Thrombus is the sac that is
not lumen; its Dice is measured where the true thrombus is at least 5 mm thick, and its
maximum thickness is compared on every thrombus case. Unchanged tissue is body tissue more than
2 mm from any voxel the reference enhances. Paired cases (a site's NCCT with its acquired CECT)
have no labels: their metrics read the enhancement itself (reference - NCCT above 100 HU) and
are computed for phantom cases too, so one protocol can be run on both.

Phantom metrics and strata belong to a phantom use case: the base phantom (aaa-cta: aorta,
lumen, thrombus) or an extension (abdomen-pv: organs, portal and hepatic veins, liver lesions,
`organ_metrics`). Each catalogue entry says on which it is measured, so a protocol naming a
metric its cases do not have is refused before anything runs; `PHANTOM_STRATA` holds the strata
of each and `phantom_stratum` picks a case's from its parameters.
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from digital_contrast.model.validation_record import PRIMARY
from digital_contrast.phantom.extensions import BASE_USE_CASE
from digital_contrast.phantom.labels import Label
from digital_contrast.phantom.parameters import PhantomParameters
from digital_contrast.validation.organ_metrics import organ_metrics

SPURIOUS_TOLERANCE_MM = 2.0  # one working-grid voxel: the partial-volume shell is not spurious
LUMEN_CORE_MM = 2.0  # the lumen core lies this far inside the true lumen's boundary
HALF_MAXIMUM = 0.5
MIN_LUMEN_THRESHOLD_HU = 10.0  # an image with (almost) no lumen enhancement has no lumen
THICK_ILT_MM = 5.0  # thrombus Dice only where the true thrombus is at least this thick
ENHANCING_HU = 1.0  # reference tissue raised at least this much is enhancing tissue
ENHANCED_HU = 100.0  # paired: contrast raised this voxel at least this much
BODY_HU = -500.0
HIGH_NOISE_HU = 20.0
ISO_ATTENUATING_HU = 5.0
UNCERTAIN_LUMEN_FRACTION = "uncertain_lumen_fraction"  # from the job's confidence step
LOW_CONFIDENCE = "low_confidence"  # 1 when the job's confidence step labels the case
_HU_RANGE = 4095.0

# Phantom strata: the primary one is what the acceptance criteria are mainly about.
STRATA = {
    PRIMARY: "thrombus with |thrombus - blood| > 5 HU, noise <= 20 HU",
    "no-ilt": "no thrombus in the sac, noise <= 20 HU",
    "iso-ilt": "uniform sac: thrombus with |thrombus - blood| <= 5 HU, noise <= 20 HU",
    "high-noise": "noise > 20 HU, no iso-attenuating thrombus",
    "iso-ilt-high-noise": "uniform sac at noise > 20 HU (the hardest)",
}
ABDOMEN_PV = "abdomen-pv"
SHIFT = "shift"  # cases of a dataset's shift set (drawn beyond the training ranges)
# abdomen-pv strata, one per case in this order of precedence: noise first (it hides small
# differences everywhere), then lesions (the lesion criterion needs them), then the liver state.
PV_STRATA = {
    PRIMARY: "normal liver, no liver lesion, noise <= 20 HU",
    "fatty": "fatty liver (not cirrhotic), no liver lesion, noise <= 20 HU",
    "cirrhotic": "cirrhotic liver (fatty or not: shrunken, nodular, wide portal vein, reduced "
                 "enhancement), no liver lesion, noise <= 20 HU",
    "lesions": "one or more liver lesions (cysts, hypovascular metastases), any liver, "
               "noise <= 20 HU",
    "high-noise": "noise > 20 HU, any liver, lesions or none",
}
PHANTOM_STRATA: dict[str, dict[str, str]] = {BASE_USE_CASE: STRATA, ABDOMEN_PV: PV_STRATA}
SHIFT_STRATUM = ("a shift-set case: tube voltage, noise and the liver variants drawn beyond the "
                 "training distribution (the protocol states how)")

@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    better: str  # "higher" or "lower"
    datasets: tuple[str, ...]  # the dataset kinds it can be measured on
    description: str
    of_images: bool = True  # False: a judgement of the model's own (confidence), no oracle has
    # Phantom use cases whose cases have what it measures (paired metrics: every one).
    phantoms: tuple[str, ...] = (BASE_USE_CASE, ABDOMEN_PV)


def _catalogue(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


_BOTH = ("phantom", "paired")
_AORTA = (BASE_USE_CASE,)
_PV = (ABDOMEN_PV,)
LESIONS_LOST = "lesions_lost"
LESIONS_LOST_UNFLAGGED = "lesions_lost_unflagged"
METRICS = _catalogue(
    Metric("lumen_dice", "", "higher", ("phantom",),
           "Dice of the half-maximum lumen (aortic region), synthetic vs reference",
           phantoms=_AORTA),
    Metric("thrombus_dice", "", "higher", ("phantom",),
           "Dice of the sac that is not lumen, on cases whose thrombus is >= 5 mm thick",
           phantoms=_AORTA),
    Metric("ilt_max_thickness_mm", "mm", "lower", ("phantom",),
           "maximum thickness of the true thrombus (reference, half-maximum lumen)",
           phantoms=_AORTA),
    Metric("ilt_thickness_error_mm", "mm", "lower", ("phantom",),
           "|maximum thrombus thickness, synthetic - reference| (thrombus cases)",
           phantoms=_AORTA),
    Metric("lumen_mae_hu", "HU", "lower", ("phantom",), "mean |error| inside the true lumen",
           phantoms=_AORTA),
    Metric("lumen_gain_mae_hu", "HU", "lower", ("phantom",),
           "mean |error| inside the true lumen after one gain per case, fitted in the lumen "
           "core, scales the synthetic enhancement",
           phantoms=_AORTA),
    Metric("lumen_abs_bias_fraction", "", "lower", ("phantom",),
           "|mean enhancement error| in the lumen core / mean true enhancement there",
           phantoms=_AORTA),
    Metric("diameter_error_mm", "mm", "lower", ("phantom",),
           "|maximum lumen diameter, synthetic - reference| (half-maximum lumen)",
           phantoms=_AORTA),
    Metric("spurious_lumen_ml", "mL", "lower", ("phantom",),
           "half-maximum lumen synthesized where the reference has none",
           phantoms=_AORTA),
    Metric("spurious_lumen_beyond_2mm_ml", "mL", "lower", ("phantom",),
           "the same, more than 2 mm (one working-grid voxel) from the true lumen",
           phantoms=_AORTA),
    Metric("unchanged_beyond_2mm_median_abs_hu", "HU", "lower", ("phantom",),
           "median |synthetic - NCCT| in body tissue more than 2 mm from enhancing tissue"),
    Metric("unchanged_beyond_2mm_p99_abs_hu", "HU", "lower", ("phantom",),
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
           "uncalibrated bundle, whose every result is labelled LOW CONFIDENCE)",
           of_images=False),
    Metric(LOW_CONFIDENCE, "", "lower", _BOTH,
           "1 when the result is labelled LOW CONFIDENCE exactly as a job labels it, else 0 "
           "(its mean over a stratum is the fraction of cases so labelled)", of_images=False),
    Metric("liver_enhancement_error_hu", "HU", "lower", ("phantom",),
           "|mean synthetic - mean true enhancement| in the liver more than 3 mm inside its "
           "outline (vessels and lesions are not liver)", phantoms=_PV),
    Metric("spleen_enhancement_error_hu", "HU", "lower", ("phantom",),
           "the same in the spleen", phantoms=_PV),
    Metric("kidney_cortex_enhancement_error_hu", "HU", "lower", ("phantom",),
           "the same in the renal cortex more than 3 mm inside the kidney's outline",
           phantoms=_PV),
    Metric("liver_dice", "", "higher", ("phantom",),
           "Dice of the half-maximum liver (each image's own median enhancement in its "
           "interior), synthetic vs reference, in the liver and a 3 mm ring", phantoms=_PV),
    Metric("spleen_dice", "", "higher", ("phantom",), "the same for the spleen", phantoms=_PV),
    Metric("kidney_dice", "", "higher", ("phantom",),
           "the same for the kidneys (cortex and medulla)", phantoms=_PV),
    Metric("enhancing_organ_dice", "", "higher", ("phantom",),
           "the lowest of liver, spleen and kidney Dice of the case", phantoms=_PV),
    Metric("portal_vein_gain_error_fraction", "", "lower", ("phantom",),
           "mean |g x synthetic - true enhancement| over the portal vein / its mean true "
           "enhancement, g one least-squares gain per case fitted in the vein's core (> 2 mm "
           "inside its wall): per-case contrast values are invisible in the NCCT",
           phantoms=_PV),
    Metric("portal_vein_breaks", "", "lower", ("phantom",),
           "breaks of the synthetic portal system (portal, splenic and superior mesenteric "
           "veins): runs >= 4 mm of the true centreline band below half the true vein "
           "enhancement there that cut the vein into more pieces than the reference shows",
           phantoms=_PV),
    Metric("hepatic_vein_breaks", "", "lower", ("phantom",),
           "the same for the hepatic veins", phantoms=_PV),
    Metric(LESIONS_LOST, "", "lower", ("phantom",),
           "liver lesions whose |contrast to a 2-6 mm liver ring| is lower in the synthetic "
           "image than in the NCCT by more than 2 HU (cases with lesions)", phantoms=_PV),
    Metric(LESIONS_LOST_UNFLAGGED, "", "lower", ("phantom",),
           "lesions lost in a result not labelled LOW CONFIDENCE (the oracle never labels: "
           "its value is its lesions_lost)", phantoms=_PV),
    Metric("lesion_contrast_change_hu", "HU", "higher", ("phantom",),
           "lowest over the case's lesions of |synthetic contrast| - |NCCT contrast|",
           phantoms=_PV),
)


def phantom_use_case(parameters: PhantomParameters) -> str:
    """The phantom use case of a case: its extension's, or the base phantom's."""
    return BASE_USE_CASE if parameters.extension is None else parameters.extension.USE_CASE


def phantom_stratum(parameters: PhantomParameters) -> str:
    """The case's stratum (PHANTOM_STRATA of its phantom use case) from its parameters."""
    if parameters.extension is not None:
        return _pv_stratum(parameters)
    has_ilt = parameters.aorta.thrombus_shape != "none"
    iso = has_ilt and abs(parameters.intensities.thrombus_minus_blood_hu) <= ISO_ATTENUATING_HU
    noisy = parameters.scanner.noise_sd_hu > HIGH_NOISE_HU
    if iso:
        return "iso-ilt-high-noise" if noisy else "iso-ilt"
    if noisy:
        return "high-noise"
    return PRIMARY if has_ilt else "no-ilt"


def _pv_stratum(parameters: PhantomParameters) -> str:
    extension = parameters.extension
    if getattr(extension, "USE_CASE", None) != ABDOMEN_PV:
        raise ValueError(f"no validation strata for phantom extension "
                         f"{getattr(extension, 'USE_CASE', extension)!r}")
    if parameters.scanner.noise_sd_hu > HIGH_NOISE_HU:
        return "high-noise"
    if extension.lesion_count:  # type: ignore[union-attr]
        return "lesions"
    if extension.cirrhotic:  # type: ignore[union-attr]
        return "cirrhotic"
    return "fatty" if extension.fatty else PRIMARY  # type: ignore[union-attr]


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
    """Voxels of `mask` farther than the tolerance (2 mm) from every voxel of `reference`."""
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


def _half_maximum_lumen(image: np.ndarray, ncct: np.ndarray, region: np.ndarray,
                        core: np.ndarray) -> np.ndarray:
    enhancement = image - ncct
    level = float(np.median(enhancement[core])) if core.any() else 0.0
    return region & (enhancement > max(HALF_MAXIMUM * level, MIN_LUMEN_THRESHOLD_HU))


def _max_thickness_mm(mask: np.ndarray, pixel_mm: float) -> float:
    """Largest in-plane inscribed diameter of `mask` over its axial slices."""
    best = 0.0
    for index in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        distance = ndimage.distance_transform_edt(mask[index], sampling=pixel_mm)
        best = max(best, 2.0 * float(distance.max()))
    return best


def _gain_corrected_mae(predicted: np.ndarray, true: np.ndarray, core: np.ndarray,
                        lumen: np.ndarray) -> float:
    """Mean |g * predicted - true| enhancement in the lumen, g least-squares in the core."""
    power = float(np.sum(predicted[core].astype(np.float64) ** 2))
    if not lumen.any() or power == 0.0:
        return float("nan")
    gain = float(np.sum(predicted[core].astype(np.float64) * true[core])) / power
    return float(np.abs(gain * predicted[lumen] - true[lumen]).mean())


def phantom_metrics(ncct: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                    labels: np.ndarray, spacing: tuple[float, float, float],
                    has_thrombus: bool) -> dict[str, float]:
    """Every metric of the catalogue plus per-label MAE and bias, for one phantom case."""
    out = paired_metrics(ncct, synthetic, reference, spacing)
    body = labels != Label.AIR
    error = synthetic - reference
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out.update(per_label_errors(error, labels, body))
    # Enhanced branches and veins beside the aorta count on both sides alike.
    vessel = np.isin(labels, [Label.AORTA_LUMEN, Label.THROMBUS, Label.AORTIC_WALL])
    calcium = ndimage.binary_dilation(labels == Label.CALCIFICATION)
    region = ndimage.binary_dilation(vessel, iterations=3) & ~calcium
    lumen = (labels == Label.AORTA_LUMEN) & region
    core = lumen & (ndimage.distance_transform_edt(lumen, sampling=spacing) > LUMEN_CORE_MM)
    true_lumen = _half_maximum_lumen(reference, ncct, region, core)
    pred_lumen = _half_maximum_lumen(synthetic, ncct, region, core)
    out["lumen_dice"] = _dice(pred_lumen, true_lumen)
    out["spurious_lumen_ml"] = float((pred_lumen & ~true_lumen).sum() * voxel_ml)
    out["spurious_lumen_beyond_2mm_ml"] = float(
        _beyond(pred_lumen, true_lumen, spacing).sum() * voxel_ml)
    out["diameter_error_mm"] = abs(_max_diameter_mm(pred_lumen, spacing[1])
                                   - _max_diameter_mm(true_lumen, spacing[1]))
    if has_thrombus:
        sac = np.isin(labels, [Label.AORTA_LUMEN, Label.THROMBUS]) & region
        true_ilt, pred_ilt = sac & ~true_lumen, sac & ~pred_lumen
        thickness = _max_thickness_mm(true_ilt, spacing[1])
        out["ilt_max_thickness_mm"] = thickness
        out["ilt_thickness_error_mm"] = abs(_max_thickness_mm(pred_ilt, spacing[1]) - thickness)
        if thickness >= THICK_ILT_MM:
            out["thrombus_dice"] = _dice(pred_ilt, true_ilt)
    true_enh, pred_enh = reference - ncct, synthetic - ncct
    out["lumen_mae_hu"] = float(np.abs(error[lumen]).mean()) if lumen.any() else float("nan")
    out["lumen_gain_mae_hu"] = _gain_corrected_mae(pred_enh, true_enh, core, lumen)
    if core.any():
        out["lumen_abs_bias_fraction"] = abs(float((pred_enh[core] - true_enh[core]).mean())
                                             / max(float(true_enh[core].mean()), 1.0))
    out.update(unchanged_tissue(pred_enh, true_enh, body, spacing))
    return out


def per_label_errors(error: np.ndarray, labels: np.ndarray, body: np.ndarray
                     ) -> dict[str, float]:
    """MAE and bias (HU) of every label with at least 20 voxels in the body."""
    out = {}
    for label in Label:
        mask = (labels == label) & body
        if mask.sum() >= 20:
            out[f"mae_{label.name.lower()}"] = float(np.abs(error[mask]).mean())
            out[f"bias_{label.name.lower()}"] = float(error[mask].mean())
    return out


def unchanged_tissue(predicted: np.ndarray, true: np.ndarray, body: np.ndarray,
                     spacing: tuple[float, float, float]) -> dict[str, float]:
    """|synthetic - NCCT| in body tissue more than 2 mm from any voxel the reference enhances
    by ENHANCING_HU or more: median and 99th percentile."""
    unchanged = _beyond(body, true >= ENHANCING_HU, spacing)
    if not unchanged.any():
        return {}
    change = np.abs(predicted[unchanged])
    return {"unchanged_beyond_2mm_median_abs_hu": float(np.median(change)),
            "unchanged_beyond_2mm_p99_abs_hu": float(np.percentile(change, 99))}


def abdomen_pv_metrics(ncct: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                       labels: np.ndarray, spacing: tuple[float, float, float], *,
                       label_free: bool = True) -> dict[str, float]:
    """Every metric of an abdomen-pv phantom case: label-free, organ, vein and lesion metrics
    (`organ_metrics`), unchanged tissue, and per-label MAE and bias. `label_free=False` leaves
    out the label-free ones (SSIM alone takes seconds) where a study does not need them."""
    out = paired_metrics(ncct, synthetic, reference, spacing) if label_free else {}
    body = labels != Label.AIR
    out.update(per_label_errors(synthetic - reference, labels, body))
    out.update(organ_metrics(ncct, synthetic, reference, labels, spacing))
    out.update(unchanged_tissue(synthetic - ncct, reference - ncct, body, spacing))
    return out


def with_confidence(metrics: dict[str, float], low_confidence: bool) -> dict[str, float]:
    """The metrics that depend on the result's LOW CONFIDENCE label: a lost lesion counts
    against the model only where the result does not warn the reader (the oracle, which never
    labels, is passed low_confidence=False)."""
    out = dict(metrics)
    if LESIONS_LOST in out:
        out[LESIONS_LOST_UNFLAGGED] = 0.0 if low_confidence else out[LESIONS_LOST]
    return out
