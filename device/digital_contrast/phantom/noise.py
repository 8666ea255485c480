"""Spatially correlated CT noise, and smooth random fields for texture and shape.

White Gaussian noise low-pass filtered by a Gaussian kernel (about a pixel in-plane, a little
through-plane) mimics the correlated texture of filtered back-projection noise, then is
rescaled so its sample SD equals the case's dose-dependent SD exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .parameters import PhantomParameters, rng_stream

_CHUNK = 16


def correlated_noise(shape: tuple[int, int, int], sd_hu: float, sigma_px: float,
                     sigma_z_px: float, rng: np.random.Generator) -> np.ndarray:
    """float32 noise of the given shape (k, j, i), zero mean and sample SD `sd_hu`."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    # wrap keeps the noise stationary up to the image border; filtering in place saves memory.
    ndimage.gaussian_filter(noise, (sigma_z_px, sigma_px, sigma_px), output=noise, mode="wrap",
                            truncate=3.0)
    mean, sd = _mean_sd(noise)
    noise -= np.float32(mean)
    noise *= np.float32(sd_hu / sd)
    return noise


def _mean_sd(a: np.ndarray) -> tuple[float, float]:
    """Mean and SD accumulated in float64 chunk by chunk (no full-size float64 temporary)."""
    total = total_sq = 0.0
    for k in range(0, a.shape[0], _CHUNK):
        c = a[k:k + _CHUNK].astype(np.float64)
        total += float(c.sum())
        total_sq += float(np.square(c).sum())
    n = a.size
    mean = total / n
    return mean, float(np.sqrt(max(total_sq / n - mean * mean, 1e-30)))


def lag1_autocorrelation(noise: np.ndarray, axis: int = -1) -> float:
    """Correlation between neighbouring voxels along `axis` (in-plane: -1 or -2)."""
    a = np.moveaxis(noise, axis, -1).astype(np.float64)
    a = a - a.mean()
    return float((a[..., 1:] * a[..., :-1]).mean() / (a * a).mean())


class SmoothField:
    """Unit-SD random field on a world-aligned coarse grid, linearly interpolated.

    The grid is fixed in world mm relative to the anatomy, so the small and the clinical case
    of one seed share their texture.
    """

    def __init__(self, p: PhantomParameters, name: str, grid_mm: float, sigma_cells: float,
                 zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> None:
        z0, z1 = p.aorta.renal_artery_z_mm - 430.0, p.aorta.renal_artery_z_mm + 250.0
        lo, hi = -320.0, 320.0
        nz, nxy = int((z1 - z0) / grid_mm) + 1, int((hi - lo) / grid_mm) + 1
        raw = rng_stream(p.seed, name).standard_normal((nz, nxy, nxy))
        field = ndimage.gaussian_filter(raw, sigma_cells, mode="wrap")
        field = (field - field.mean()) / field.std()
        # Interpolate along z and y now (small), along x per chunk of slices.
        fz = lerp_axis(field, (zs - z0) / grid_mm, 0)
        self.fzy = lerp_axis(fz, (ys - lo) / grid_mm, 1).astype(np.float32)
        self.x_idx = (xs - lo) / grid_mm

    def chunk(self, k0: int, k1: int) -> np.ndarray:
        """Field values of slices k0..k1-1, float32 (k, j, i)."""
        return lerp_axis(self.fzy[k0:k1], self.x_idx, 2)


def lerp_axis(a: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    i0 = np.clip(np.floor(idx).astype(np.intp), 0, a.shape[axis] - 2)
    w = np.clip(idx - i0, 0.0, 1.0).astype(a.dtype)
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - w) + np.take(a, i0 + 1, axis=axis) * w
