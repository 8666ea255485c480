"""Explain core without the trained model: threshold calibration, confidence labelling, region
boxes, method gating and attribution refusals (a tiny untrained network is enough)."""

import numpy as np
import pytest
import torch

from digital_contrast.explain.attribution import (
    AttributionError,
    Method,
    attribute,
    box_mask_mm,
    native_mask_to_working,
)
from digital_contrast.explain.calibration import choose_threshold, voxel_auc
from digital_contrast.explain.region import Box, aortic_component, centred_box
from digital_contrast.explain.steps import Confidence, ExplainError, require_method
from digital_contrast.explain.uncertainty import (
    UncertaintyMap,
    estimate_uncertainty,
    scored_region,
)
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.synthesize import predict_working
from digital_contrast.model.crop_grid import CropGrid, native_box
from digital_contrast.model.explain_evidence import (
    ExplainEvidence,
    SanityCheck,
    TTASettings,
    UncertaintyCalibration,
)
from digital_contrast.phantom.case import generate_case
from digital_contrast.usecases import load_use_case
from tests.support.models import tiny_bundle

AAA = load_use_case("aaa-cta")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[torch.nn.Module, object, Volume, object, Cascade]:
    cascade = Cascade.of(tiny_bundle(tmp_path_factory.mktemp("tiny"), AAA))
    case = generate_case(9000)
    volume = Volume(case.ncct, case.affine)
    prediction = predict_working(volume, cascade, case.parameters.scanner.kvp)
    return cascade.network, cascade.network_config, volume, prediction, cascade


def _calibration(threshold: float = 20.0) -> UncertaintyCalibration:
    return UncertaintyCalibration(tta=TTASettings(), error_hu=50.0, threshold_hu=threshold,
                                  dataset="test", cases=[(0.1, 0.1)],
                                  mean_abs_fraction_error=0.0, spearman_cases=1.0,
                                  voxel_auc=0.9)


def _check(method: str, spearman: float, ratio: float) -> SanityCheck:
    return SanityCheck(method=method, randomisation_spearman=spearman,
                       max_randomisation_spearman=0.3, aorta_mass_ratio=ratio,
                       min_aorta_mass_ratio=3.0, cases=1)


@pytest.mark.req("SRS-EXP-002")
def test_threshold_makes_uncertain_fraction_match_erroneous_fraction() -> None:
    rng = np.random.default_rng(0)
    pairs = []
    for low in (0.0, 2.0, 5.0):  # less certain cases have more wrong voxels
        sd = rng.uniform(low, low + 10, 2000)
        pairs.append((sd, np.where(sd > 7.0, 80.0, 10.0)))  # wrong exactly above 7 HU
    threshold, cases, cost = choose_threshold(pairs, error_hu=50.0)
    assert threshold == pytest.approx(7.0, abs=0.2)
    assert cost < 0.01
    assert [e for _, e in cases] == pytest.approx([0.3, 0.5, 0.8], abs=0.03)
    assert [u for u, _ in cases] == pytest.approx([e for _, e in cases], abs=0.01)
    assert voxel_auc(pairs, 50.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="nothing to calibrate"):
        choose_threshold([(np.zeros(0), np.zeros(0))], 50.0)


@pytest.mark.req("SRS-EXP-002")
def test_confidence_is_low_above_the_limit_or_without_calibration() -> None:
    lumen = np.zeros((4, 4, 4), bool)
    lumen[1:3, 1:3, 1:3] = True
    sd = np.where(lumen, 30.0, 0.0).astype(np.float32)
    sd[1, 1, 1] = 5.0  # 1 of 8 lumen voxels is confident
    grid = CropGrid((0.0, 0.0, 0.0), (2.0, 1.5, 1.5), (4, 4, 4))
    uncertainty = UncertaintyMap(sd_hu=sd, region=lumen, settings=TTASettings(), grid=grid)
    assert uncertainty.fraction_above(20.0) == pytest.approx(7 / 8)
    assert UncertaintyMap(sd, np.zeros_like(lumen), TTASettings(), grid=grid
                          ).fraction_above(20.0) == 1.0  # no lumen: no confidence
    calibrated = Confidence(uncertainty, 20.0, 7 / 8, limit=0.9, seconds=1.0)
    assert not calibrated.low_confidence and calibrated.warning is None
    over = Confidence(uncertainty, 20.0, 7 / 8, limit=0.25, seconds=1.0)
    assert over.low_confidence and over.warning.startswith("LOW_CONFIDENCE: 88%")
    unknown = Confidence(uncertainty, None, None, limit=0.25, seconds=1.0)
    assert unknown.low_confidence and "no uncertainty calibration" in unknown.warning
    assert unknown.to_dict()["calibrated"] is False


@pytest.mark.req("SRS-EXP-004")
def test_methods_are_offered_only_after_passing_their_sanity_checks() -> None:
    evidence = ExplainEvidence(uncertainty=_calibration(), sanity=[
        _check("integrated-gradients", 0.1, 5.0), _check("saliency", 0.6, 5.0),
        _check("occlusion", 0.1, 2.0)])
    assert require_method(evidence, "integrated-gradients") is Method.INTEGRATED_GRADIENTS
    for method, reason in (("saliency", "randomisation Spearman 0.60"),
                           ("occlusion", "aorta mass ratio 2.0")):
        with pytest.raises(ExplainError, match=reason) as refused:
            require_method(evidence, method)
        assert refused.value.code == "EXPLAIN_METHOD_REFUSED"
    for evidence_, method in ((None, "saliency"), (evidence, "gradcam")):
        with pytest.raises(ExplainError) as refused:
            require_method(evidence_, method)
        assert refused.value.code == "EXPLAIN_METHOD_REFUSED"


@pytest.mark.req("SRS-EXP-001")
def test_boxes_stay_inside_the_grid_and_the_aorta_is_the_longest_component() -> None:
    assert centred_box((2, 50, 95), (8, 20, 20), (100, 100, 100)) == Box((0, 40, 80),
                                                                         (8, 60, 100))
    assert centred_box((5, 5, 5), (128, 8, 8), (10, 100, 100)).shape == (10, 8, 8)
    assert Box((2, 2, 2), (4, 4, 4)).grown(3, (5, 5, 5)) == Box((0, 0, 0), (5, 5, 5))
    lumen = np.zeros((30, 20, 20), bool)
    lumen[2:28, 8:11, 8:11] = True  # long tube
    lumen[10:14, 1:6, 1:6] = True  # bigger in-plane, short: a kidney
    assert aortic_component(lumen)[:, 8:11, 8:11].sum() == 26 * 9
    assert not aortic_component(lumen)[10:14, 1:6, 1:6].any()


@pytest.mark.req("SRS-EXP-001")
def test_uncertainty_is_deterministic_and_zero_outside_the_crop(tiny) -> None:
    *_, volume, prediction, cascade = tiny
    first = estimate_uncertainty(prediction, cascade)
    second = estimate_uncertainty(prediction, cascade)
    assert np.array_equal(first.sd_hu, second.sd_hu)
    assert first.settings.samples >= 8
    assert first.sd_hu.shape == prediction.lumen.image.shape and first.sd_hu.max() > 0
    native = first.to_native(volume)
    assert native.shape == volume.shape and native.dtype == np.float32 and native.min() >= 0
    outside = np.ones(volume.shape, bool)
    outside[native_box(first.grid, volume.affine, volume.shape)] = False
    assert not native[outside].any()


@pytest.mark.req("SRS-EXP-001")
def test_a_network_that_cannot_tell_lumen_from_thrombus_is_uncertain(tiny, monkeypatch) -> None:
    """Every TTA sample may agree, yet p = 0.5 is no confident lumen: the within-sample
    variance counts."""
    *_, prediction, cascade = tiny
    monkeypatch.setattr(cascade.lumen_network, "forward",
                        lambda x: torch.cat([x[:, :1] * 0, x[:, :1] * 0 + 0.2,
                                             x[:, :1] * 0 - 30], 1))
    hedging = estimate_uncertainty(prediction, cascade)
    p = 1 / (1 + np.exp(-0.2))  # lumen against background; thrombus e^-30: none
    contrast = prediction.lumen.lumen_enhancement_hu
    np.testing.assert_allclose(hedging.sd_hu, contrast * np.sqrt(p * (1 - p)), rtol=1e-4)


@pytest.mark.req("SRS-EXP-002")
def test_a_sac_the_network_hesitates_over_is_scored_whichever_way_it_was_rendered(
        tiny, monkeypatch) -> None:
    """Lumen p = 0.9 in a tube and 0.3 in the sac around it: the sac is rendered as no lumen,
    yet it is scored and uncertain."""
    *_, prediction, cascade = tiny

    def forward(x: torch.Tensor) -> torch.Tensor:
        lumen = torch.full_like(x[:, :1], -10.0)
        lumen[..., 24:72, 24:72] = float(np.log(0.3 / 0.7))
        lumen[..., 40:56, 40:56] = float(np.log(0.9 / 0.1))
        return torch.cat([torch.zeros_like(lumen), lumen, lumen * 0 - 30], 1)

    monkeypatch.setattr(cascade.lumen_network, "forward", forward)
    hesitant = estimate_uncertainty(prediction, cascade)
    assert hesitant.region[1:-1, 30:66, 30:66].all()  # the sac, not only the rendered tube
    contrast = prediction.lumen.lumen_enhancement_hu
    assert np.median(hesitant.sd_hu[:, 30:38, 30:38]) > 0.4 * contrast  # sqrt(0.21) = 0.46


@pytest.mark.req("SRS-EXP-002")
def test_the_scored_region_is_the_lumen_and_the_possible_lumen_touching_it() -> None:
    lumen = np.zeros((12, 30, 30), bool)
    lumen[:, 12:18, 12:18] = True
    possible = np.zeros(lumen.shape)
    possible[:, 8:22, 8:22] = 0.25  # around the lumen: scored
    possible[:, 1:6, 1:6] = 0.9  # detached: dropped from the rendering, not scored
    possible[:, 24:29, 24:29] = 0.1  # below POSSIBLE_LUMEN
    scored = scored_region(lumen, possible)
    assert scored[1:-1, 9:21, 9:21].all() and not scored[:, :8].any()
    assert not scored[:, 22:].any() and not scored[0].any()  # less its edge


@pytest.mark.req("SRS-EXP-003")
def test_attribution_refuses_empty_or_malformed_regions(tiny) -> None:
    network, config, volume, prediction, _ = tiny
    far = np.asarray(volume.world((0, 0, 0))) - 500.0
    empty = box_mask_mm(prediction, tuple(far - 10), tuple(far + 10))
    with pytest.raises(AttributionError) as refused:
        attribute(prediction, network, config, "saliency", target=empty)
    assert refused.value.code == "EXPLAIN_REGION_EMPTY"
    with pytest.raises(AttributionError) as refused:
        native_mask_to_working(np.ones((3, 3, 3), bool), volume, prediction)
    assert refused.value.code == "EXPLAIN_REGION_INVALID"
    with pytest.raises(ValueError):
        attribute(prediction, network, config, "gradcam")


@pytest.mark.req("SRS-EXP-003")
def test_a_box_in_patient_coordinates_targets_those_voxels(tiny) -> None:
    network, config, volume, prediction, _ = tiny
    centre = np.asarray(volume.world(tuple(n / 2 for n in volume.shape)))
    box = box_mask_mm(prediction, tuple(centre - 10), tuple(centre + 10))
    spacing = np.asarray(config.spacing_mm)
    assert 0 < box.sum() <= np.prod(np.floor(20 / spacing) + 1)
    native = np.zeros(volume.shape, bool)
    native[tuple(slice(n // 2 - 4, n // 2 + 4) for n in volume.shape)] = True
    assert native_mask_to_working(native, volume, prediction).any()
    result = attribute(prediction, network, config, Method.INTEGRATED_GRADIENTS, target=box)
    assert result.target_voxels == int(box.sum())
    assert result.convergence_delta is not None
    assert result.convergence_delta <= 0.1 * abs(result.target_hu) + 0.5
    assert result.values.shape == result.crop.shape
    assert np.isfinite(result.values).all() and np.abs(result.values).sum() > 0
