"""Header labels of the series index: phase and region words, age bands, slice quality."""

import pytest
from pydicom.dataset import Dataset

from digital_contrast.repository.index.classify import age_band, labels_of, phase_of, region_of
from digital_contrast.repository.index.records import quality_of


def _ds(**values) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.req("SRS-REPO-006")
@pytest.mark.parametrize(("description", "phase"), [
    ("ABD NON-CONTRAST 3mm", "native"), ("Abdomen w/o contrast", "native"),
    ("NATIVE 1.0 B30f", "native"), ("CTA AORTA ARTERIAL 3mm", "arterial"),
    ("ABD PORTAL VENOUS 3mm", "portal_venous"), ("Abdomen PV 70s", "portal_venous"),
    ("Delayed 5 min", "delayed"), ("Abdomen 5mm", "unknown"), ("", "unknown"),
])
def test_phase_from_the_description(description: str, phase: str) -> None:
    assert phase_of(_ds(SeriesDescription=description)) == phase


@pytest.mark.req("SRS-REPO-006")
def test_a_contrast_agent_without_a_phase_word_is_unknown_not_guessed() -> None:
    assert phase_of(_ds(SeriesDescription="Abdomen", ContrastBolusAgent="Iohexol")) == "unknown"


@pytest.mark.req("SRS-REPO-006")
@pytest.mark.parametrize(("values", "region"), [
    ({"BodyPartExamined": "ABDOMEN"}, "abdomen"),
    ({"BodyPartExamined": "CHEST"}, "chest"),
    ({"BodyPartExamined": "ABDOMENPELVIS"}, "abdomen_pelvis"),
    ({"BodyPartExamined": "", "StudyDescription": "CT CHEST ABDOMEN PELVIS"},
     "chest_abdomen_pelvis"),
    ({"StudyDescription": "CT Abd/Pelvis"}, "abdomen_pelvis"),
    ({"StudyDescription": "CT"}, "unknown"),
    ({"SeriesDescription": "ABD PORTAL VENOUS"}, "abdomen"),
])
def test_region_from_the_body_part_then_the_descriptions(values: dict, region: str) -> None:
    assert region_of(_ds(**values)) == region


@pytest.mark.req("SRS-REPO-006")
@pytest.mark.parametrize(("age", "band"), [
    ("074Y", "70-79"), ("009Y", "0-9"), ("090Y", "90+"), ("105Y", "90+"), ("018M", "0-9"),
    ("003W", "0-9"), ("74", None), ("", None), (None, None),
])
def test_age_band(age, band) -> None:
    assert age_band(age) == band


@pytest.mark.req("SRS-REPO-006")
def test_labels_and_quality() -> None:
    labels = labels_of(_ds(Modality="CT", SeriesDescription="PV", BodyPartExamined="ABDOMEN",
                           KVP="100", SliceThickness="1.0", ConvolutionKernel=["Br40", "3"],
                           PatientAge="061Y", PatientSex="F", Manufacturer="ACME"))
    assert (labels.phase, labels.region, labels.kvp, labels.thickness_mm, labels.kernel,
            labels.age_band, labels.sex) == ("portal_venous", "abdomen", 100.0, 1.0, "BR40 3",
                                             "60-69", "F")
    unlabelled = labels_of(_ds(KVP="", PatientSex="X"))
    assert (unlabelled.kvp, unlabelled.sex, unlabelled.modality) == (None, None, "unknown")
    assert quality_of([0.0, 1.0, 2.0, 3.0]) == "complete"
    assert quality_of([3.0, 0.0, 2.0, 1.0]) == "complete"
    assert quality_of([0.0, 1.0, 3.0, 4.0]) == "gaps"
    assert quality_of([0.0, 1.0, 1.0, 2.0]) == "gaps"
    assert quality_of([5.0]) == "unknown"
