"""The explain science on the trained aaa-cta model: sanity checks with their fixed bounds, the
recorded calibration, and uncertainty out of distribution (phantom cases).

The trained model is the newest reference model released under releases/models/, or else the
newest candidate filed under validation/reports/models/ (its protocol result does not matter
here: these are properties of the explanation of a trained cascade)."""

import numpy as np
import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.explain.attribution import Method
from digital_contrast.explain.evidence import SANITY_SEEDS
from digital_contrast.explain.sanity import (
    MAX_RANDOMISATION_SPEARMAN,
    MIN_AORTA_MASS_RATIO,
    check_case,
    randomised_copy,
)
from digital_contrast.explain.steps import ExplainError, require_method
from digital_contrast.explain.uncertainty import estimate_uncertainty
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.synthesize import predict_working
from digital_contrast.keys.signing import trusted_keys
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.reference import BUNDLE_DIR, RECORD, reference_release
from digital_contrast.model.validation_record import SignedRecord
from digital_contrast.phantom.case import generate_case
from digital_contrast.release.model_release import CANDIDATES_DIR
from digital_contrast.usecases import load_use_case

AAA = load_use_case("aaa-cta")
OOD_SEEDS = (8200, 8201)


@pytest.fixture(scope="module")
def trained():
    release = reference_release(AAA, REPO_ROOT / "releases") or \
        reference_release(AAA, CANDIDATES_DIR)
    assert release is not None, "a trained cascade is released or filed"
    bundle = read_bundle(release / BUNDLE_DIR)
    record = SignedRecord.read(release / RECORD, trusted_keys()).record  # the release key's
    assert record.bundle_sha256 == bundle.sha256 and record.explain is not None
    return Cascade.of(bundle), record


@pytest.mark.req("SRS-EXP-004")
@pytest.mark.parametrize("method", list(Method), ids=lambda m: m.value)
def test_attribution_sanity_checks_hold_for_offered_methods_only(trained, method) -> None:
    cascade, record = trained
    recorded = record.explain.sanity_of(method.value)
    assert recorded is not None and recorded.cases >= 1
    assert (recorded.max_randomisation_spearman, recorded.min_aorta_mass_ratio) == (
        MAX_RANDOMISATION_SPEARMAN, MIN_AORTA_MASS_RATIO)  # fixed bounds, never per model
    spearman, ratio = check_case(SANITY_SEEDS[0], method, cascade,
                                 randomised_copy(cascade.network_config))
    # Deterministic: the recorded worst case over the sanity seeds covers this one.
    assert spearman <= recorded.randomisation_spearman + 1e-3
    assert ratio >= recorded.aorta_mass_ratio - 1e-3
    if recorded.passed:
        assert spearman <= MAX_RANDOMISATION_SPEARMAN and ratio >= MIN_AORTA_MASS_RATIO
        assert require_method(record.explain, method) is method
    else:
        with pytest.raises(ExplainError) as refused:
            require_method(record.explain, method)
        assert refused.value.code == "EXPLAIN_METHOD_REFUSED"


@pytest.mark.req("SRS-EXP-002")
def test_the_calibration_is_recorded_and_informative(trained) -> None:
    _, record = trained
    calibration = record.explain.uncertainty
    assert calibration.tta.samples >= 8 and calibration.threshold_hu > 0
    assert len(calibration.cases) >= 8 and "held out" in calibration.dataset
    assert calibration.voxel_auc > 0.6  # the spread ranks erroneous voxels better than chance
    assert calibration.mean_abs_fraction_error < 0.25


def _mean_lumen_spread(cascade, case, ncct: np.ndarray) -> float:
    prediction = predict_working(Volume(ncct, case.affine), cascade,
                                 case.parameters.scanner.kvp)
    uncertainty = estimate_uncertainty(prediction, cascade)
    assert uncertainty.region.any()
    return float(uncertainty.sd_hu[uncertainty.region].mean())


def _in_distribution(seed: int, **overrides: float):
    return generate_case(seed, noise_sd_hu=15.0, **overrides)  # training noise: 8-30 HU


@pytest.mark.req("SRS-EXP-005")
@pytest.mark.parametrize("seed", [
    pytest.param(OOD_SEEDS[0], marks=pytest.mark.xfail(strict=True, reason=(
        "known anomaly of candidate 2.1.0 (ANOM-002): with 90 HU noise the mean spread over "
        "the scored lumen falls in seed 8200 (62.5 -> 49.4 HU)"))),
    *OOD_SEEDS[1:]])
def test_uncertainty_rises_with_noise_far_above_the_training_range(trained, seed: int) -> None:
    cascade, _ = trained
    case = _in_distribution(seed)
    noisy = (case.ncct + np.random.default_rng(0).normal(0.0, 90.0, case.ncct.shape)
             ).astype(np.float32)
    assert _mean_lumen_spread(cascade, case, noisy) > _mean_lumen_spread(
        cascade, case, case.ncct)


@pytest.mark.req("SRS-EXP-005")
@pytest.mark.xfail(strict=True, reason=(
    "known anomaly of candidate 1.0.0: the TTA spread over the lumen rises for a normal "
    "(22 mm) aorta in seed 8200 (17.9 -> 20.5 HU) but falls in seed 8201 (25.1 -> 20.1 HU); "
    "test-time augmentation measures local sensitivity, not anatomy it never saw"))
def test_uncertainty_rises_for_a_non_aneurysmal_aorta(trained) -> None:
    cascade, _ = trained
    for seed in OOD_SEEDS:
        case = _in_distribution(seed)
        normal = _in_distribution(seed, aneurysm_max_diameter_mm=22.0, neck_diameter_mm=20.0,
                                  distal_aorta_diameter_mm=16.0)  # training: 30-80 mm sacs
        assert _mean_lumen_spread(cascade, normal, normal.ncct) > _mean_lumen_spread(
            cascade, case, case.ncct), seed
