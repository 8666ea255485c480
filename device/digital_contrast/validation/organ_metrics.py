"""Organ, vein and lesion metrics of a phantom case, generic over the labels a use case names.

A use case whose target phase enhances organs and veins (abdomen-pv: liver, spleen, kidneys,
portal and hepatic veins) selects these by name in its protocol; a third use case adds rows to
the tables at the end of this module rather than new code. Every metric reads the native grid
of the case with its label map, and the enhancement of an image is that image minus the NCCT as
read (so scanner noise, common to both, cancels):

- organ enhancement error: |mean synthetic - mean true enhancement| over the organ's interior,
  more than `ORGAN_INTERIOR_MM` inside its outline, so that partial volume at the edge (the
  scanner's blur and the model's working grid, judged by the Dice) is not counted as an error of
  the organ's value;
- enhancing-organ Dice: each organ read by a half-maximum threshold on each image's own
  enhancement (half its median in the organ's interior), in the organ and a 3 mm ring, as the
  aortic lumen is read for aaa-cta: the level a model guesses changes neither mask;
- gain-corrected vein error: one least-squares gain per case fitted in the vein's core, then
  mean |g x synthetic - true| enhancement over the vein / its mean true enhancement. Each case's
  contrast values (the injection, the cardiac output) are invisible in the NCCT: the gain takes
  out what no model can know and leaves shape and texture;
- vein breaks: a run of the vein's centreline band where the synthetic enhancement stays below
  half the true enhancement, at least `MIN_BREAK_MM` long, that cuts the vein into more pieces
  than the reference shows (a break reads as thrombosis);
- lesion contrast: each liver lesion's mean minus that of a ring of liver around it, in the NCCT
  and in the synthetic image; a lesion is lost when its synthetic contrast is smaller in
  magnitude than its NCCT contrast by more than `LESION_TOLERANCE_HU`.

The centreline band stands in for a skeleton (scikit-image is not a dependency of the product):
the vein's voxels at least half the local radius inside its wall, a tube of half the vein's
radius around its axis that stays connected wherever the vein is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digital_contrast.phantom.labels import LESION_LABELS, PORTAL_SYSTEM_LABELS, Label

# A working-grid voxel (2 mm across slices) plus two PSF sigmas (0.5-0.8 mm): nearer the edge a
# perfect value resampled through the working grid is still mixed with the neighbour's.
ORGAN_INTERIOR_MM = 3.0
ORGAN_RING_MM = 3.0  # the Dice reads the organ and this ring, where a blurred edge can spill
VEIN_CORE_MM = 2.0  # the gain is fitted this far inside the vein's wall (as the lumen core)
HALF_MAXIMUM = 0.5
MIN_LEVEL_HU = 10.0  # an image with (almost) no enhancement there shows no organ or vein
MIN_BREAK_MM = 4.0  # two working-grid slices: shorter dips are resampling, not a break
LOCAL_RADIUS_WINDOW_MM = 3.0  # half-width of the window the local radius is taken over
LESION_CORE_MM = 1.0  # the lesion's mean is taken this far inside its edge
LESION_RING_MM = (2.0, 6.0)  # liver this far from the lesion is its background
# The synthetic image is the NCCT plus an enhancement, so the NCCT's noise is common to both
# contrasts and cancels; what is left is the DICOM rounding (0.5 HU, averaged over the lesion)
# and the enhancement's own texture. 2 HU is under one grey level of a 400 HU soft-tissue
# window shown in 256 levels (1.6 HU): a smaller loss is not one a reader can see.
LESION_TOLERANCE_HU = 2.0
MIN_REGION_VOXELS = 20
_CONNECTED = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity: a vein crossing a slice obliquely


@dataclass(frozen=True)
class Organ:
    """An enhancing organ: `labels` are measured, `shape` is the outline its interior is
    measured from (the kidney cortex is measured inside the whole kidney)."""

    name: str
    labels: tuple[Label, ...]
    shape: tuple[Label, ...]


@dataclass(frozen=True)
class Vein:
    name: str
    labels: tuple[Label, ...]


def _bbox(mask: np.ndarray, margin: tuple[int, ...]) -> tuple[slice, ...]:
    """The slices of `mask`'s bounding box grown by `margin` voxels (metrics run on crops)."""
    where = np.argwhere(mask)
    lo = np.maximum(where.min(axis=0) - margin, 0)
    hi = np.minimum(where.max(axis=0) + 1 + np.asarray(margin), mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _margin(mm: float, spacing: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(int(np.ceil(mm / s)) + 1 for s in spacing)


def _inside(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) of each voxel of `mask` to the nearest voxel outside it."""
    padded = np.pad(mask, 1)  # the array's border is outside, not inside
    return ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return float(2 * (a & b).sum() / total) if total else float("nan")


def organ_interior(labels: np.ndarray, organ: Organ,
                   spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxels of the organ's labels more than ORGAN_INTERIOR_MM inside its outline."""
    shape = np.isin(labels, organ.shape)
    interior = np.zeros_like(shape)
    if shape.any():  # on the organ's bounding box: a distance transform of the whole volume
        box = _bbox(shape, (1, 1, 1))  # per organ costs seconds
        interior[box] = (np.isin(labels[box], organ.labels)
                         & (_inside(shape[box], spacing) > ORGAN_INTERIOR_MM))
    return interior


def organ_enhancement_error(predicted: np.ndarray, true: np.ndarray,
                            interior: np.ndarray) -> float:
    """|mean predicted - mean true enhancement| (HU) over the interior; NaN when too small."""
    if interior.sum() < MIN_REGION_VOXELS:
        return float("nan")
    return abs(float(predicted[interior].mean()) - float(true[interior].mean()))


def half_maximum_organ(enhancement: np.ndarray, region: np.ndarray,
                       interior: np.ndarray) -> np.ndarray:
    """The region's voxels enhanced above half the image's own median in the interior."""
    level = float(np.median(enhancement[interior])) if interior.any() else 0.0
    return region & (enhancement > max(HALF_MAXIMUM * level, MIN_LEVEL_HU))


def organ_dice(predicted: np.ndarray, true: np.ndarray, labels: np.ndarray, organ: Organ,
               spacing: tuple[float, float, float]) -> float:
    """Dice of the half-maximum organ, synthetic vs reference, in the organ and its ring."""
    shape = np.isin(labels, organ.shape)
    if shape.sum() < MIN_REGION_VOXELS:
        return float("nan")
    box = _bbox(shape, _margin(ORGAN_RING_MM, spacing))
    shape_c = shape[box]
    region = ndimage.distance_transform_edt(~shape_c, sampling=spacing) <= ORGAN_RING_MM
    interior = _inside(shape_c, spacing) > ORGAN_INTERIOR_MM
    if interior.sum() < MIN_REGION_VOXELS:
        return float("nan")
    return _dice(half_maximum_organ(predicted[box], region, interior),
                 half_maximum_organ(true[box], region, interior))


def gain_error_fraction(predicted: np.ndarray, true: np.ndarray, labels: np.ndarray,
                        vein: Vein, spacing: tuple[float, float, float]) -> float:
    """Mean |g x predicted - true| over the vein / its mean true enhancement, g the
    least-squares gain of predicted onto true in the vein's core (> VEIN_CORE_MM inside)."""
    mask = np.isin(labels, vein.labels)
    if mask.sum() < MIN_REGION_VOXELS:
        return float("nan")
    box = _bbox(mask, (1, 1, 1))
    mask_c, pred, tru = mask[box], predicted[box].astype(np.float64), true[box]
    core = mask_c & (_inside(mask_c, spacing) > VEIN_CORE_MM)
    if not core.any():
        core = mask_c
    power = float(np.sum(pred[core] ** 2))
    mean_true = float(tru[mask_c].mean())
    if mean_true <= 0.0:
        return float("nan")
    if power == 0.0:  # nothing synthesized in the vein: the whole enhancement is missing
        return 1.0
    gain = float(np.sum(pred[core] * tru[core])) / power
    return float(np.abs(gain * pred[mask_c] - tru[mask_c]).mean()) / mean_true


def centreline_band(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxels of `mask` at least half the local radius inside its wall: a tube around the
    axis, connected wherever the vessel is, standing in for its skeleton."""
    depth = _inside(mask, spacing)
    window = tuple(2 * max(1, round(LOCAL_RADIUS_WINDOW_MM / s)) + 1 for s in spacing)
    radius = ndimage.maximum_filter(depth, size=window)
    return mask & (depth >= 0.5 * radius)


def _pieces(mask: np.ndarray, band: np.ndarray, spacing: tuple[float, ...]) -> int:
    """Connected pieces of `mask` (within `band`) once gaps shorter than MIN_BREAK_MM are
    bridged by a closing restricted to the band."""
    half = tuple(max(1, round(MIN_BREAK_MM / (2 * s))) for s in spacing)
    structure = np.ones(tuple(2 * h + 1 for h in half), dtype=bool)
    padded = np.pad(mask, [(h, h) for h in half])
    closed = ndimage.binary_closing(padded, structure=structure)
    closed = closed[tuple(slice(h, -h) for h in half)] & band
    return int(ndimage.label(closed, structure=_CONNECTED)[1])


def vein_breaks(predicted: np.ndarray, true: np.ndarray, labels: np.ndarray, vein: Vein,
                spacing: tuple[float, float, float]) -> float:
    """Breaks of the synthetic vein along the true centreline band: per connected part of the
    band, the pieces in which the synthetic image shows the vein (enhancement at least half the
    true enhancement there) beyond the pieces the reference shows (enhanced at least
    MIN_LEVEL_HU); a part not shown at all is one break. NaN when the case has no such vein.

    Half the true value, voxel by voxel, not half the image's own level: a vein drawn at the
    liver's enhancement everywhere is a vein the image does not show, and no level of its own
    would reveal that; the per-case contrast a model cannot know moves the portal system's
    enhancement by about 10 %, far from half."""
    mask = np.isin(labels, vein.labels)
    if mask.sum() < MIN_REGION_VOXELS:
        return float("nan")
    box = _bbox(mask, _margin(MIN_BREAK_MM, spacing))
    band = centreline_band(mask[box], spacing)
    pred, tru = predicted[box], true[box]
    shown_pred_all = band & (pred >= HALF_MAXIMUM * tru)
    shown_true_all = band & (tru >= MIN_LEVEL_HU)
    breaks = 0
    parts, count = ndimage.label(band, structure=_CONNECTED)
    for index in range(1, count + 1):
        part = parts == index
        if part.sum() < MIN_REGION_VOXELS:  # a speck of band at a tapering tip
            continue
        shown_true = _pieces(shown_true_all & part, part, spacing)
        if shown_true == 0:
            continue  # the reference itself does not show it: nothing to break
        shown_pred = _pieces(shown_pred_all & part & shown_true_all, part, spacing)
        breaks += 1 if shown_pred == 0 else max(0, shown_pred - shown_true)
    return float(breaks)


@dataclass(frozen=True)
class LesionContrast:
    """One lesion: its contrast (HU, lesion mean - liver ring mean) in each image."""

    label: Label
    voxels: int
    ncct_hu: float
    synthetic_hu: float
    reference_hu: float

    @property
    def lost(self) -> bool:
        """The synthetic image shows less contrast than the NCCT did, beyond the tolerance."""
        return abs(self.synthetic_hu) < abs(self.ncct_hu) - LESION_TOLERANCE_HU


def lesion_contrasts(ncct: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                     labels: np.ndarray, spacing: tuple[float, float, float]
                     ) -> list[LesionContrast]:
    """Each liver lesion (a connected part of the lesion labels: lesions that touch are judged
    as one) against its liver ring."""
    lesions = np.isin(labels, LESION_LABELS)
    if not lesions.any():
        return []
    out = []
    parts, count = ndimage.label(lesions, structure=_CONNECTED)
    for index in range(1, count + 1):
        lesion = parts == index
        box = _bbox(lesion, _margin(LESION_RING_MM[1], spacing))
        lesion_c = lesion[box]
        core = lesion_c & (_inside(lesion_c, spacing) > LESION_CORE_MM)
        if not core.any():
            core = lesion_c
        distance = ndimage.distance_transform_edt(~lesion_c, sampling=spacing)
        ring = ((labels[box] == Label.LIVER) & (distance > LESION_RING_MM[0])
                & (distance <= LESION_RING_MM[1]))
        if ring.sum() < MIN_REGION_VOXELS:
            continue  # a lesion at the liver's edge with no liver around it to compare
        kind = Label(int(np.bincount(labels[box][lesion_c]).argmax()))

        def contrast(image: np.ndarray, core=core, ring=ring, box=box) -> float:
            return float(image[box][core].mean()) - float(image[box][ring].mean())

        out.append(LesionContrast(kind, int(lesion_c.sum()), contrast(ncct),
                                  contrast(synthetic), contrast(reference)))
    return out


# --- the abdomen-pv selection ------------------------------------------------------------------
PV_ORGANS = (
    Organ("liver", (Label.LIVER,), (Label.LIVER,)),
    Organ("spleen", (Label.SPLEEN,), (Label.SPLEEN,)),
    Organ("kidney_cortex", (Label.KIDNEY_CORTEX,), (Label.KIDNEY_CORTEX, Label.KIDNEY_MEDULLA)),
)
# The Dice reads the kidney whole (cortex and medulla enhance alike at 70 s).
PV_DICE_ORGANS = (
    PV_ORGANS[0], PV_ORGANS[1],
    Organ("kidney", (Label.KIDNEY_CORTEX, Label.KIDNEY_MEDULLA),
          (Label.KIDNEY_CORTEX, Label.KIDNEY_MEDULLA)),
)
PORTAL_VEIN = Vein("portal_vein", (Label.PORTAL_VEIN,))
PORTAL_SYSTEM = Vein("portal_vein", PORTAL_SYSTEM_LABELS)  # one tree: SMV, splenic, portal
HEPATIC_VEIN = Vein("hepatic_vein", (Label.HEPATIC_VEIN,))


def organ_metrics(ncct: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                  labels: np.ndarray, spacing: tuple[float, float, float]) -> dict[str, float]:
    """The organ, vein and lesion metrics of an abdomen-pv case (catalogue names)."""
    pred = (synthetic - ncct).astype(np.float32)
    true = (reference - ncct).astype(np.float32)
    out: dict[str, float] = {}
    for organ in PV_ORGANS:
        interior = organ_interior(labels, organ, spacing)
        out[f"{organ.name}_enhancement_error_hu"] = organ_enhancement_error(pred, true, interior)
    dice = {organ.name: organ_dice(pred, true, labels, organ, spacing)
            for organ in PV_DICE_ORGANS}
    for name, value in dice.items():
        out[f"{name}_dice"] = value
    finite = [v for v in dice.values() if np.isfinite(v)]
    out["enhancing_organ_dice"] = min(finite) if finite else float("nan")
    out["portal_vein_gain_error_fraction"] = gain_error_fraction(pred, true, labels,
                                                                 PORTAL_VEIN, spacing)
    out["portal_vein_breaks"] = vein_breaks(pred, true, labels, PORTAL_SYSTEM, spacing)
    out["hepatic_vein_breaks"] = vein_breaks(pred, true, labels, HEPATIC_VEIN, spacing)
    lesions = lesion_contrasts(ncct, synthetic, reference, labels, spacing)
    if lesions:
        out["lesions_lost"] = float(sum(lesion.lost for lesion in lesions))
        out["lesion_contrast_change_hu"] = min(abs(lesion.synthetic_hu) - abs(lesion.ncct_hu)
                                               for lesion in lesions)
    return out
