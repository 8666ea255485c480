"""The protocol's metrics are read the same way on reference and output, so what no NCCT shows
(the bolus) changes the intensity metrics it should and none of the geometry."""

import numpy as np
import pytest

from digital_contrast.phantom.case import generate_case, noiseless_images
from digital_contrast.validation.metrics import phantom_metrics


@pytest.fixture(scope="module")
def case():
    case = generate_case(20005, "small")  # a primary-stratum case, thrombus 10 mm thick
    clean = noiseless_images(case.parameters, case.labels)
    return case, case.ncct, (clean["arterial"] - clean["ncct"]).astype(np.float32)


@pytest.mark.req("SRS-VAL-012")
def test_a_perfect_geometry_under_another_bolus_keeps_its_geometry_scores(case) -> None:
    phantom, ncct, enhancement = case
    reference = ncct + enhancement
    for gain in (1.0, 1.15, 0.85):
        metrics = phantom_metrics(ncct, ncct + gain * enhancement, reference, phantom.labels,
                                  phantom.spacing, has_thrombus=True)
        assert metrics["lumen_dice"] == pytest.approx(1.0)
        assert metrics["diameter_error_mm"] == pytest.approx(0.0)
        assert metrics["spurious_lumen_beyond_2mm_ml"] == 0.0
        assert metrics["thrombus_dice"] == pytest.approx(1.0)
        assert metrics["ilt_thickness_error_mm"] == pytest.approx(0.0)
        assert metrics["ilt_max_thickness_mm"] >= 5.0
        assert metrics["lumen_gain_mae_hu"] == pytest.approx(0.0, abs=1e-3)
        assert metrics["lumen_abs_bias_fraction"] == pytest.approx(abs(gain - 1.0), abs=1e-3)
        assert metrics["unchanged_beyond_2mm_p99_abs_hu"] < 0.01  # below 1 HU enhancement
    # The raw lumen error does see the bolus: why the protocol judges it apart.
    assert metrics["lumen_mae_hu"] > 20


@pytest.mark.req("SRS-VAL-012")
def test_no_enhancement_and_enhancement_where_there_is_none_are_scored(case) -> None:
    phantom, ncct, enhancement = case
    reference = ncct + enhancement
    nothing = phantom_metrics(ncct, ncct.copy(), reference, phantom.labels, phantom.spacing,
                              has_thrombus=True)
    assert nothing["lumen_dice"] == 0.0 and np.isnan(nothing["lumen_gain_mae_hu"])
    assert nothing["lumen_abs_bias_fraction"] == pytest.approx(1.0)
    # 40 HU added to every voxel of the body: unchanged tissue changed, spurious lumen.
    body = phantom.labels != 0
    everywhere = phantom_metrics(ncct, reference + 40.0 * body, reference, phantom.labels,
                                 phantom.spacing, has_thrombus=True)
    assert everywhere["unchanged_beyond_2mm_median_abs_hu"] == pytest.approx(40.0)
