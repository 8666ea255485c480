"""The second stage's grid: a box around the aorta, axis-aligned with the patient (LPS).

The box is defined in patient coordinates, not in the scan's array order, so a series acquired
feet first or prone (or stored with its slices in the other order) shows the network the same
anatomy the same way up: array axes are (superior, posterior, left) = (+z, +y, +x).
Resampling to the box low-passes first (as the working grid does), and back is bilinear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample

from digital_contrast.imaging.resampling import (
    Box,
    anti_alias,
    box_affine,
    box_shape,
    resample,
)


@dataclass(frozen=True)
class CropGrid:
    """`shape` voxels (z, y, x) of `spacing_mm`, the first voxel's centre at `origin_mm`
    (LPS x, y, z)."""

    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]  # (z, y, x)
    shape: tuple[int, int, int]  # (z, y, x)

    @property
    def affine(self) -> np.ndarray:
        """world (LPS mm) = affine @ [a, b, c, 1] for array index (a, b, c) = (z, y, x)."""
        dz, dy, dx = self.spacing_mm
        out = np.zeros((4, 4))
        out[2, 0], out[1, 1], out[0, 2] = dz, dy, dx
        out[:3, 3] = self.origin_mm
        out[3, 3] = 1.0
        return out

    @classmethod
    def around(cls, centre_xy_mm: tuple[float, float], z_range_mm: tuple[float, float],
               spacing_mm: tuple[float, float, float], size_yx: tuple[int, int],
               z_multiple: int = 1) -> CropGrid:
        """`size_yx` voxels in-plane centred on `centre_xy_mm`, from `z_range_mm` (low, high)
        rounded up to a multiple of `z_multiple` slices (centred on the range)."""
        dz, dy, dx = spacing_mm
        low, high = sorted(z_range_mm)
        slices = max(1, int(np.ceil((high - low) / dz)) + 1)
        slices = -(-slices // z_multiple) * z_multiple
        z0 = (low + high) / 2 - (slices - 1) * dz / 2
        x0 = centre_xy_mm[0] - (size_yx[1] - 1) * dx / 2
        y0 = centre_xy_mm[1] - (size_yx[0] - 1) * dy / 2
        return cls((float(x0), float(y0), float(z0)), (dz, dy, dx),
                   (slices, int(size_yx[0]), int(size_yx[1])))


def world_z_range(mask: np.ndarray, affine: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) world z of the slices where `mask` is set (None when empty)."""
    points = np.argwhere(mask.reshape(mask.shape[0], -1).any(axis=1))[:, 0]
    if points.size == 0:
        return None
    ends = np.array([[points.min(), 0, 0, 1], [points.max(), 0, 0, 1]], dtype=np.float64)
    z = (np.asarray(affine) @ ends.T)[2]
    return float(z.min()), float(z.max())


def centre_xy(mask: np.ndarray, affine: np.ndarray) -> tuple[float, float] | None:
    """The median over slices of each slice's centroid of `mask` (world x, y): the aorta's
    course, robust to the iliacs and renal arteries that widen a few slices."""
    centroids = []
    for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        j, i = np.nonzero(mask[k])
        centroids.append(np.asarray(affine) @ np.array([k, j.mean(), i.mean(), 1.0]))
    if not centroids:
        return None
    xy = np.median(np.array(centroids)[:, :2], axis=0)
    return float(xy[0]), float(xy[1])


def to_crop(array: np.ndarray, affine: np.ndarray, grid: CropGrid, *,
            mode: str = "bilinear", padding_value: float | None = None) -> np.ndarray:
    """`array` on `affine` -> the crop grid (float32). Outside the scan: the nearest edge
    value, or `padding_value` where given. Only the scan voxels around the crop are read."""
    affine = np.asarray(affine, dtype=np.float64)
    box = native_box(grid, affine, array.shape, margin=4)
    if box is not None:  # the filter and the interpolation on the crop's part of the scan
        array = array[box]
        affine = box_affine(affine, box)
    source = anti_alias(array, affine, _native_order(grid.spacing_mm, affine)) \
        if mode == "bilinear" else array
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32)[None]),
                       affine=torch.from_numpy(affine))
    padding = "border" if padding_value is None else "zeros"
    offset = 0.0 if padding_value is None else padding_value
    if offset:
        image = image - offset
    out = SpatialResample(mode=mode, padding_mode=padding, dtype=torch.float32)(
        image, dst_affine=torch.from_numpy(grid.affine), spatial_size=grid.shape)
    return (out.as_tensor()[0].numpy() + offset).astype(np.float32, copy=False)


def native_box(grid: CropGrid, affine: np.ndarray, shape: tuple[int, ...], margin: int = 1
               ) -> Box | None:
    """The scan voxels (`affine`, `shape`) inside the crop's bounding box, `margin` voxels
    wider; None if none."""
    corners = np.array([[a, b, c, 1.0] for a in (0, grid.shape[0] - 1)
                        for b in (0, grid.shape[1] - 1) for c in (0, grid.shape[2] - 1)])
    native = (np.linalg.inv(np.asarray(affine, dtype=np.float64)) @ grid.affine @ corners.T)
    start = np.clip(np.floor(native[:3].min(axis=1)).astype(int) - margin, 0, shape)
    stop = np.clip(np.ceil(native[:3].max(axis=1)).astype(int) + margin + 1, 0, shape)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))  # type: ignore[return-value]


def from_crop(array: np.ndarray, grid: CropGrid, affine: np.ndarray,
              box: Box) -> np.ndarray:
    """Crop-grid `array` -> the scan voxels of `box` (`native_box`) on the scan's `affine`;
    zero outside the crop."""
    return resample(array, grid.affine, box_affine(affine, box), box_shape(box),
                    padding="zeros")


def _native_order(spacing_zyx: tuple[float, float, float],
                  affine: np.ndarray) -> tuple[float, float, float]:
    """The crop spacing along each of the scan's array axes (for the anti-alias filter):
    each array axis takes the spacing of the world axis it runs along most."""
    world_of_axis = np.abs(np.asarray(affine)[:3, :3]).argmax(axis=0)  # 0 x, 1 y, 2 z
    by_world = {2: spacing_zyx[0], 1: spacing_zyx[1], 0: spacing_zyx[2]}
    return tuple(by_world[int(w)] for w in world_of_axis)  # type: ignore[return-value]
