"""The fast resampling and filtering paths against MONAI's resampler and scipy's filters."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample
from scipy import ndimage

from digital_contrast.imaging.resampling import (
    box_affine,
    box_shape,
    gaussian_filter,
    resample,
)
from digital_contrast.inference.tissue_gate import tissue_box, tissue_gate

GATE = (-60.0, -10.0, 120.0, 200.0)
SOURCE_AFFINE = np.array([[0.0, 0.0, 2.0, -30.0], [0.0, 1.5, 0.0, -20.0], [2.5, 0.0, 0.0, 5.0],
                          [0.0, 0.0, 0.0, 1.0]])


def _monai(source: np.ndarray, source_affine: np.ndarray, target_affine: np.ndarray,
           shape: tuple[int, int, int], padding: str) -> np.ndarray:
    image = MetaTensor(torch.from_numpy(source)[None], affine=torch.from_numpy(source_affine))
    return SpatialResample(mode="bilinear", padding_mode=padding, dtype=torch.float32)(
        image, dst_affine=torch.from_numpy(target_affine), spatial_size=shape)[0].numpy()


def _rotated(affine: np.ndarray, radians: float) -> np.ndarray:
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(radians), -np.sin(radians)], [np.sin(radians), np.cos(radians)]]
    return turn @ affine


@pytest.mark.req("SRS-INF-015")
@pytest.mark.parametrize("padding", ["border", "zeros"])
@pytest.mark.parametrize("target", ["finer", "flipped", "rotated"])
def test_resampling_equals_monai_bilinear(padding: str, target: str) -> None:
    source = np.random.default_rng(0).normal(0.0, 100.0, (12, 20, 16)).astype(np.float32)
    # A finer grid reaching past the source on every side, as the native grid of a scan is
    # finer than its working grid; flipped: stored feet first and prone.
    finer = np.array([[0.0, 0.0, 0.7, -33.0], [0.0, 0.7, 0.0, -23.0], [1.0, 0.0, 0.0, 2.0],
                      [0.0, 0.0, 0.0, 1.0]])
    flipped = finer @ np.diag([-1.0, -1.0, 1.0, 1.0])
    flipped[:3, 3] = [2.0, 10.0, 40.0]
    target_affine = {"finer": finer, "flipped": flipped,
                     "rotated": _rotated(finer, 0.3)}[target]  # general resampler
    box = (slice(2, 35), slice(5, 50), slice(0, 49))
    affine, shape = box_affine(target_affine, box), box_shape(box)
    expected = _monai(source, SOURCE_AFFINE, affine, shape, padding)
    got = resample(source, SOURCE_AFFINE, affine, shape, padding)  # type: ignore[arg-type]
    assert got.dtype == np.float32 and got.shape == shape
    assert np.abs(got - expected).max() < 1e-4 * np.abs(source).max()


@pytest.mark.req("SRS-INF-015")
@pytest.mark.parametrize("sigma", [(0.5, 0.93, 0.93), (1.0, 0.0, 1.43), (0.0, 2.0, 0.0)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_shared_gaussian_filter_is_scipys_bit_for_bit(sigma: tuple[float, ...],
                                                      threads: int) -> None:
    array = np.random.default_rng(1).normal(0.0, 100.0, (9, 31, 14)).astype(np.float32)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = gaussian_filter(array, sigma, truncate=3.0)
    finally:
        torch.set_num_threads(saved)
    np.testing.assert_array_equal(got, ndimage.gaussian_filter(array, sigma, truncate=3.0))


@pytest.mark.req("SRS-INF-015")
def test_the_gate_on_its_box_is_the_whole_grid_gate_there_and_zero_beyond() -> None:
    rng = np.random.default_rng(2)
    ncct = np.full((20, 60, 50), -1000.0, np.float32)  # air around a body of fat and tissue
    ncct[3:15, 10:40, 12:45] = -100.0
    ncct[5:12, 20:30, 20:30] = 40.0
    ncct += rng.normal(0.0, 20.0, ncct.shape).astype(np.float32)
    spacing = (2.5, 0.8, 0.8)
    whole = tissue_gate(ncct, spacing, GATE)
    box = tissue_box(ncct, spacing, GATE)
    assert box is not None
    np.testing.assert_array_equal(tissue_gate(ncct, spacing, GATE, box), whole[box])
    outside = np.ones(ncct.shape, dtype=bool)
    outside[box] = False
    assert outside.any() and whole[outside].max() == 0.0
    assert tissue_box(np.full((4, 5, 6), -500.0, np.float32), spacing, GATE) is None
