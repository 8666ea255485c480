"""The tissue gate: no enhancement where the non-contrast CT is fat, air, bone or calcium."""

import numpy as np
import pytest

from digital_contrast.inference.tissue_gate import tissue_gate

GATE = (-60.0, -10.0, 120.0, 200.0)


@pytest.mark.req("SRS-INF-010")
@pytest.mark.parametrize("hu, weight", [(-1000.0, 0.0), (-100.0, 0.0), (-60.0, 0.0),
                                        (-35.0, 0.5), (-10.0, 1.0), (40.0, 1.0), (120.0, 1.0),
                                        (160.0, 0.5), (200.0, 0.0), (900.0, 0.0)])
def test_gate_follows_the_stated_ramps(hu: float, weight: float) -> None:
    gate = tissue_gate(np.full((6, 8, 8), hu, np.float32), (2.5, 0.8, 0.8), GATE)
    assert gate.shape == (6, 8, 8)
    np.testing.assert_allclose(gate, weight, atol=1e-5)


@pytest.mark.req("SRS-INF-010")
def test_gate_keeps_noisy_blood_and_stops_at_fat() -> None:
    rng = np.random.default_rng(0)
    ncct = np.full((10, 40, 40), -100.0, np.float32)  # fat
    ncct[:, :, 20:] = 40.0  # blood
    ncct += rng.normal(0.0, 25.0, ncct.shape).astype(np.float32)
    gate = tissue_gate(ncct, (2.5, 0.8, 0.8), GATE)
    assert gate[:, :, 24:].mean() > 0.99  # noise does not punch holes into the lumen
    assert gate[:, :, :16].max() == 0.0  # fat a few voxels from the edge gets nothing
