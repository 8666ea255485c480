"""Phantom studies on disk: DICOM series with scanner-like headers, NIfTI, labels, manifest, CLI."""

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.imaging.nifti import read_nifti
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.phantom import OutputFormat
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import PHANTOM_NOTICE, Phase, generate_study
from tests.support.dciodvfy import dciodvfy_errors

SEED = 11


@pytest.fixture(scope="module")
def dicom_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("phantom-dicom")
    return out, generate_study(1, out, seed=SEED)


@pytest.fixture(scope="module")
def case():
    return generate_case(SEED, "small")


@pytest.mark.req("SRS-PHA-006")
def test_each_phase_is_a_readable_series_with_the_case_values(dicom_study, case) -> None:
    out, manifest = dicom_study
    (entry,) = manifest["cases"]
    arrays = {Phase.NCCT: case.ncct, Phase.ARTERIAL: case.arterial,
              Phase.PORTAL_VENOUS: case.portal_venous}
    for phase, expected in arrays.items():
        volume = read_series(out / entry["series"][phase.value]["path"])
        np.testing.assert_allclose(volume.array, expected, atol=0.5 + 1e-3)
        np.testing.assert_allclose(volume.affine, case.affine, atol=1e-4)
    uids = {entry["series"][p.value]["series_instance_uid"] for p in Phase}
    assert len(uids) == 3


@pytest.mark.req("SRS-PHA-006")
def test_headers_say_contrast_only_on_enhanced_series_and_say_phantom(dicom_study) -> None:
    out, manifest = dicom_study
    (entry,) = manifest["cases"]
    for phase in Phase:
        first = sorted((out / entry["series"][phase.value]["path"]).iterdir())[0]
        ds = pydicom.dcmread(first)
        contrast = [e.keyword for e in ds if e.keyword.startswith("Contrast")]
        if phase is Phase.NCCT:
            assert contrast == []
        else:
            assert ds.ContrastBolusAgent and ds.ContrastBolusRoute == "IV"
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert "SyntheticData" not in ds  # must look acquired to the product under test
        assert ds.ImageComments == PHANTOM_NOTICE
        assert str(ds.PatientName).startswith("PHANTOM^")
        assert ds.BodyPartExamined == "ABDOMEN" and float(ds.KVP) > 0
        assert dciodvfy_errors(first) == []


@pytest.mark.req("SRS-PHA-006", "SRS-PHA-005")
def test_manifest_records_parameters_and_hashes(dicom_study, case) -> None:
    out, manifest = dicom_study
    assert json.loads((out / "manifest.json").read_text()) == manifest
    (entry,) = manifest["cases"]
    assert manifest["notice"] == PHANTOM_NOTICE
    assert entry["parameters"] == case.parameters.to_dict()
    assert entry["shape"] == list(case.labels.shape)
    labels = nib.load(out / entry["labels"]["path"])
    assert labels.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(read_nifti(out / entry["labels"]["path"]).array, case.labels)
    series = out / entry["series"]["ncct"]["path"]
    digest = hashlib.sha256()
    for file in sorted(series.iterdir()):
        digest.update(file.relative_to(series.parent).as_posix().encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    assert entry["series"]["ncct"]["sha256"] == digest.hexdigest()
    assert entry["series"]["ncct"]["files"] == case.labels.shape[0]


@pytest.mark.req("SRS-PHA-006", "SRS-IMG-010")
def test_nifti_format_holds_the_same_images(tmp_path: Path, case) -> None:
    manifest = generate_study(1, tmp_path, seed=SEED, fmt=OutputFormat.NIFTI)
    (entry,) = manifest["cases"]
    volume = read_nifti(tmp_path / entry["series"]["arterial"]["path"])
    np.testing.assert_array_equal(volume.array, case.arterial)
    np.testing.assert_allclose(volume.affine, case.affine, atol=1e-4)


@pytest.mark.req("SRS-PHA-006", "SRS-PKG-003")
def test_cli_generates_and_prints_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["phantom", "generate", "--n", "1", "--seed", "3",
                                      "--out", str(tmp_path), "--format", "nifti"])
    assert result.exit_code == 0, result.output
    assert "PH000003" in result.output and "manifest.json" in result.output
    assert (tmp_path / "PH000003" / "ncct.nii.gz").is_file()


@pytest.mark.req("SRS-PKG-003")
def test_cli_refuses_bad_arguments_and_settings_without_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from digital_contrast.config import get_settings

    runner = CliRunner()
    bad_format = runner.invoke(app, ["phantom", "generate", "--format", "png",
                                     "--out", str(tmp_path)])
    assert bad_format.exit_code == 2 and "Traceback" not in bad_format.output
    monkeypatch.setenv("DC_MAX_UPLOAD_BYTES", "-1")
    get_settings.cache_clear()
    try:
        bad_env = runner.invoke(app, ["version"])
    finally:
        get_settings.cache_clear()
    assert bad_env.exit_code == 2
    assert "CONFIG_INVALID" in bad_env.output and "DC_MAX_UPLOAD_BYTES" in bad_env.output
    assert "Traceback" not in bad_env.output


@pytest.mark.req("SRS-PKG-003")
def test_console_script_is_installed() -> None:
    import os
    import subprocess
    import sys

    script = Path(sys.executable).parent / "digital-contrast"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False,
                            env=os.environ | {"COLUMNS": "200"})
    assert result.returncode == 0
    assert "phantom" in result.stdout and "not clinically validated" in result.stdout
