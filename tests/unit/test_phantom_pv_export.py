"""abdomen-pv phantom studies on disk: headers, manifest, CLI, and the abdomen-pv envelope."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.imaging.conformity import check_conformity
from digital_contrast.imaging.nifti import read_nifti
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import PHANTOM_NOTICE, Phase, generate_study
from digital_contrast.phantom.parameters import PhantomParameters
from digital_contrast.usecases.catalog import load_use_case

SEED = 7  # a cirrhotic case with a cyst, 100 kVp, 5 mm slices


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("phantom-pv")
    return out, generate_study(1, out, seed=SEED, use_case="abdomen-pv")


@pytest.mark.req("SRS-PHA-011")
def test_non_contrast_series_passes_the_abdomen_pv_envelope(study: tuple[Path, dict]) -> None:
    out, manifest = study
    (entry,) = manifest["cases"]
    pv = load_use_case("abdomen-pv")
    ncct = read_series(out / entry["series"]["ncct"]["path"])
    verdict = check_conformity(ncct, pv)
    assert verdict.passed and not verdict.warnings, [c.to_dict() for c in verdict.failures]
    codes = {c.code for c in verdict.checks}
    assert {"CONF_BODY_PART", "CONF_COVERAGE", "CONF_PIXEL_SPACING", "CONF_SLICE_THICKNESS",
            "CONF_KVP", "CONF_CONTRAST_IN_AORTA", "CONF_HU_RANGE"} <= codes
    # The enhanced series is refused, by its header and by its image.
    enhanced = check_conformity(read_series(out / entry["series"]["portal_venous"]["path"]), pv)
    assert {"CONF_CONTRAST_AGENT", "CONF_CONTRAST_IN_AORTA"} <= {
        c.code for c in enhanced.failures}


@pytest.mark.req("SRS-PHA-011")
def test_headers_are_an_abdominal_study_with_contrast_only_on_enhanced_series(
        study: tuple[Path, dict]) -> None:
    out, manifest = study
    (entry,) = manifest["cases"]
    assert entry["case_id"] == "PV000007" and manifest["use_case"] == "abdomen-pv"
    uids = set()
    for phase in Phase:
        first = sorted((out / entry["series"][phase.value]["path"]).iterdir())[0]
        ds = pydicom.dcmread(first)
        contrast = [e.keyword for e in ds if e.keyword.startswith("Contrast")]
        assert (contrast == []) == (phase is Phase.NCCT)
        assert ds.BodyPartExamined == "ABDOMEN" and ds.StudyDescription == "CT ABDOMEN"
        assert ds.PatientID == "PV000007" and ds.ImageComments == PHANTOM_NOTICE
        assert float(ds.SliceThickness) == entry["spacing_mm"][0]
        uids.add(ds.StudyInstanceUID)
    assert len(uids) == 1
    # The aaa-cta case of the same seed is another study.
    base = pydicom.dcmread(sorted((out / entry["series"]["ncct"]["path"]).iterdir())[0])
    assert base.StudyInstanceUID != _base_study_uid(SEED)


def _base_study_uid(seed: int) -> str:
    from digital_contrast.imaging.uids import uid_from

    return str(uid_from("phantom-study", str(seed), "small"))


@pytest.mark.req("SRS-PHA-011", "SRS-PHA-012")
def test_manifest_records_the_extension_and_renders_the_same_case(
        study: tuple[Path, dict]) -> None:
    out, manifest = study
    assert json.loads((out / "manifest.json").read_text()) == manifest
    (entry,) = manifest["cases"]
    assert entry["use_case"] == "abdomen-pv"
    assert entry["parameters"]["extension"]["use_case"] == "abdomen-pv"
    p = PhantomParameters.from_dict(entry["parameters"])
    case = generate_case(SEED, "small", "abdomen-pv")
    assert p == case.parameters
    np.testing.assert_array_equal(read_nifti(out / entry["labels"]["path"]).array, case.labels)


@pytest.mark.req("SRS-PHA-011")
def test_cli_generates_abdomen_pv_cases_and_refuses_unknown_use_cases(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["phantom", "generate", "--n", "1", "--seed", "1",
                                 "--out", str(tmp_path), "--format", "nifti",
                                 "--use-case", "abdomen-pv"])
    assert result.exit_code == 0, result.output
    assert "PV000001" in result.output and "cirrhotic" in result.output
    assert (tmp_path / "PV000001" / "portal_venous.nii.gz").is_file()
    bad = runner.invoke(app, ["phantom", "generate", "--out", str(tmp_path),
                              "--use-case", "knee-mr"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
