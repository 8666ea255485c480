"""synthesize: conformity first, additive clamped enhancement, determinism, resampling."""

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
from scipy import ndimage

from digital_contrast.imaging.conformity import ConformityError
from digital_contrast.imaging.resampling import to_native_grid, to_working_spacing
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.inference.lumen_step import AortaNotFoundError
from digital_contrast.inference.synthesize import (
    predict_enhancement,
    predict_working,
    to_native_enhancement,
)
from digital_contrast.model.blood_reference import BloodReference
from digital_contrast.model.crop_grid import native_box
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
