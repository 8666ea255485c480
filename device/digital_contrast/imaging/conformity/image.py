"""Envelope checks that read the image: the aortic region is found relative to the spine, then
examined for contrast already given, metal, and positive oral contrast.

Fail-closed: when the spine (and so the aortic region) cannot be found in enough slices, the
image checks fail rather than pass unexamined.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digital_contrast.config import get_settings
from digital_contrast.imaging.conformity.header import result
from digital_contrast.imaging.conformity.verdict import CheckResult
from digital_contrast.imaging.volume import Volume
from digital_contrast.usecases.schema import Envelope

GRID_MM = 1.5  # analysis grid: fine enough for a 10 mm vessel, cheap on 512x512 slices
SMOOTH_MM = 1.0  # suppresses noise (SD 30 HU -> ~10 HU) before thresholds
BONE_HU = 180.0
CORTEX_HU = 600.0  # native peak of cortical bone; diluted oral contrast stays below
MIDLINE_MM = 50.0
MIN_VERTEBRA_MM2 = 300.0
BAND_MM = (20.0, 5.0)  # anterior, posterior of the vertebral body's front edge: aortic wall
BAND_HALF_WIDTH_MM = 45.0
AORTIC_ROI_MM = (110.0, 10.0, 70.0)  # anterior, posterior, half-width around the vertebra
ORAL_MIN_HU = 150.0
MAX_UNIFORM_PEAK_ABOVE_BULK_HU = 200.0
MIN_SPINE_FRACTION = 0.3


@dataclass
class AorticFindings:
    slices: int = 0
    spine_slices: int = 0
    enhanced_slices: int = 0
    enhanced_hu: list[float] | None = None
    metal_voxels: int = 0
    oral_ml: float = 0.0


def _canonical(volume: Volume) -> tuple[bool, bool]:
    """Flips that put rows anterior->posterior and columns right->left (patient)."""
    return volume.affine[1, 1] < 0, volume.affine[0, 2] < 0


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    labels, n = ndimage.label(mask)
    return labels, list(range(1, n + 1))


def _pixels(labels: np.ndarray) -> np.ndarray:
    """Pixels per component, ids 1..n in order."""
    return np.bincount(labels.ravel())[1:]


def _per_component(statistic: Callable[..., np.ndarray], values: np.ndarray,
                   labels: np.ndarray, ids: list[int]) -> np.ndarray:
    """scipy's `statistic` (maximum, median) per component, given only the labelled pixels:
    it sorts every pixel it is given, and the background is most of a slice."""
    labelled = labels > 0
    return statistic(values[labelled], labels[labelled], ids)


def _smoothed(raw: np.ndarray, sigma: tuple[float, float], stride: int) -> np.ndarray:
    """`gaussian_filter(raw, sigma)[::stride, ::stride]` bit for bit: scipy filters along the
    first axis, then each row of that; only the rows kept need the second pass."""
    rows = ndimage.gaussian_filter1d(raw, sigma[0], axis=0)[::stride]
    return ndimage.gaussian_filter1d(rows, sigma[1], axis=1)[:, ::stride]


def _peaks(raw: np.ndarray, stride: int) -> np.ndarray:
    """`maximum_filter(raw, size=stride)[::stride, ::stride]` on the kept pixels only: the
    maximum over each one's window (from stride // 2 pixels before it), clamped at the edges,
    which leaves the same pixels in a window as scipy's mirroring."""
    starts = [np.arange(0, n, stride) for n in raw.shape]
    offsets = range(-(stride // 2), stride - stride // 2)
    windows = (raw[np.clip(starts[0] + dr, 0, raw.shape[0] - 1)]
               [:, np.clip(starts[1] + dc, 0, raw.shape[1] - 1)]
               for dr in offsets for dc in offsets)
    peak = next(windows)
    for window in windows:
        np.maximum(peak, window, out=peak)
    return peak


def _vertebra(smooth: np.ndarray, peak: np.ndarray, body_x: float, py: float,
              px: float) -> np.ndarray | None:
    """The vertebral body (or sacrum): the most posterior large bony component near the
    midline. Posterior, because a contrast-filled aorta can be as large and as bright."""
    labels, ids = _components(smooth > BONE_HU)
    if not ids:
        return None
    sizes = _pixels(labels) * py * px
    peaks = _per_component(ndimage.maximum, peak, labels, ids)
    centres = ndimage.center_of_mass(labels > 0, labels, ids)
    candidates = [(row, index) for index, size, top, (row, col)
                  in zip(ids, sizes, peaks, centres, strict=True)
                  if size >= MIN_VERTEBRA_MM2 and top > CORTEX_HU
                  and abs(col - body_x) * px <= MIDLINE_MM]
    return labels == max(candidates)[1] if candidates else None


def _bone_like(peaks: np.ndarray, values: np.ndarray) -> bool:
    """Bone and calcium peak far above their bulk; blood and bowel content are uniform."""
    return bool(peaks.max() - np.median(values) > MAX_UNIFORM_PEAK_ABOVE_BULK_HU
                and peaks.max() > CORTEX_HU)


def _box(front: int, centre: float, extent_mm: tuple[float, float, float], py: float,
         px: float) -> tuple[slice, slice]:
    """Rows from `extent_mm[0]` anterior to `extent_mm[1]` posterior of the front edge,
    columns within `extent_mm[2]` of the centre (numpy clips the upper bounds)."""
    anterior, posterior, half_width = extent_mm
    return (slice(max(0, int(front - anterior / py)), int(front + posterior / py)),
            slice(max(0, int(centre - half_width / px)), int(centre + half_width / px)))


@dataclass(frozen=True)
class _SliceFindings:
    """One slice in which the spine was found."""

    enhanced_hu: float | None  # median of the enhanced aortic lumen, None when there is none
    metal_voxels: int
    oral_pixels: int | None  # uniform bright bowel content on the analysis grid; None: no
    # bright component at all


def _analyse_slice(raw: np.ndarray, envelope: Envelope, stride: int,
                   sigma: tuple[float, float], py: float, px: float) -> _SliceFindings | None:
    """A slice with rows anterior -> posterior and columns right -> left; None when it shows
    no body or no spine."""
    smooth = _smoothed(raw, sigma, stride)
    # Native peaks on the analysis grid: a thin cortical shell survives, smoothing would not.
    peak = _peaks(raw, stride)
    body = smooth > -500
    if not body.any():
        return None
    vertebra = _vertebra(smooth, peak, ndimage.center_of_mass(body)[1], py, px)
    if vertebra is None:
        return None
    rows, cols = np.nonzero(vertebra)
    front, centre = rows.min(), cols.mean()
    # Boxes relative to the vertebral body's front edge, in analysis-grid indices.
    roi_rows, roi_cols = _box(front, centre, AORTIC_ROI_MM, py, px)
    band_rows, band_cols = _box(front, centre, (*BAND_MM, BAND_HALF_WIDTH_MM), py, px)
    roi, band = np.zeros_like(body), np.zeros_like(body)
    roi[roi_rows, roi_cols] = True
    band[band_rows, band_cols] = True
    not_bone = ~ndimage.binary_dilation(vertebra, iterations=2)

    enhanced = (smooth > envelope.max_unenhanced_blood_hu) & (smooth < 1500) & not_bone
    labels, ids = _components(enhanced & roi)
    aortic = np.zeros_like(body)
    enhanced_hu = None
    for index in ids:
        blob = labels == index
        if not (blob & band).any() or _bone_like(peak[blob], smooth[blob]):
            continue
        aortic |= blob
        inscribed = 2 * ndimage.distance_transform_edt(blob, sampling=(py, px)).max()
        if inscribed >= envelope.min_vessel_diameter_mm:
            enhanced_hu = float(np.median(smooth[blob]))
            break

    # Metal is thin: look at every native pixel of the region, not the analysis grid.
    native = raw[roi_rows.start * stride:roi_rows.stop * stride,
                 roi_cols.start * stride:roi_cols.stop * stride]
    metal = int(np.count_nonzero(native > envelope.metal_hu))

    # Whole components, judged as found: cutting the spine out first would leave pieces of
    # bone without their cortex.
    labels, ids = _components((smooth > ORAL_MIN_HU) & (smooth < 1500) & body)
    if not ids:
        return _SliceFindings(enhanced_hu, metal, None)
    # Bone and calcium peak far above their bulk; bowel content is uniform.
    sizes = _pixels(labels)
    peaks = _per_component(ndimage.maximum, peak, labels, ids)
    medians = _per_component(ndimage.median, smooth, labels, ids)
    excluded = set(np.unique(labels[vertebra | aortic]))
    oral = sum(size for index, size, top, bulk in zip(ids, sizes, peaks, medians, strict=True)
               if index not in excluded and top <= CORTEX_HU
               and top - bulk <= MAX_UNIFORM_PEAK_ABOVE_BULK_HU)
    return _SliceFindings(enhanced_hu, metal, oral)


def analyse_aortic_region(volume: Volume, envelope: Envelope) -> AorticFindings:
    """Every slice examined on its own, the slices shared among the inference threads, the
    findings added up in slice order."""
    dz, dy, dx = volume.spacing
    stride = max(1, round(GRID_MM / min(dy, dx)))
    py, px = dy * stride, dx * stride
    flip_rows, flip_cols = _canonical(volume)
    canonical = volume.array[:, ::-1] if flip_rows else volume.array
    canonical = canonical[:, :, ::-1] if flip_cols else canonical
    with ThreadPoolExecutor(get_settings().inference_threads) as pool:
        per_slice = list(pool.map(lambda raw: _analyse_slice(
            raw, envelope, stride, (SMOOTH_MM / dy, SMOOTH_MM / dx), py, px), canonical))
    findings = AorticFindings(slices=volume.shape[0], enhanced_hu=[])
    for found in per_slice:
        if found is None:
            continue
        findings.spine_slices += 1
        if found.enhanced_hu is not None:
            findings.enhanced_slices += 1
            findings.enhanced_hu.append(found.enhanced_hu)
        findings.metal_voxels += found.metal_voxels
        if found.oral_pixels is not None:
            findings.oral_ml += found.oral_pixels * py * px * dz / 1000.0
    return findings


def image_checks(volume: Volume, envelope: Envelope) -> list[CheckResult]:
    checks = [hu_calibration(volume)]
    findings = analyse_aortic_region(volume, envelope)
    located = findings.spine_slices >= MIN_SPINE_FRACTION * max(findings.slices, 1)
    checks.append(result(
        "CONF_AORTA_NOT_LOCATED", "aortic region located", located,
        f"spine in {findings.spine_slices}/{findings.slices} slices",
        f">= {MIN_SPINE_FRACTION:.0%} of slices",
        "the spine and aortic region could not be found, so the image cannot be checked for "
        "contrast or metal; is this an abdominal CT?"))
    if not located:
        return checks
    fraction = findings.enhanced_slices / findings.spine_slices
    median_hu = float(np.median(findings.enhanced_hu)) if findings.enhanced_hu else None
    checks.append(result(
        "CONF_CONTRAST_IN_AORTA", "unenhanced aortic blood",
        fraction < envelope.contrast_slice_fraction,
        f"enhanced lumen in {fraction:.0%} of slices"
        + (f", median {median_hu:.0f} HU" if median_hu is not None else ""),
        f"< {envelope.contrast_slice_fraction:.0%} of slices above "
        f"{envelope.max_unenhanced_blood_hu:.0f} HU",
        f"the aorta is enhanced ({median_hu or 0:.0f} HU in {fraction:.0%} of slices): "
        "intravenous contrast has already been given"))
    checks.append(result(
        "CONF_METAL", "no metal in the aortic region",
        findings.metal_voxels <= envelope.max_metal_voxels,
        f"{findings.metal_voxels} voxels > {envelope.metal_hu:.0f} HU",
        f"<= {envelope.max_metal_voxels} voxels",
        "metal in the aortic region (for example a stent-graft): outside the intended use"))
    checks.append(result(
        "CONF_ORAL_CONTRAST", "no positive oral contrast",
        findings.oral_ml < envelope.oral_contrast_min_ml,
        f"{findings.oral_ml:.1f} mL > {ORAL_MIN_HU:.0f} HU outside vessels and bone",
        f"< {envelope.oral_contrast_min_ml:g} mL",
        "bright bowel content suggests positive oral contrast; vessels are judged unaffected, "
        "but read bowel near vessels with care", warn=True))
    return checks


def hu_calibration(volume: Volume) -> CheckResult:
    """Calibrated HU: fat near -100 and soft tissue near +40 are where they should be (every
    abdominal CT has plenty of both), and nothing lies far outside the CT scale."""
    sample = volume.array[:, ::4, ::4]
    low, high = np.percentile(sample, [0.1, 99.9])
    fat = float(np.mean((sample > -150) & (sample < -50)))
    soft = float(np.mean((sample >= 0) & (sample <= 100)))
    ok = low >= -1100 and high <= 4000 and fat >= 0.02 and soft >= 0.10
    return result("CONF_HU_RANGE", "Hounsfield calibration", ok,
                  f"p0.1 {low:.0f} HU, p99.9 {high:.0f} HU, fat {fat:.0%}, soft tissue {soft:.0%}",
                  "p0.1 >= -1100, p99.9 <= 4000, fat (-150..-50) >= 2%, soft (0..100) >= 10%",
                  "the values do not look like calibrated Hounsfield units")
