"""Between the scan's grid and the model's working spacing (MONAI, affine-aware, bilinear)."""

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Spacing, SpatialResample


def to_working_spacing(array: np.ndarray, affine: np.ndarray,
                       spacing_mm: tuple[float, float, float]) -> MetaTensor:
    """(slice, row, column) array on `affine` -> one-channel MetaTensor at `spacing_mm`."""
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(array)[None]),
                       affine=torch.from_numpy(affine))
    return Spacing(pixdim=spacing_mm, mode="bilinear", padding_mode="border",
                   dtype=torch.float32)(image)


def to_native_grid(image: MetaTensor, affine: np.ndarray,
                   shape: tuple[int, int, int]) -> np.ndarray:
    """One-channel MetaTensor -> array on the native `affine` and `shape`."""
    back = SpatialResample(mode="bilinear", padding_mode="border", dtype=torch.float32)(
        image, dst_affine=torch.from_numpy(affine), spatial_size=shape)
    return back.as_tensor()[0].numpy()
