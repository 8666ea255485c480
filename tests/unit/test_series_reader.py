"""DICOM CT series -> Volume: sources, decoding, ordering, and every refusal with its code."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, RLELossless

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.series_reader import read_series, volume_from_datasets
from digital_contrast.imaging.volume import AIR_HU
from tests.support.ct_series import ct_slices, to_bytes

C = ImagingErrorCode


def _raises(code: ImagingErrorCode, source: object) -> ImagingError:
    with pytest.raises(ImagingError) as info:
        read_series(source)  # type: ignore[arg-type]
    assert info.value.code == code.value, info.value
    assert info.value.detail and "Traceback" not in info.value.detail
    return info.value


def _write(folder: Path, datasets: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, ds in enumerate(datasets):
        (folder / f"f{index:03d}.dcm").write_bytes(to_bytes(ds))
    return folder


@pytest.mark.req("SRS-IMG-001")
def test_folder_files_zip_and_bytes_give_the_same_volume(tmp_path: Path) -> None:
    datasets, hu = ct_slices(n=5)
    folder = _write(tmp_path / "series", datasets)
    files = sorted(folder.iterdir())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, f"study/{file.name}")
    zip_path = tmp_path / "series.zip"
    zip_path.write_bytes(buffer.getvalue())
    sources = [folder, files, [f.read_bytes() for f in files], zip_path, buffer.getvalue()]
    for source in sources:
        volume = read_series(source)
        assert volume.array.dtype == np.float32
        np.testing.assert_array_equal(volume.array, hu)
        assert volume.spacing == pytest.approx((2.5, 0.8, 0.75))
    single = read_series(files)
    assert single.source is not None
    assert single.source.series_instance_uid == datasets[0].SeriesInstanceUID


@pytest.mark.req("SRS-IMG-001")
def test_affine_maps_voxels_to_lps_positions() -> None:
    datasets, _ = ct_slices(n=4, orientation=(0, 1, 0, 0, 0, -1))  # sagittal, unusual on purpose
    volume = volume_from_datasets(datasets)
    for k, ds in enumerate(datasets):
        np.testing.assert_allclose(volume.world((k, 0, 0)),
                                   [float(v) for v in ds.ImagePositionPatient], atol=1e-4)
    row_dir = volume.world((0, 0, 1)) - volume.world((0, 0, 0))  # along a row: IOP[0:3]
    np.testing.assert_allclose(row_dir / np.linalg.norm(row_dir), [0, 1, 0], atol=1e-9)
    assert volume.source is not None
    assert [s.sop_instance_uid for s in volume.source.slices] == \
        [ds.SOPInstanceUID for ds in datasets]
    assert "PixelData" not in volume.source.header
    assert str(volume.source.header.PatientName) == "Doe^Jane"


@pytest.mark.req("SRS-IMG-004")
def test_slices_are_ordered_by_position_not_file_order_or_instance_number() -> None:
    datasets, hu = ct_slices(n=7)
    shuffled = [datasets[i] for i in (3, 0, 6, 2, 5, 1, 4)]
    for ds in shuffled:
        ds.InstanceNumber = 1  # useless numbering must not matter
    volume = volume_from_datasets(shuffled)
    np.testing.assert_array_equal(volume.array, hu)


@pytest.mark.req("SRS-IMG-003")
def test_per_slice_rescale_is_applied() -> None:
    datasets, hu = ct_slices(n=3, rescale_intercept=0)
    # Re-encode slice 1 with its own slope and intercept, as some scanners do.
    stored = np.frombuffer(datasets[1].PixelData, dtype="<i2").reshape(hu.shape[1:])
    datasets[1].PixelData = ((stored + 2048) // 2).astype("<i2").tobytes()
    datasets[1].RescaleSlope, datasets[1].RescaleIntercept = "2", "-4096"
    expected = hu.copy()
    expected[1] = ((stored + 2048) // 2) * 2 - 4096
    volume = volume_from_datasets(datasets)
    np.testing.assert_array_equal(volume.array, expected)


@pytest.mark.req("SRS-IMG-003")
def test_pixel_padding_value_and_range_become_air_and_are_masked() -> None:
    datasets, hu = ct_slices(n=3, rescale_intercept=0)
    for ds in datasets:
        stored = np.frombuffer(ds.PixelData, dtype="<i2").reshape(hu.shape[1:]).copy()
        stored[:2, :] = -2000
        stored[2, :3] = -1500
        ds.PixelData = stored.tobytes()
        ds.PixelPaddingValue = -2000
    datasets[2].PixelPaddingRangeLimit = -1400
    volume = volume_from_datasets(datasets)
    assert volume.padding is not None
    assert volume.padding[:, :2, :].all()
    assert volume.padding[2, 2, :3].all() and not volume.padding[:2, 2, :3].any()
    assert (volume.array[volume.padding] == AIR_HU).all()
    expected = hu.copy()
    expected[:, 2, :3] = -1500  # real values where only slice 2 declares a padding range
    np.testing.assert_array_equal(volume.array[~volume.padding], expected[~volume.padding])


@pytest.mark.req("SRS-IMG-002")
@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, "jpeg-lossless"])
def test_compressed_series_decode_to_the_uncompressed_values(syntax: object) -> None:
    datasets, hu = ct_slices(n=3, rows=64, columns=64)  # JPEG 2000 needs >= 32 px per side
    encoded = []
    for ds in datasets:
        if syntax == "jpeg-lossless":
            encoded.append(_gdcm_jpeg_lossless(to_bytes(ds)))
        else:
            ds.compress(syntax)
            encoded.append(to_bytes(ds))
    volume = read_series(encoded)
    np.testing.assert_array_equal(volume.array, hu)
    assert volume.source is not None and not volume.source.lossy


@pytest.mark.req("SRS-IMG-002")
def test_runtime_decoders_do_not_depend_on_test_only_gdcm() -> None:
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLosslessSV1

    for syntax in (JPEGLosslessSV1, JPEG2000Lossless, RLELossless):
        plugins = set(get_decoder(syntax).available_plugins) - {"gdcm"}
        assert plugins, f"no runtime decoder for {syntax.name}"


def _gdcm_jpeg_lossless(data: bytes) -> bytes:
    import tempfile

    import gdcm  # test-only: pydicom has no JPEG Lossless encoder

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.dcm"), Path(tmp, "out.dcm")
        src.write_bytes(data)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(src))
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        writer.SetFileName(str(dst))
        assert writer.Write()
        out = dst.read_bytes()
    assert pydicom.dcmread(io.BytesIO(out)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    return out


@pytest.mark.req("SRS-IMG-002")
def test_lossy_history_is_recorded() -> None:
    datasets, _ = ct_slices(n=3)
    datasets[1].LossyImageCompression = "01"
    volume = volume_from_datasets(datasets)
    assert volume.source is not None and volume.source.lossy


@pytest.mark.req("SRS-IMG-002")
def test_undecodable_transfer_syntax_is_refused() -> None:
    datasets, _ = ct_slices(n=3)
    for ds in datasets:
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder
    with pytest.raises(ImagingError) as info:
        volume_from_datasets(datasets)
    assert info.value.code in {C.UNSUPPORTED_TRANSFER_SYNTAX.value, C.CORRUPT_PIXEL_DATA.value}


@pytest.mark.req("SRS-IMG-005")
def test_two_series_mixed_in_one_upload() -> None:
    a, _ = ct_slices(n=3, name="a")
    b, _ = ct_slices(n=3, name="b", origin=(-10, -12, 200))
    _raises(C.MIXED_SERIES, [to_bytes(ds) for ds in a + b])


@pytest.mark.req("SRS-IMG-005")
def test_mixed_frame_of_reference() -> None:
    datasets, _ = ct_slices(n=3)
    datasets[2].FrameOfReferenceUID = "2.25.1"
    _raises(C.MIXED_FRAME_OF_REFERENCE, [to_bytes(ds) for ds in datasets])


@pytest.mark.req("SRS-IMG-005")
def test_mixed_orientations() -> None:
    datasets, _ = ct_slices(n=4)
    datasets[3].ImageOrientationPatient = [1, 0, 0, 0, 0.9848, 0.1736]
    _raises(C.MIXED_ORIENTATION, [to_bytes(ds) for ds in datasets])


@pytest.mark.req("SRS-IMG-005")
def test_mixed_pixel_spacing() -> None:
    datasets, _ = ct_slices(n=4)
    datasets[0].PixelSpacing = [0.7, 0.7]
    _raises(C.INCONSISTENT_GEOMETRY, [to_bytes(ds) for ds in datasets])


@pytest.mark.req("SRS-IMG-006")
def test_missing_slice_is_refused_with_positions() -> None:
    datasets, _ = ct_slices(n=6, slice_spacing=2.5)
    del datasets[3]
    error = _raises(C.MISSING_SLICES, [to_bytes(ds) for ds in datasets])
    assert "5.00 mm" in error.detail and "expected 2.50 mm" in error.detail


@pytest.mark.req("SRS-IMG-006")
def test_duplicated_slices_are_refused() -> None:
    datasets, _ = ct_slices(n=5)
    _raises(C.DUPLICATE_SLICES, [to_bytes(ds) for ds in [*datasets, datasets[2]]])
    twin = pydicom.dcmread(io.BytesIO(to_bytes(datasets[2])))
    twin.SOPInstanceUID = "2.25.99"  # same position, different instance
    _raises(C.DUPLICATE_SLICES, [to_bytes(ds) for ds in [*datasets, twin]])


@pytest.mark.req("SRS-IMG-006")
def test_uneven_spacing_is_refused() -> None:
    datasets, _ = ct_slices(n=6, slice_spacing=2.0)
    position = [float(v) for v in datasets[3].ImagePositionPatient]
    datasets[3].ImagePositionPatient = [position[0], position[1], position[2] + 0.6]
    _raises(C.NONUNIFORM_SPACING, [to_bytes(ds) for ds in datasets])


@pytest.mark.req("SRS-IMG-007")
def test_gantry_tilt_attribute_is_refused() -> None:
    datasets, _ = ct_slices(n=4)
    for ds in datasets:
        ds.GantryDetectorTilt = "12"
    error = _raises(C.GANTRY_TILT, [to_bytes(ds) for ds in datasets])
    assert "12" in error.detail


@pytest.mark.req("SRS-IMG-007")
def test_sheared_stack_is_refused_even_without_the_attribute() -> None:
    datasets, _ = ct_slices(n=5, slice_spacing=2.5)
    shift = np.tan(np.radians(15)) * 2.5  # positions step sideways: a tilted acquisition
    for k, ds in enumerate(datasets):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * shift, z]
    _raises(C.GANTRY_TILT, [to_bytes(ds) for ds in datasets])


@pytest.mark.req("SRS-IMG-008")
def test_non_ct_series_is_refused() -> None:
    _raises(C.NOT_CT, get_testdata_file("MR_small.dcm"))


@pytest.mark.req("SRS-IMG-008")
def test_non_dicom_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    _raises(C.NOT_DICOM, path)
    _raises(C.NOT_DICOM, b"\x00" * 300)


@pytest.mark.req("SRS-IMG-008")
def test_truncated_file_is_refused() -> None:
    datasets, _ = ct_slices(n=3)
    data = [to_bytes(ds) for ds in datasets]
    data[1] = data[1][: len(data[1]) - 200]
    error = _raises(C.TRUNCATED, data)
    assert "truncated" in error.detail


@pytest.mark.req("SRS-IMG-008")
def test_file_cut_inside_the_header_is_refused() -> None:
    datasets, _ = ct_slices(n=3)
    data = [to_bytes(ds) for ds in datasets]
    data[0] = data[0][:400]
    _raises(C.TRUNCATED, data)


@pytest.mark.req("SRS-IMG-008")
def test_real_single_slice_ct_from_pydicom_is_refused_as_too_few_slices() -> None:
    error = _raises(C.TOO_FEW_SLICES, get_testdata_file("CT_small.dcm"))
    assert "at least 2" in error.detail


@pytest.mark.req("SRS-IMG-008")
def test_object_that_is_not_a_ct_image_is_refused() -> None:
    datasets, _ = ct_slices(n=3)
    for ds in datasets:
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
    _raises(C.UNSUPPORTED_SOP_CLASS, [to_bytes(ds) for ds in datasets])


@pytest.mark.req("SRS-IMG-008")
def test_empty_folder_and_missing_path_are_refused(tmp_path: Path) -> None:
    _raises(C.EMPTY, tmp_path)
    _raises(C.EMPTY, tmp_path / "nowhere")
    _raises(C.EMPTY, [])
