"""A bundle of the first stage alone: its files and hash, synthesis without a second stage and
its confidence from test-time augmentation of stage 1."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from digital_contrast.explain.calibration import calibrate, case_pairs
from digital_contrast.explain.steps import assess_confidence
from digital_contrast.explain.uncertainty import (
    ENHANCED_TISSUE_HU,
    TISSUE_REGION,
    estimate_uncertainty,
)
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.inference.cascade import Cascade
from digital_contrast.model.bundle import (
    FIRST_STAGE_FILES,
    LUMEN_WEIGHTS,
    BundleError,
    bundle_sha256,
    read_bundle,
    write_bundle,
)
from digital_contrast.model.explain_evidence import TTASettings
from digital_contrast.model.network import build_network
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle, tiny_lumen_stage, tiny_network

AAA = load_use_case("aaa-cta")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("first-stage")


@pytest.fixture(scope="module")
def model(workspace: Path, empty_registry_db: Path) -> LockedModel:
    shutil.copy(empty_registry_db, workspace / "mlflow.db")
    registry = ModelRegistry(f"sqlite:///{workspace / 'mlflow.db'}")
    bundle = tiny_bundle(workspace / "bundle", AAA, seed=3, second_stage=False)
    registered = registry.attach_validation(registry.register(bundle), record_for(bundle))
    registry.promote(registered.name, registered.version)
    return LockedModel.load("aaa-cta", registry=registry)


@pytest.fixture(scope="module")
def ncct(workspace: Path) -> Volume:
    write_phase_dicom(generate_case(5, "small"), Phase.NCCT, workspace / "ncct")
    return read_series(workspace / "ncct")


@pytest.mark.req("SRS-MOD-010")
def test_a_first_stage_bundle_is_hashed_over_its_two_files(tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "b", AAA, second_stage=False)
    assert sorted(p.name for p in bundle.folder.iterdir()) == sorted(FIRST_STAGE_FILES)
    assert bundle.manifest.lumen_stage is None and bundle.files == FIRST_STAGE_FILES
    assert bundle.sha256 == bundle_sha256(bundle.folder, FIRST_STAGE_FILES)
    with pytest.raises(ValueError, match="no second stage"):
        bundle.lumen_state_dict()
    # Weights of a second stage the manifest does not name are not silently ignored.
    (bundle.folder / LUMEN_WEIGHTS).write_bytes(b"stray")
    with pytest.raises(BundleError) as info:
        read_bundle(bundle.folder)
    assert info.value.code == "BUNDLE_INVALID" and LUMEN_WEIGHTS in str(info.value)


@pytest.mark.req("SRS-MOD-010")
@pytest.mark.parametrize("half", ["configuration", "weights"])
def test_half_a_second_stage_is_refused_before_anything_is_written(tmp_path: Path,
                                                                   half: str) -> None:
    network = tiny_network(AAA)
    state = build_network(network).state_dict()
    stage = tiny_lumen_stage() if half == "configuration" else None
    weights = {"w": torch.zeros(1)} if half == "weights" else None
    with pytest.raises(ValueError, match="both its configuration and its weights"):
        write_bundle(tmp_path / "b", use_case=AAA, model_version="0.0.1", network=network,
                     state_dict=state, lumen_stage=stage, lumen_state_dict=weights)
    assert not (tmp_path / "b").exists()


@pytest.mark.req("SRS-INF-016")
def test_synthesis_by_the_first_stage_alone_adds_its_gated_enhancement(
        model: LockedModel, ncct: Volume, monkeypatch: pytest.MonkeyPatch) -> None:
    assert model.cascade.lumen_network is None
    result = synthesize(ncct, "aaa-cta", model)
    assert result.working is not None and result.working.lumen is None
    added = result.volume.array - ncct.array
    assert (added >= -1e-3).all() and added.max() > 1.0  # the biased tiny stage 1 enhances
    # Stage 1 seeing no enhancement: no aorta to find (a cascade would stop with
    # AORTA_NOT_FOUND), nothing added.
    monkeypatch.setattr(model.network, "forward", lambda x: torch.full_like(x[:, :1], -5.0))
    plain = synthesize(ncct, "aaa-cta", model)
    np.testing.assert_array_equal(plain.volume.array, np.clip(ncct.array, -1024, 3071))


@pytest.mark.req("SRS-INF-016")
def test_first_stage_confidence_scores_the_enhanced_tissue(model: LockedModel,
                                                           ncct: Volume) -> None:
    result = synthesize(ncct, "aaa-cta", model)
    assert result.working is not None
    settings = TTASettings(samples=3)
    first = estimate_uncertainty(result.working, model.cascade, settings)
    again = estimate_uncertainty(result.working, model.cascade, settings)
    np.testing.assert_array_equal(first.sd_hu, again.sd_hu)  # deterministic
    assert first.region_name == TISSUE_REGION and first.grid is None
    assert first.sd_hu.shape == tuple(result.working.image.shape[1:])
    assert first.region.any() and (first.sd_hu > 0).any()
    native = first.to_native(ncct)
    assert native.shape == ncct.shape and native.min() >= 0.0
    # The scored region: what the unperturbed sample (the synthesis itself) enhances by
    # 10 HU or more, less its edge.
    enhancement = result.working.enhancement.as_tensor()[0].numpy()
    np.testing.assert_array_equal(first.region,
                                  ndimage.binary_erosion(enhancement >= ENHANCED_TISSUE_HU))
    assert first.fraction_above(float(first.sd_hu.max())) == 0.0
    assert first.fraction_above(-1.0) == 1.0
    confidence = assess_confidence(result, model).to_dict()
    assert confidence["scored_region"] == TISSUE_REGION
    assert confidence["uncertain_lumen_fraction"] is None  # the record carries no calibration
    assert confidence["low_confidence"] is True


@pytest.mark.req("SRS-INF-016")
def test_a_first_stage_bundle_is_calibrated_on_its_use_case_phantom(tmp_path: Path) -> None:
    pv = load_use_case("abdomen-pv")
    bundle = tiny_bundle(tmp_path / "pv", pv, seed=1, second_stage=False)
    calibration = calibrate(Cascade.of(bundle), (8000,), settings=TTASettings(samples=2),
                            target_phase=pv.target_phase.value,
                            error_hu=pv.explain.calibration_error_hu, extension=pv.id)
    assert calibration.error_hu == 20.0 and len(calibration.cases) == 1
    assert calibration.dataset.endswith("abdomen-pv extension")
    # The pairs are of the abdomen-pv case of the seed: the enhanced tissue of its working grid.
    spread, error = case_pairs(8000, Cascade.of(bundle), TTASettings(samples=2),
                               "portal_venous", "abdomen-pv")
    assert spread.shape == error.shape and spread.size > 10_000
