"""synthesize: conformity first, additive clamped enhancement, determinism, resampling."""

import copy
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.transforms import Spacing, SpatialResample
from scipy import ndimage

from digital_contrast.imaging.conformity import ConformityError
from digital_contrast.imaging.ct_image import HU_MAX, HU_MIN
from digital_contrast.imaging.resampling import (
    box_affine,
    box_shape,
    to_native_grid,
    to_working_spacing,
)
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.lumen_step import AortaNotFoundError, predict_lumen
from digital_contrast.inference.synthesize import (
    BLEND_MODE,
    OVERLAP,
    ROI_SIZE,
    predict_enhancement,
    predict_working,
    source_kvp,
    to_native_enhancement,
)
from digital_contrast.inference.tissue_gate import SMOOTHING_MM
from digital_contrast.model.blood_reference import BloodReference
from digital_contrast.model.crop_grid import native_box
from digital_contrast.model.determinism import deterministic
from digital_contrast.model.network import scale_input
from digital_contrast.model.network_config import output_scale_hu
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.phantom.labels import Label
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle

AAA = load_use_case("aaa-cta")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthesize")


@pytest.fixture(scope="module")
def registry_uri(workspace: Path, empty_registry_db: Path) -> str:
    shutil.copy(empty_registry_db, workspace / "mlflow.db")
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    registry = ModelRegistry(uri)
    bundle = tiny_bundle(workspace / "bundle", AAA, seed=3)
    registered = registry.attach_validation(registry.register(bundle), record_for(bundle))
    registry.promote(registered.name, registered.version)
    return uri


@pytest.fixture(scope="module")
def model(registry_uri: str) -> LockedModel:
    return LockedModel.load("aaa-cta", registry=ModelRegistry(registry_uri))


@pytest.fixture(scope="module")
def case():
    return generate_case(5, "small")


@pytest.fixture(scope="module")
def series(case, workspace: Path) -> dict[Phase, Path]:
    folders = {}
    for phase in (Phase.NCCT, Phase.ARTERIAL):
        folders[phase] = workspace / phase.value
        write_phase_dicom(case, phase, folders[phase])
    return folders


@pytest.mark.req("SRS-INF-004")
def test_out_of_envelope_input_never_reaches_the_network(model: LockedModel, series,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(model.network, "forward", lambda x: calls.append(x) or x)
    with pytest.raises(ConformityError) as info:
        synthesize(read_series(series[Phase.ARTERIAL]), "aaa-cta", model)
    assert info.value.code == "CONF_CONTRAST_AGENT" and calls == []


@pytest.mark.req("SRS-INF-005", "SRS-INF-006")
def test_result_is_additive_clamped_and_fully_recorded(model: LockedModel, series) -> None:
    ncct = read_series(series[Phase.NCCT])
    result = synthesize(ncct, "aaa-cta", model)
    out = result.volume.array
    assert out.shape == ncct.shape and out.dtype == np.float32
    np.testing.assert_array_equal(result.volume.affine, ncct.affine)
    assert result.volume.source is ncct.source
    assert (out >= np.minimum(ncct.array, 3071) - 1e-4).all()  # never darker
    assert out.min() >= -1024 and out.max() <= 3071
    record = result.to_dict()
    assert record["model"]["bundle_sha256"] == model.bundle_sha256
    assert record["conformity"]["passed"] is True
    assert record["evidence"] == AAA.evidence and "phantom" in record["evidence"]
    for key in ("threads", "cpu_capability", "torch", "monai", "numpy"):
        assert record["platform"][key]
    assert set(record["timings_s"]) >= {"conformity", "inference"}
    assert len(record["output_sha256"]) == 64 != record["input_sha256"]
    json.dumps(record)  # serialisable as result.json


@pytest.mark.req("SRS-INF-005", "SRS-INF-013")
def test_a_first_stage_without_aorta_is_refused(model: LockedModel, series,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ncct = read_series(series[Phase.NCCT])
    monkeypatch.setattr(model.network, "forward", lambda x: torch.full_like(x[:, :1], -5.0))
    with pytest.raises(AortaNotFoundError) as info:
        synthesize(ncct, "aaa-cta", model)
    assert info.value.code == "AORTA_NOT_FOUND"


@pytest.mark.req("SRS-INF-005", "SRS-INF-013")
def test_negative_enhancement_is_clamped(model: LockedModel, case) -> None:
    volume = Volume(case.ncct, case.affine)
    working = predict_working(volume, model.cascade, case.parameters.scanner.kvp)
    negative = MetaTensor(torch.full_like(working.enhancement.as_tensor(), -5.0),
                          affine=working.enhancement.affine)
    background = np.zeros_like(working.lumen.probabilities)
    background[0] = 1.0  # stage 2 sees no lumen: stage 1's negative values everywhere
    nothing = replace(working, enhancement=negative,
                      lumen=replace(working.lumen, probabilities=background))
    assert not to_native_enhancement(nothing, volume, model.network_config).any()


_SCRIPT = """
import sys
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.model.registry import ModelRegistry
model = LockedModel.load("aaa-cta", registry=ModelRegistry(sys.argv[1]))
print(synthesize(read_series(sys.argv[2]), "aaa-cta", model).output_sha256)
"""


@pytest.mark.req("SRS-INF-006")
def test_two_fresh_processes_give_bit_identical_output(registry_uri: str, series) -> None:
    hashes = set()
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", _SCRIPT, registry_uri,
                                 str(series[Phase.NCCT])], capture_output=True, text=True,
                                check=True, env=os.environ | {"PYTHONHASHSEED": "random"},
                                cwd=REPO)
        hashes.add(result.stdout.strip().splitlines()[-1])
    assert len(hashes) == 1 and len(hashes.pop()) == 64


@pytest.mark.req("SRS-INF-007")
def test_resampling_round_trip_keeps_a_smooth_field(case) -> None:
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in case.ncct.shape),
                          indexing="ij")
    field = (np.sin(k / 9) + np.cos(j / 25) + i / 200).astype(np.float32)
    working = to_working_spacing(field, case.affine, AAA.preprocessing.working_spacing_mm)
    assert tuple(float(s) for s in np.linalg.norm(working.affine.numpy()[:3, :3], axis=0)) == \
        pytest.approx(AAA.preprocessing.working_spacing_mm)
    back = to_native_grid(working, case.affine, case.ncct.shape)
    span = field.max() - field.min()
    assert np.abs(back - field)[2:-2, 2:-2, 2:-2].max() < 0.01 * span


@pytest.mark.req("SRS-INF-010")
def test_enhancement_follows_tube_voltage_and_spares_fat_and_bone(
        model: LockedModel, series, case, monkeypatch: pytest.MonkeyPatch) -> None:
    ncct = read_series(series[Phase.NCCT])
    # Stage 1: one output unit everywhere; stage 2: lumen everywhere in its crop.
    monkeypatch.setattr(model.network, "forward", lambda x: torch.ones_like(x[:, :1]))
    monkeypatch.setattr(model.cascade.lumen_network, "forward",
                        lambda x: torch.cat([x[:, :1] * 0, x[:, :1] * 0 + 20, x[:, :1] * 0], 1))
    # Stage 1's "aorta" is then the whole body: the blood is read as 40 HU.
    monkeypatch.setattr("digital_contrast.inference.lumen_step.blood_reference",
                        lambda *_: BloodReference(40.0, 1000, 5.0))
    result = synthesize(ncct, "aaa-cta", model)
    added = result.volume.array - ncct.array
    labels, kvp = case.labels, case.parameters.scanner.kvp
    assert result.working is not None
    lumen = result.working.lumen
    lumen_hu = model.cascade.lumen_config.contrast.lumen_hu_at(kvp)
    core = ndimage.binary_erosion(labels == Label.AORTA_LUMEN, iterations=2)
    assert core.sum() > 100
    assert lumen.lumen_enhancement_hu == pytest.approx(lumen_hu - lumen.blood.hu)
    assert np.median(added[core]) == pytest.approx(lumen.lumen_enhancement_hu, rel=1e-4)
    # Outside stage 2's crop, stage 1's output unit is HU at 120 kVp, scaled to the series'.
    outside = np.ones(labels.shape, dtype=bool)
    outside[native_box(lumen.grid, case.affine, labels.shape)] = False
    muscle = ndimage.binary_erosion(labels == Label.MUSCLE) & outside
    assert muscle.sum() > 100
    expected = 100.0 * (120.0 / kvp) ** AAA.preprocessing.iodine_kvp_exponent
    assert np.median(added[muscle]) == pytest.approx(expected, rel=1e-4)
    for tissue in (Label.FAT_SUBCUTANEOUS, Label.BONE_CORTICAL):
        inner = ndimage.binary_erosion(labels == tissue)
        assert inner.sum() > 100
        assert np.median(added[inner]) == 0.0


@pytest.mark.req("SRS-INF-010")
def test_kvp_normalised_model_needs_the_tube_voltage(model: LockedModel, case) -> None:
    with pytest.raises(ValueError, match="tube voltage"):
        predict_enhancement(Volume(case.ncct, case.affine), model.cascade, kvp=None)


def _reference_synthesis(volume: Volume, cascade: Cascade, kvp: float) -> np.ndarray:
    """The computation the fast path must equal, written plainly: scipy's filters and MONAI's
    resamplers on whole grids, one window at a time, the networks in their default layout."""
    config, resampler = cascade.network_config, SpatialResample(dtype=torch.float32)
    network, lumen_network = (copy.deepcopy(n).to(memory_format=torch.contiguous_format)
                              for n in (cascade.network, cascade.lumen_network))
    sampled = np.linalg.norm(volume.affine[:3, :3], axis=0)
    sigma = [max(0.0, (w / s - 1.0) / 2.0) for w, s in zip(config.spacing_mm, sampled, strict=True)]
    with deterministic(0, 2), torch.inference_mode():
        working = Spacing(pixdim=config.spacing_mm, padding_mode="border", dtype=torch.float32)(
            MetaTensor(torch.from_numpy(ndimage.gaussian_filter(volume.array, sigma,
                                                                truncate=3.0))[None],
                       affine=torch.from_numpy(volume.affine)))
        output = sliding_window_inference(
            scale_input(working.as_tensor()[None], config), roi_size=ROI_SIZE, sw_batch_size=1,
            predictor=network, overlap=OVERLAP, mode=BLEND_MODE, padding_mode="replicate")
        enhancement = MetaTensor(output[0] * output_scale_hu(config, kvp), affine=working.affine)
        lumen = predict_lumen(lumen_network, cascade.lumen_config, volume.array, volume.affine,
                              working[0].numpy(), enhancement[0].numpy(),
                              working.affine.numpy(), kvp)
        native = resampler(enhancement, dst_affine=torch.from_numpy(volume.affine),
                           spatial_size=volume.shape, padding_mode="border")[0].numpy()
        box = native_box(lumen.grid, volume.affine, volume.shape)
        assert box is not None
        weight, rendered = (resampler(
            MetaTensor(torch.from_numpy(a)[None], affine=torch.from_numpy(lumen.grid.affine)),
            dst_affine=torch.from_numpy(box_affine(volume.affine, box)),
            spatial_size=box_shape(box), padding_mode="zeros")[0].numpy()
            for a in (lumen.region(), lumen.enhancement()))
    native[box] += weight * (rendered - native[box])
    smooth = ndimage.gaussian_filter(volume.array, [SMOOTHING_MM / s for s in volume.spacing],
                                     truncate=3.0)
    assert config.tissue_gate_hu is not None
    low, full, high, zero = config.tissue_gate_hu
    gate = np.minimum(np.clip((smooth - low) / (full - low), 0.0, 1.0),
                      np.clip((zero - smooth) / (zero - high), 0.0, 1.0))
    return np.clip(volume.array + np.maximum(native, 0.0) * gate, HU_MIN, HU_MAX)


@pytest.mark.req("SRS-INF-015")
def test_synthesis_equals_the_reference_computation_within_1_hu_in_the_body(
        model: LockedModel, series) -> None:
    ncct = read_series(series[Phase.NCCT])
    kvp = source_kvp(ncct)
    assert kvp is not None
    reference = _reference_synthesis(ncct, model.cascade, kvp)
    synthetic = synthesize(ncct, "aaa-cta", model).volume.array
    body = ncct.array > -500.0
    assert (np.abs(synthetic - reference)[body].max() <= 1.0
            and np.abs(synthetic - reference).max() <= 1.0)
    assert (synthetic - ncct.array)[body].max() > 50.0  # the comparison saw an enhancement
