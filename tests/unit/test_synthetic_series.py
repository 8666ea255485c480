"""The synthetic CT series: labels, provenance, deterministic identity, geometry, atomicity."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from digital_contrast import MANUFACTURER, __version__
from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.series_reader import read_series, volume_from_datasets
from digital_contrast.imaging.synthetic import (
    SynthesizingModel,
    build_synthetic_series,
    series_description,
    write_synthetic_series,
)
from digital_contrast.imaging.synthetic.sop import WARNING
from digital_contrast.imaging.volume import Volume
from digital_contrast.usecases import load_use_case
from tests.support.ct_series import ct_slices

MODEL = SynthesizingModel("aaa-cta", "1.2.0", "ab" * 32)
OTHER_MODEL = SynthesizingModel("aaa-cta", "1.3.0", "cd" * 32)
WHEN = datetime(2026, 11, 24, 10, 30, 0)


@pytest.fixture
def source_volume() -> Volume:
    datasets, _ = ct_slices(n=5, patient_name="Müller^Jürgen=ミュラー^ユルゲン")
    for ds in datasets:
        ds.BodyPartExamined = "ABDOMEN"
        ds.ContrastBolusAgent = ""  # type 2, empty: must not be carried into the output
    return volume_from_datasets(datasets)


def _synthetic(volume: Volume, **kwargs) -> list[pydicom.Dataset]:
    assert volume.source is not None
    enhanced = volume.with_array(volume.array + 100.0)
    return build_synthetic_series(enhanced, volume.source, MODEL, created=WHEN, **kwargs)


@pytest.mark.req("SRS-DER-001")
def test_every_instance_is_labelled_synthetic(source_volume: Volume) -> None:
    for ds in _synthetic(source_volume):
        assert ds.SyntheticData == "YES"
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL", "SYNTH_CONTRAST"]
        assert "No contrast agent was administered" in ds.DerivationDescription
        assert MODEL.label in ds.DerivationDescription
        assert ds.SeriesDescription.startswith("SYNTH CONTRAST (AI)")
        assert len(ds.SeriesDescription) <= 64
        assert "NO CONTRAST AGENT WAS GIVEN" in ds.ImageComments
        assert ds.BurnedInAnnotation == "NO"
        assert ds.Manufacturer == MANUFACTURER != "ACME Scanners"
        assert list(ds.SoftwareVersions) == [__version__, MODEL.label]
        assert not [e for e in ds if e.tag.group == 0x0018 and "Contrast" in e.keyword]
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.req("SRS-DER-001")
def test_series_description_keeps_prefix_and_flags_within_64_characters() -> None:
    long_model = SynthesizingModel("a" * 80, "9.9.9", "ef" * 32)
    text = series_description(long_model, ["LOW CONFIDENCE"])
    assert text.startswith("SYNTH CONTRAST (AI) LOW CONFIDENCE ")
    assert len(text) == 64
    with pytest.raises(ValueError):
        series_description(MODEL, ["X" * 60])


@pytest.mark.req("SRS-DER-002")
def test_uids_are_deterministic_uuid_derived_and_input_specific(source_volume: Volume) -> None:
    first, again = _synthetic(source_volume), _synthetic(source_volume)
    assert [d.SOPInstanceUID for d in first] == [d.SOPInstanceUID for d in again]
    series_uid = first[0].SeriesInstanceUID
    assert series_uid.startswith("2.25.") and len(series_uid) <= 64
    assert int(series_uid.removeprefix("2.25.")) < 2**128
    assert series_uid != source_volume.source.series_instance_uid  # type: ignore[union-attr]
    assert len({d.SOPInstanceUID for d in first}) == len(first)
    assert first[0].SeriesNumber == again[0].SeriesNumber == 9003
    with_options = _synthetic(source_volume, options={"overlap": 0.5})
    assert with_options[0].SeriesInstanceUID != series_uid
    assert source_volume.source is not None
    other = build_synthetic_series(source_volume, source_volume.source, OTHER_MODEL)
    assert other[0].SeriesInstanceUID != series_uid


@pytest.mark.req("SRS-DER-003")
def test_source_images_and_contributing_equipment_are_referenced(source_volume: Volume) -> None:
    source = source_volume.source
    assert source is not None
    for ds, ref in zip(_synthetic(source_volume), source.slices, strict=True):
        (item,) = ds.SourceImageSequence
        assert item.ReferencedSOPInstanceUID == ref.sop_instance_uid
        assert item.ReferencedSOPClassUID == ref.sop_class_uid
        purpose = item.PurposeOfReferenceCodeSequence[0]
        assert (purpose.CodeValue, purpose.CodingSchemeDesignator) == ("121322", "DCM")
        ours, scanner = ds.ContributingEquipmentSequence
        assert (ours.PurposeOfReferenceCodeSequence[0].CodeValue,
                ours.PurposeOfReferenceCodeSequence[0].CodeMeaning) == \
            ("109100", "Synthesizing Equipment")
        assert MODEL.label in ours.SoftwareVersions
        assert ours.Manufacturer == MANUFACTURER
        assert scanner.PurposeOfReferenceCodeSequence[0].CodeValue == "109101"
        assert scanner.Manufacturer == "ACME Scanners"
        assert scanner.DeviceSerialNumber == "SN-42"


@pytest.mark.req("SRS-DER-004")
def test_written_series_reads_back_with_same_identity_geometry_and_values(
        source_volume: Volume, tmp_path: Path) -> None:
    assert source_volume.source is not None
    rng = np.random.default_rng(1)
    values = rng.uniform(-1024, 3071, source_volume.shape).astype(np.float32)
    written = write_synthetic_series(source_volume.with_array(values), source_volume.source,
                                     MODEL, tmp_path)
    back = read_series(written.folder)
    np.testing.assert_allclose(back.array, values, atol=0.5)  # stored as integer HU
    np.testing.assert_allclose(back.affine, source_volume.affine, atol=1e-5)
    header, source_header = back.source.header, source_volume.source.header  # type: ignore[union-attr]
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "FrameOfReferenceUID",
                    "SpecificCharacterSet", "AccessionNumber", "StudyDate"):
        assert header[keyword].value == source_header[keyword].value, keyword
    assert str(header.PatientName) == "Müller^Jürgen=ミュラー^ユルゲン"
    assert header.SeriesInstanceUID == written.series_instance_uid
    assert header.LossyImageCompression == "00"


@pytest.mark.req("SRS-DER-004")
def test_lossy_history_is_carried_over(source_volume: Volume) -> None:
    datasets, _ = ct_slices(n=3)
    for ds in datasets:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = "8.5"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    lossy = volume_from_datasets(datasets)
    assert lossy.source is not None
    (first, *_) = build_synthetic_series(lossy, lossy.source, MODEL)
    assert first.LossyImageCompression == "01"
    assert first.LossyImageCompressionMethod == "ISO_10918_1"


@pytest.mark.req("SRS-DER-004")
def test_volume_with_other_geometry_is_refused(source_volume: Volume) -> None:
    assert source_volume.source is not None
    moved = source_volume.affine.copy()
    moved[:3, 3] += 5.0
    shifted = Volume(source_volume.array, moved)
    cropped = Volume(source_volume.array[:, :-2], source_volume.affine)
    finer = source_volume.affine.copy()
    finer[:3, 1:3] *= 0.5  # same origin and slices, other pixel spacing
    resampled = Volume(source_volume.array, finer)
    for volume in (shifted, cropped, resampled):
        with pytest.raises(ImagingError) as info:
            build_synthetic_series(volume, source_volume.source, MODEL)
        assert info.value.code == ImagingErrorCode.DERIVED_GEOMETRY_MISMATCH.value


@pytest.mark.req("SRS-DER-006")
def test_failed_write_leaves_nothing_and_retry_does_not_duplicate(
        source_volume: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert source_volume.source is not None
    calls = {"n": 0}
    original = pydicom.Dataset.save_as

    def failing_save(self: pydicom.Dataset, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        original(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.Dataset, "save_as", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_synthetic_series(source_volume, source_volume.source, MODEL, tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial series, no temporary folder
    monkeypatch.setattr(pydicom.Dataset, "save_as", original)

    first = write_synthetic_series(source_volume, source_volume.source, MODEL, tmp_path)
    again = write_synthetic_series(source_volume, source_volume.source, MODEL, tmp_path)
    assert first.created and not again.created
    assert first.folder == again.folder
    assert [p.name for p in tmp_path.iterdir()] == [first.series_instance_uid]
    assert len(list(first.folder.iterdir())) == source_volume.shape[0]


@pytest.mark.req("SRS-DER-001")
def test_model_identity_is_validated() -> None:
    with pytest.raises(ValueError):
        SynthesizingModel("aaa-cta", "1.0", "not-a-hash")
    with pytest.raises(ValueError):
        SynthesizingModel(" ", "1.0", "ab" * 32)


@pytest.mark.req("SRS-UC-003")
def test_the_use_case_notice_follows_the_warning_in_every_image(source_volume: Volume) -> None:
    notice = load_use_case("abdomen-pv").notice
    assert notice is not None and "LESION DETECTION OR CHARACTERISATION" in notice
    model = SynthesizingModel("abdomen-pv", "1.0.0", "ab" * 32, notice)
    assert source_volume.source is not None
    enhanced = source_volume.with_array(source_volume.array + 100.0)
    for ds in build_synthetic_series(enhanced, source_volume.source, model, created=WHEN):
        assert ds.ImageComments == f"{WARNING} {notice}"
    assert all(ds.ImageComments == WARNING for ds in _synthetic(source_volume))  # no notice
