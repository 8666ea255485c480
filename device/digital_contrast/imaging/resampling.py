"""Between the scan's grid and the model's working spacing (MONAI, affine-aware, bilinear).

Downsampling is anti-aliased: bilinear sampling of a 0.8 mm grid at 2 mm reads a fraction of
the voxels and keeps most of their noise, and blood and thrombus differ by only 5-15 HU.

Back to the scan's grid, `resample` interpolates one axis at a time (three matrix products)
wherever each target axis runs along one source axis: always between the scan's grid and a
grid `to_working_spacing` made from it (it rescales the axes, it does not rotate them), and
between an axial scan and the patient-aligned crop. MONAI's resampler builds and reads a
coordinate grid three times the size of its output (78 M voxels for a 512 x 512 x 300 scan);
the result is the same bilinear sampling.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Literal

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Spacing, SpatialResample
from scipy import ndimage

from digital_contrast.imaging.volume import Volume

Box = tuple[slice, slice, slice]  # a block of an array, each slice with start and stop set
Padding = Literal["border", "zeros"]  # outside the source: its nearest edge voxel, or 0
# Off-diagonal terms of the target -> source voxel map below this (relative) are rounding.
ALIGNED_RTOL = 1e-6
COVERED = 0.999  # interpolation weight inside the source: a voxel it covers whole


def gaussian_filter(array: np.ndarray, sigma: Sequence[float], truncate: float,
                    threads: int | None = None) -> np.ndarray:
    """scipy's `gaussian_filter` of a 3-D array in float32 (edges mirrored), each axis's pass
    shared among `threads` threads (default: torch's intra-op threads, which inference fixes)
    in blocks along another axis. Every line is filtered as scipy filters it: bitwise the same
    result, whatever the threads."""
    out = np.array(array, dtype=np.float32)  # filtered in place, as scipy does after pass 1
    threads = threads or torch.get_num_threads()
    with ThreadPoolExecutor(threads) as pool:
        for axis, s in enumerate(sigma):
            if s <= 1e-15:  # scipy leaves such axes out
                continue
            across = 1 if axis == 0 else 0
            bounds = np.linspace(0, out.shape[across], threads + 1).astype(int)
            blocks = [out[(slice(None),) * across + (slice(a, b),)]
                      for a, b in pairwise(bounds) if b > a]
            list(pool.map(lambda block, a=axis, s=s: ndimage.gaussian_filter1d(
                block, s, axis=a, output=block, truncate=truncate), blocks))
    return out


def anti_alias(array: np.ndarray, affine: np.ndarray,
               spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Gaussian low-pass before resampling to `spacing_mm`: sigma = (factor - 1) / 2 voxels
    along each axis that is downsampled by `factor` (the scikit-image convention)."""
    native = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    sigma = [max(0.0, (target / size - 1.0) / 2.0)
             for target, size in zip(spacing_mm, native, strict=True)]
    if not any(sigma):
        return array
    return gaussian_filter(array, sigma, truncate=3.0)


def to_working_spacing(array: np.ndarray, affine: np.ndarray,
                       spacing_mm: tuple[float, float, float]) -> MetaTensor:
    """(slice, row, column) array on `affine` -> one-channel MetaTensor at `spacing_mm`."""
    array = anti_alias(array, affine, spacing_mm)
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(array)[None]),
                       affine=torch.from_numpy(affine))
    return Spacing(pixdim=spacing_mm, mode="bilinear", padding_mode="border",
                   dtype=torch.float32)(image)


def to_native_grid(image: MetaTensor, affine: np.ndarray,
                   shape: tuple[int, int, int]) -> np.ndarray:
    """One-channel MetaTensor -> array on the native `affine` and `shape` (or on a block of
    the native grid: its `box_affine` and shape)."""
    return resample(image.as_tensor()[0], image.affine.numpy(), affine, shape)


def whole_box(shape: tuple[int, ...]) -> Box:
    return slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2])


def box_shape(box: Box) -> tuple[int, int, int]:
    return box[0].stop - box[0].start, box[1].stop - box[1].start, box[2].stop - box[2].start


def box_affine(affine: np.ndarray, box: Box) -> np.ndarray:
    """The affine of the block `box` of an array on `affine`."""
    out = np.asarray(affine, dtype=np.float64).copy()
    out[:3, 3] = (out @ np.array([*(s.start for s in box), 1.0]))[:3]
    return out


def resample(source: np.ndarray | torch.Tensor, source_affine: np.ndarray,
             target_affine: np.ndarray, shape: tuple[int, int, int],
             padding: Padding = "border") -> np.ndarray:
    """3-D `source` on `source_affine` -> float32 array of `shape` on `target_affine`,
    bilinear (voxel centres on the affines' points), as MONAI's `SpatialResample`."""
    source = torch.as_tensor(source, dtype=torch.float32)
    to_source = np.linalg.inv(np.asarray(source_affine, dtype=np.float64)) @ target_affine
    scale = np.diag(to_source)[:3]
    if not np.allclose(to_source[:3, :3], np.diag(scale), rtol=0.0,
                       atol=ALIGNED_RTOL * np.abs(scale).max()):
        image = MetaTensor(source[None], affine=torch.from_numpy(
            np.asarray(source_affine, dtype=np.float64)))
        out = SpatialResample(mode="bilinear", padding_mode=padding, dtype=torch.float32)(
            image, dst_affine=torch.from_numpy(np.asarray(target_affine, dtype=np.float64)),
            spatial_size=shape)
        return out.as_tensor()[0].numpy()
    z, y, x = (_interpolation(source.shape[axis], scale[axis] * np.arange(size)
                              + to_source[axis, 3], padding)
               for axis, size in enumerate(shape))
    out = (z @ source.reshape(source.shape[0], -1)).reshape(shape[0], *source.shape[1:])
    return (y @ out @ x.T).numpy()


def resample_onto(source: Volume, target: Volume) -> tuple[np.ndarray, np.ndarray]:
    """`source` resampled onto `target`'s grid (0 outside it) and the mask of target voxels it
    covers whole: what two acquisitions of one frame of reference are compared on."""
    moved = resample(source.array, source.affine, target.affine, target.shape, "zeros")
    covered = resample(np.ones(source.shape, np.float32), source.affine, target.affine,
                       target.shape, "zeros") >= COVERED
    return moved, covered


def _interpolation(size: int, coords: np.ndarray, padding: Padding) -> torch.Tensor:
    """(len(coords), size) weights of linear interpolation at voxel coordinates `coords`. Two
    weights a row at most: applied as a matrix product, the dense zeros cost less than
    gathering along the last axis would."""
    rows = np.arange(len(coords))
    matrix = np.zeros((len(coords), size), dtype=np.float32)
    if padding == "border":
        coords = np.clip(coords, 0.0, size - 1)
    low = np.floor(coords).astype(np.int64)
    weight = (coords - low).astype(np.float32)
    for index, w in ((low, 1.0 - weight), (low + 1, weight)):
        inside = (index >= 0) & (index < size)  # beyond the edge: padding "zeros" reads 0
        matrix[rows[inside], index[inside]] += w[inside]
    return torch.from_numpy(matrix)
