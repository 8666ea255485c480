"""Every synthetic instance passes dicom3tools' dciodvfy; the check itself can fail."""

from pathlib import Path

import pydicom
import pytest

from digital_contrast.imaging.series_reader import volume_from_datasets
from digital_contrast.imaging.synthetic import SynthesizingModel, write_synthetic_series
from tests.support.ct_series import ct_slices
from tests.support.dciodvfy import dciodvfy_errors

MODEL = SynthesizingModel("aaa-cta", "1.0.0", "0f" * 32)


@pytest.mark.req("SRS-DER-005")
@pytest.mark.parametrize("body_part", ["ABDOMEN", None])
def test_every_written_instance_passes_dciodvfy(tmp_path: Path, body_part: str | None) -> None:
    datasets, _ = ct_slices(n=4, patient_name="Øster^Åse")
    for ds in datasets:
        if body_part:
            ds.BodyPartExamined = body_part
    volume = volume_from_datasets(datasets)
    assert volume.source is not None
    written = write_synthetic_series(volume, volume.source, MODEL, tmp_path)
    files = sorted(written.folder.iterdir())
    assert len(files) == 4
    for path in files:
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert dciodvfy_errors(path) == [], path.name


@pytest.mark.req("SRS-DER-005")
def test_a_broken_instance_is_reported(tmp_path: Path) -> None:
    datasets, _ = ct_slices(n=2)
    volume = volume_from_datasets(datasets)
    assert volume.source is not None
    written = write_synthetic_series(volume, volume.source, MODEL, tmp_path)
    path = sorted(written.folder.iterdir())[0]
    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient  # type 1 in the Image Plane module
    ds.ImageType = ["DERIVED"]  # too few values for CT
    broken = tmp_path / "broken.dcm"
    ds.save_as(broken)
    errors = dciodvfy_errors(broken)
    assert any("ImagePositionPatient" in e or "Image Position" in e for e in errors), errors
