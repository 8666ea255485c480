"""NIfTI exchange: RAS on disk, LPS in memory, left stays left."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.nifti import read_nifti, write_nifti
from digital_contrast.imaging.series_reader import volume_from_datasets
from tests.support.ct_series import ct_slices


def _volume_with_a_right_sided_organ():
    datasets, _ = ct_slices(n=6, rows=30, columns=40)
    volume = volume_from_datasets(datasets)
    array = np.full(volume.shape, -100.0, dtype=np.float32)
    # "Liver": the low column indices, i.e. toward patient right (-x in LPS).
    array[:, 5:25, 2:12] = 60.0
    return volume.with_array(array)


def _organ_centroid(volume) -> np.ndarray:
    k, j, i = np.nonzero(volume.array > 0)
    return volume.world((k.mean(), j.mean(), i.mean()))


@pytest.mark.req("SRS-IMG-010")
def test_round_trip_keeps_values_geometry_and_the_liver_on_the_right(tmp_path: Path) -> None:
    volume = _volume_with_a_right_sided_organ()
    liver_lps = _organ_centroid(volume)
    assert liver_lps[0] < volume.world((0, 0, volume.shape[2] / 2))[0]  # right of centre

    path = write_nifti(volume, tmp_path / "v.nii.gz")
    on_disk = nib.load(path)
    assert nib.aff2axcodes(on_disk.affine) == ("L", "P", "S")  # DICOM axial storage order
    # In RAS the same organ sits at +x (right is positive there).
    i, j, k = np.argwhere(np.asarray(on_disk.dataobj) > 0).mean(axis=0)
    ras = on_disk.affine @ [i, j, k, 1]
    np.testing.assert_allclose(ras[:3], liver_lps * [-1, -1, 1], atol=1e-3)

    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)
    np.testing.assert_allclose(_organ_centroid(back), liver_lps, atol=1e-3)


@pytest.mark.req("SRS-IMG-010")
def test_invalid_nifti_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not nifti")
    with pytest.raises(ImagingError) as info:
        read_nifti(bad)
    assert info.value.code == ImagingErrorCode.NIFTI_INVALID.value
    four_d = tmp_path / "4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), four_d)
    with pytest.raises(ImagingError):
        read_nifti(four_d)
