"""Where iodine can add attenuation: voxels whose unenhanced attenuation is blood or soft tissue.

The enhancement is predicted on a coarser working grid; resampled back, it spills a voxel or two
into the fat, air, bone and calcium around vessels and organs, none of which takes up iodine.
The gate, computed on the native NCCT (smoothed over about 1 mm so that noise does not punch
holes into the lumen), is 0 below `zero_below`, rises linearly to 1 at `full_from`, stays 1 up
to `full_to` and falls to 0 at `zero_above`; partial-volume voxels keep a partial enhancement.
"""

import numpy as np
from scipy import ndimage

SMOOTHING_MM = 1.0


def tissue_gate(ncct: np.ndarray, spacing_mm: tuple[float, float, float],
                gate_hu: tuple[float, float, float, float]) -> np.ndarray:
    """Weights in [0, 1] on the NCCT's grid (`spacing_mm` in array order)."""
    zero_below, full_from, full_to, zero_above = gate_hu
    sigma = [SMOOTHING_MM / s for s in spacing_mm]
    smooth = ndimage.gaussian_filter(ncct.astype(np.float32, copy=False), sigma, truncate=3.0)
    rise = np.clip((smooth - zero_below) / (full_from - zero_below), 0.0, 1.0)
    fall = np.clip((zero_above - smooth) / (zero_above - full_to), 0.0, 1.0)
    return np.minimum(rise, fall, out=rise)
