"""Conformity's image analysis computes only what it keeps, bit for bit as the whole-slice
scipy filters and statistics it replaces."""

import numpy as np
import pytest
from scipy import ndimage

from digital_contrast.imaging.conformity.image import (
    _peaks,
    _per_component,
    _pixels,
    _smoothed,
)


def _slices() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    raws = [rng.normal(0.0, 300.0, shape).astype(np.float32)
            for shape in [(64, 64), (37, 41), (40, 33)]]
    return [view for raw in raws for view in (raw, raw[::-1], raw[:, ::-1])]  # flipped too


@pytest.mark.req("SRS-INF-015")
@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_kept_pixels_equal_the_whole_slice_filters(stride: int) -> None:
    for raw in _slices():
        np.testing.assert_array_equal(
            _peaks(raw, stride), ndimage.maximum_filter(raw, size=stride)[::stride, ::stride])
        np.testing.assert_array_equal(
            _smoothed(raw, (1.43, 1.2), stride),
            ndimage.gaussian_filter(raw, (1.43, 1.2))[::stride, ::stride])


@pytest.mark.req("SRS-INF-015")
def test_component_statistics_equal_scipys_over_the_whole_slice() -> None:
    for raw in _slices():
        labels, n = ndimage.label(raw > 150.0)
        ids = list(range(1, n + 1))
        assert n > 3
        np.testing.assert_array_equal(_pixels(labels),
                                      ndimage.sum_labels(np.ones_like(raw), labels, ids))
        for statistic in (ndimage.maximum, ndimage.median):
            np.testing.assert_array_equal(_per_component(statistic, raw, labels, ids),
                                          statistic(raw, labels, ids))
