"""Where iodine can add attenuation: voxels whose unenhanced attenuation is blood or soft tissue.

The enhancement is predicted on a coarser working grid; resampled back, it spills a voxel or two
into the fat, air, bone and calcium around vessels and organs, none of which takes up iodine.
The gate, computed on the native NCCT (smoothed over about 1 mm so that noise does not punch
holes into the lumen), is 0 below `zero_below`, rises linearly to 1 at `full_from`, stays 1 up
to `full_to` and falls to 0 at `zero_above`; partial-volume voxels keep a partial enhancement.
Outside `tissue_box` (the air around the body) it is 0, so nothing there needs computing.
"""

import numpy as np

from digital_contrast.imaging.resampling import Box, gaussian_filter, whole_box

SMOOTHING_MM = 1.0
TRUNCATE = 3.0  # kernel half-width in sigmas


def _sigma(spacing_mm: tuple[float, float, float]) -> list[float]:
    return [SMOOTHING_MM / s for s in spacing_mm]


def _reach(spacing_mm: tuple[float, float, float]) -> list[int]:
    """Voxels the smoothing reads on either side, per axis (scipy's kernel half-width)."""
    return [int(TRUNCATE * s + 0.5) for s in _sigma(spacing_mm)]


def tissue_box(ncct: np.ndarray, spacing_mm: tuple[float, float, float],
               gate_hu: tuple[float, float, float, float]) -> Box | None:
    """The bounding box of the voxels whose weight can be above 0: those within the
    smoothing's reach of a voxel above `zero_below` (the smoothed value is a weighted mean of
    the voxels in reach); None when there are none."""
    above = ncct > gate_hu[0]
    box = []
    for axis, reach in enumerate(_reach(spacing_mm)):
        hits = np.flatnonzero(above.any(axis=tuple(a for a in range(3) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(max(0, int(hits[0]) - reach),
                         min(ncct.shape[axis], int(hits[-1]) + reach + 1)))
    return box[0], box[1], box[2]


def tissue_gate(ncct: np.ndarray, spacing_mm: tuple[float, float, float],
                gate_hu: tuple[float, float, float, float], box: Box | None = None,
                threads: int | None = None) -> np.ndarray:
    """Weights in [0, 1] on the NCCT's grid (`spacing_mm` in array order), or on its block
    `box` only: the same values, the smoothing reading the voxels within reach of the box, on
    `threads` threads (default: torch's)."""
    zero_below, full_from, full_to, zero_above = gate_hu
    box = box or whole_box(ncct.shape)
    read = tuple(slice(max(0, s.start - r), min(n, s.stop + r))
                 for s, r, n in zip(box, _reach(spacing_mm), ncct.shape, strict=True))
    smooth = gaussian_filter(ncct[read], _sigma(spacing_mm), TRUNCATE, threads)
    smooth = smooth[tuple(slice(s.start - r.start, s.stop - r.start)
                          for s, r in zip(box, read, strict=True))]
    rise = (smooth - zero_below) / (full_from - zero_below)
    fall = np.subtract(zero_above, smooth, out=smooth)
    fall /= zero_above - full_to
    # min(clip(rise), clip(fall)) == clip(min(rise, fall)): one clip, no more temporaries.
    return np.clip(np.minimum(rise, fall, out=rise), 0.0, 1.0, out=rise)
