"""Intended-use envelope: each check tripped by a phantom variant, and the verdict's shape."""

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from digital_contrast.imaging.conformity import (
    ConformityError,
    Outcome,
    Verdict,
    check_conformity,
    require_conformity,
)
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.volume import Volume
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.phantom.variants import with_oral_contrast, with_stent_graft
from digital_contrast.usecases import load_use_case

AAA = load_use_case("aaa-cta")
SEED = 3


@pytest.fixture(scope="module")
def case():
    return generate_case(SEED, "small")


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformity")


def _read(case, phase: Phase, folder: Path) -> Volume:
    write_phase_dicom(case, phase, folder)
    return read_series(folder)


@pytest.fixture(scope="module")
def ncct(case, phantom_dir: Path) -> Volume:
    return _read(case, Phase.NCCT, phantom_dir / "ncct")


@pytest.fixture(scope="module")
def arterial(case, phantom_dir: Path) -> Volume:
    return _read(case, Phase.ARTERIAL, phantom_dir / "arterial")


def _with_header(volume: Volume, remove: tuple[str, ...] = (), **values: object) -> Volume:
    assert volume.source is not None
    header = copy.deepcopy(volume.source.header)
    for keyword in remove:
        if keyword in header:
            delattr(header, keyword)
    for keyword, value in values.items():
        setattr(header, keyword, value)
    return Volume(volume.array, volume.affine, replace(volume.source, header=header))


def _outcomes(verdict: Verdict) -> dict[str, Outcome]:
    return {c.code: c.outcome for c in verdict.checks}


def _failed(verdict: Verdict) -> set[str]:
    return {c.code for c in verdict.failures}


@pytest.mark.req("SRS-CONF-001")
def test_non_contrast_phantom_passes_every_check_and_all_are_reported(ncct: Volume) -> None:
    verdict = require_conformity(ncct, AAA)
    assert verdict.passed and not verdict.warnings
    codes = set(_outcomes(verdict))
    assert codes >= {"CONF_MODALITY", "CONF_SYNTHETIC_INPUT", "CONF_DERIVED_INPUT",
                     "CONF_VIRTUAL_NON_CONTRAST", "CONF_CONTRAST_AGENT", "CONF_PATIENT_AGE",
                     "CONF_BODY_PART", "CONF_COVERAGE", "CONF_ORIENTATION",
                     "CONF_SLICE_THICKNESS", "CONF_PIXEL_SPACING", "CONF_KVP", "CONF_KERNEL",
                     "CONF_LOSSY", "CONF_HU_RANGE", "CONF_AORTA_NOT_LOCATED",
                     "CONF_CONTRAST_IN_AORTA", "CONF_METAL", "CONF_ORAL_CONTRAST"}
    for check in verdict.checks:
        assert check.measured and check.expected and check.message == ""
    as_dict = verdict.to_dict()
    assert as_dict["passed"] is True and as_dict["use_case"] == "aaa-cta"


@pytest.mark.req("SRS-CONF-001", "SRS-CONF-005")
def test_refusal_carries_first_code_and_whole_verdict(arterial: Volume) -> None:
    with pytest.raises(ConformityError) as info:
        require_conformity(arterial, AAA)
    error = info.value
    assert error.code == "CONF_CONTRAST_AGENT"
    assert {"CONF_CONTRAST_AGENT", "CONF_CONTRAST_IN_AORTA"} <= _failed(error.verdict)
    assert "more failed check" in error.detail
    failure = error.verdict.failures[0]
    assert failure.message and "ContrastBolusAgent" in failure.measured


@pytest.mark.req("SRS-CONF-005")
def test_contrast_with_empty_agent_is_caught_by_the_image(arterial: Volume) -> None:
    quiet = _with_header(arterial, remove=("ContrastBolusRoute", "ContrastBolusVolume",
                                           "ContrastBolusIngredient",
                                           "ContrastBolusIngredientConcentration",
                                           "ContrastFlowRate", "ContrastBolusStartTime",
                                           "ContrastBolusStopTime"),
                         ContrastBolusAgent="")
    verdict = check_conformity(quiet, AAA)
    assert _failed(verdict) == {"CONF_CONTRAST_IN_AORTA"}
    (check,) = [c for c in verdict.checks if c.code == "CONF_CONTRAST_IN_AORTA"]
    assert "HU" in check.measured and "already been given" in check.message


@pytest.mark.req("SRS-CONF-005")
def test_portal_venous_phase_is_caught_by_the_image(case, phantom_dir: Path) -> None:
    volume = _read(case, Phase.PORTAL_VENOUS, phantom_dir / "pv")
    stripped = _with_header(volume, remove=tuple(k for k in volume.source.header.dir()  # type: ignore[union-attr]
                                                 if k.startswith("Contrast")))
    assert _failed(check_conformity(stripped, AAA)) == {"CONF_CONTRAST_IN_AORTA"}


@pytest.mark.req("SRS-CONF-005")
def test_aorta_that_cannot_be_located_fails_closed(ncct: Volume) -> None:
    water = _with_header(Volume(np.zeros(ncct.shape, np.float32) + 20, ncct.affine, ncct.source))
    verdict = check_conformity(water, AAA)
    assert "CONF_AORTA_NOT_LOCATED" in _failed(verdict)
    assert "CONF_CONTRAST_IN_AORTA" not in _outcomes(verdict)  # not examined, not passed


@pytest.mark.req("SRS-CONF-002")
@pytest.mark.parametrize(("values", "code"), [
    ({"SyntheticData": "YES"}, "CONF_SYNTHETIC_INPUT"),
    ({"ImageType": ["DERIVED", "SECONDARY", "AXIAL"]}, "CONF_DERIVED_INPUT"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL", "VNC"]}, "CONF_VIRTUAL_NON_CONTRAST"),
    ({"SeriesDescription": "ABD DE Virtual Unenhanced 1.0"}, "CONF_VIRTUAL_NON_CONTRAST"),
    ({"Modality": "MR"}, "CONF_MODALITY"),
])
def test_only_acquired_original_ct_is_accepted(ncct: Volume, values: dict, code: str) -> None:
    assert code in _failed(check_conformity(_with_header(ncct, **values), AAA))


@pytest.mark.req("SRS-CONF-002")
def test_our_own_synthetic_output_is_refused_as_input(ncct: Volume, tmp_path: Path) -> None:
    from digital_contrast.imaging.synthetic import SynthesizingModel, write_synthetic_series

    assert ncct.source is not None
    written = write_synthetic_series(ncct, ncct.source,
                                     SynthesizingModel("aaa-cta", "0.1.0", "ab" * 32), tmp_path)
    failed = _failed(check_conformity(read_series(written.folder), AAA))
    assert {"CONF_SYNTHETIC_INPUT", "CONF_DERIVED_INPUT"} <= failed


@pytest.mark.req("SRS-CONF-002")
def test_non_axial_series_is_refused(ncct: Volume) -> None:
    tilted = ncct.affine.copy()
    tilted[:3, :3] = tilted[:3, [1, 0, 2]]  # slices stacked along y: coronal
    verdict = check_conformity(Volume(ncct.array, tilted, ncct.source), AAA)
    assert "CONF_ORIENTATION" in _failed(verdict)


@pytest.mark.req("SRS-CONF-003")
@pytest.mark.parametrize(("values", "remove"), [
    ({"PatientAge": "008Y"}, ()),
    ({"PatientAge": "011M"}, ()),
    ({"PatientBirthDate": "20150301", "StudyDate": "20260105"}, ("PatientAge",)),
    ({}, ("PatientAge", "PatientBirthDate")),  # unknown age: fail closed
])
def test_children_and_unknown_age_are_refused(ncct: Volume, values: dict,
                                              remove: tuple[str, ...]) -> None:
    verdict = check_conformity(_with_header(ncct, remove=remove, **values), AAA)
    assert _failed(verdict) == {"CONF_PATIENT_AGE"}


@pytest.mark.req("SRS-CONF-003")
def test_adult_from_birth_date_is_accepted(ncct: Volume) -> None:
    adult = _with_header(ncct, remove=("PatientAge",), PatientBirthDate="19600101",
                         StudyDate="20260105")
    assert check_conformity(adult, AAA).passed


@pytest.mark.req("SRS-CONF-003")
def test_body_part_and_coverage(ncct: Volume) -> None:
    assert _failed(check_conformity(_with_header(ncct, BodyPartExamined="HEAD"), AAA)) == \
        {"CONF_BODY_PART"}
    assert "CONF_BODY_PART" in _failed(check_conformity(
        _with_header(ncct, remove=("BodyPartExamined",)), AAA))
    assert ncct.source is not None
    short = Volume(ncct.array[:20].copy(), ncct.affine,
                   replace(ncct.source, slices=ncct.source.slices[:20]))
    assert "CONF_COVERAGE" in _failed(check_conformity(short, AAA))


@pytest.mark.req("SRS-CONF-004")
@pytest.mark.parametrize(("values", "code"), [
    ({"KVP": "70"}, "CONF_KVP"),
    ({"KVP": ""}, "CONF_KVP"),
    ({"SliceThickness": "5"}, "CONF_SLICE_THICKNESS"),
    ({"ConvolutionKernel": "BONE"}, "CONF_KERNEL"),
    ({"ConvolutionKernel": "B70f"}, "CONF_KERNEL"),
])
def test_acquisition_outside_the_ranges(ncct: Volume, values: dict, code: str) -> None:
    assert _failed(check_conformity(_with_header(ncct, **values), AAA)) == {code}


@pytest.mark.req("SRS-CONF-004")
@pytest.mark.parametrize("kernel", ["STANDARD", "B30f", "Br40 3", "I31f", "FC08", "B"])
def test_soft_tissue_kernels_are_accepted(ncct: Volume, kernel: str) -> None:
    assert check_conformity(_with_header(ncct, ConvolutionKernel=kernel), AAA).passed


@pytest.mark.req("SRS-CONF-004")
def test_pixel_spacing_lossy_and_calibration(ncct: Volume) -> None:
    assert ncct.source is not None
    coarse = ncct.affine.copy()
    coarse[:3, 1:3] *= 1.5  # ~1.2 mm pixels
    assert _failed(check_conformity(Volume(ncct.array, coarse, ncct.source), AAA)) == \
        {"CONF_PIXEL_SPACING"}
    lossy = Volume(ncct.array, ncct.affine, replace(ncct.source, lossy=True))
    assert _failed(check_conformity(lossy, AAA)) == {"CONF_LOSSY"}
    shifted = Volume(ncct.array + 1000, ncct.affine, ncct.source)
    assert "CONF_HU_RANGE" in _failed(check_conformity(shifted, AAA))


@pytest.mark.req("SRS-CONF-006")
def test_oral_contrast_is_flagged_not_refused(case, phantom_dir: Path) -> None:
    volume = _read(with_oral_contrast(case), Phase.NCCT, phantom_dir / "oral")
    verdict = check_conformity(volume, AAA)
    assert verdict.passed
    assert _outcomes(verdict)["CONF_ORAL_CONTRAST"] is Outcome.WARNING
    assert _outcomes(verdict)["CONF_CONTRAST_IN_AORTA"] is Outcome.PASSED


@pytest.mark.req("SRS-CONF-006")
def test_oral_route_in_header_is_a_warning_but_intravenous_is_not(ncct: Volume) -> None:
    oral = check_conformity(_with_header(ncct, ContrastBolusAgent="Gastrografin",
                                         ContrastBolusRoute="ORAL"), AAA)
    assert oral.passed and _outcomes(oral)["CONF_CONTRAST_AGENT"] is Outcome.WARNING
    iv = check_conformity(_with_header(ncct, ContrastBolusRoute="IV"), AAA)
    assert _failed(iv) == {"CONF_CONTRAST_AGENT"}


@pytest.mark.req("SRS-CONF-007")
def test_stent_graft_is_refused(case, phantom_dir: Path) -> None:
    volume = _read(with_stent_graft(case), Phase.NCCT, phantom_dir / "stent")
    verdict = check_conformity(volume, AAA)
    assert _failed(verdict) == {"CONF_METAL"}
