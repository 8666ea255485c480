"""Limits before work (issue 18): every zip member's size accounted, the pixel module checked
from the header alone, and headers that would make a later read fail refused at intake."""

import io
import struct
import zipfile
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.safe_zip import iter_zip_members
from digital_contrast.intake import (
    FailedInstance,
    FailureReason,
    IntakeCode,
    ParsedInstance,
    validate_instance,
)
from tests.support.ct_series import changed, ct_slices, to_bytes

R, C = FailureReason, IntakeCode
PATIENT = "Doe^Jane"  # ct_slices' patient: never in an error text


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _zip_error(source: bytes) -> ImagingError:
    with pytest.raises(ImagingError) as info:
        list(iter_zip_members(source))
    assert "Doe" not in info.value.detail  # member names (patient folders) are not quoted
    return info.value


@pytest.mark.req("SRS-INTAKE-001")
def test_many_small_members_that_expand_together_are_a_zip_bomb() -> None:
    # 40 members of 512 KiB of zeros: each under the 1 MiB per-member floor, ~1000-fold in all.
    bomb = _zip({f"Doe^Jane/{i}.dcm": bytes(512 * 1024) for i in range(40)})
    assert len(bomb) < 100 * 1024
    error = _zip_error(bomb)
    assert error.code == ImagingErrorCode.ZIP_TOO_LARGE.value and "the archive" in error.detail


@pytest.mark.req("SRS-INTAKE-001")
def test_a_member_whose_header_under_declares_its_size_is_refused() -> None:
    real = bytes(range(256)) * 40
    data = bytearray(_zip({"Doe^Jane/a.dcm": real}))
    declared = struct.pack("<L", 100)
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    data[local + 22:local + 26] = declared  # uncompressed size, local header
    data[central + 24:central + 28] = declared  # and central directory
    error = _zip_error(bytes(data))
    assert error.code == ImagingErrorCode.ZIP_INVALID.value
    assert "declared size" in error.detail


@pytest.mark.req("SRS-INTAKE-001")
def test_nested_archives_are_refused_by_name_and_by_content() -> None:
    inner = _zip({"a.dcm": b"x" * 100})
    by_name = _zip_error(_zip({"Doe^Jane/more.zip": inner}))
    by_content = _zip_error(_zip({"ok.dcm": b"y" * 10, "Doe^Jane/more.dcm": inner}))
    assert by_name.code == by_content.code == ImagingErrorCode.ZIP_NESTED.value
    assert "member 2" in by_content.detail


def _refused(body: bytes) -> FailedInstance:
    outcome = validate_instance(body)
    assert isinstance(outcome, FailedInstance), outcome
    assert outcome.code and PATIENT not in outcome.detail and "Doe" not in outcome.detail
    return outcome


def _rle_ct() -> Dataset:
    ds = ct_slices(n=1)[0][0]
    ds.compress(RLELossless)
    return ds


@pytest.mark.req("SRS-INTAKE-002")
@pytest.mark.parametrize(("changes", "code"), [
    ({"BitsAllocated": 0}, C.IMAGE_BITS),
    ({"BitsAllocated": 8}, C.IMAGE_BITS),  # a CT image is 16 bits allocated
    ({"BitsStored": 17}, C.IMAGE_BITS),
    ({"HighBit": 15}, C.IMAGE_BITS),  # BitsStored is 12
    ({"Rows": 0}, C.IMAGE_DIMENSIONS),
    ({"Rows": 65535, "Columns": 65535}, C.IMAGE_DIMENSIONS),
    ({"Columns": 4097}, C.IMAGE_DIMENSIONS),
    ({"SamplesPerPixel": 3}, C.IMAGE_SAMPLES),
    ({"PhotometricInterpretation": "RGB"}, C.IMAGE_SAMPLES),
    ({"NumberOfFrames": 0}, C.IMAGE_FRAMES),
    ({"NumberOfFrames": 10_001}, C.IMAGE_FRAMES),
    ({"NumberOfFrames": 2}, C.IMAGE_PIXEL_LENGTH),  # native: the bytes of one frame only
    ({"Rows": None}, C.IMAGE_INCOMPLETE),
    ({"BitsAllocated": None}, C.IMAGE_INCOMPLETE),
    ({"PixelData": None}, C.IMAGE_INCOMPLETE),
])
def test_native_pixel_module_out_of_range_or_inconsistent_is_refused(
        changes: dict[str, Any], code: IntakeCode) -> None:
    ds = ct_slices(n=1)[0][0]
    failure = _refused(changed(ds, **changes))
    assert (failure.failure_reason, failure.code) == (R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, code)
    assert failure.sop_instance_uid == ds.SOPInstanceUID


@pytest.mark.req("SRS-INTAKE-002")
def test_native_pixel_data_must_have_exactly_the_bytes_its_geometry_needs() -> None:
    ds = ct_slices(n=1)[0][0]
    longer = _refused(changed(ds, PixelData=ds.PixelData + b"\0\0"))
    assert longer.code == C.IMAGE_PIXEL_LENGTH and "truncated" not in longer.detail
    shorter = _refused(changed(ds, PixelData=ds.PixelData[:-2]))
    assert shorter.code == C.IMAGE_PIXEL_LENGTH and "truncated" in shorter.detail
    # 8-bit secondary capture, 5 x 5: 25 bytes and one padding byte.
    sc = ct_slices(n=1)[0][0]
    sc.SOPClassUID = sc.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    sc.Rows = sc.Columns = 5
    sc.BitsAllocated, sc.BitsStored, sc.HighBit, sc.PixelRepresentation = 8, 8, 7, 0
    sc.PixelData = bytes(26)
    assert isinstance(validate_instance(to_bytes(sc)), ParsedInstance)


@pytest.mark.req("SRS-INTAKE-002")
def test_a_tiny_rle_frame_claiming_a_huge_image_is_refused_without_decoding() -> None:
    ds = _rle_ct()
    assert isinstance(validate_instance(to_bytes(ds)), ParsedInstance)  # a sane RLE CT passes
    assert len(ds.PixelData) < 2000
    huge = _refused(changed(ds, Rows=65535, Columns=65535))
    assert huge.code == C.IMAGE_DIMENSIONS
    many = _refused(changed(ds, Rows=4096, Columns=4096, NumberOfFrames=100))
    assert many.code == C.IMAGE_DECODED_SIZE and "limit" in many.detail


@pytest.mark.req("SRS-INTAKE-002")
def test_encapsulated_frames_and_rle_headers_must_match_the_pixel_module() -> None:
    ds = _rle_ct()
    assert _refused(changed(ds, NumberOfFrames=2)).code == C.IMAGE_FRAGMENTS
    overrun = (b"\xfe\xff\x00\xe0" + bytes(4)  # an empty offset table, then an item
               + b"\xfe\xff\x00\xe0" + struct.pack("<L", 1000) + bytes(8))  # past the end
    assert _refused(changed(ds, PixelData=overrun)).code == C.IMAGE_FRAGMENTS
    frame = bytearray(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1)
                      .__next__())
    frame[0:4] = struct.pack("<L", 1)  # one segment where 16-bit pixels need two
    one_segment = _refused(changed(ds, PixelData=pydicom.encaps.encapsulate([bytes(frame)])))
    assert one_segment.code == C.IMAGE_FRAGMENTS and "2 segment" in one_segment.detail


@pytest.mark.req("SRS-INTAKE-002")
def test_a_ct_cut_off_before_rows_and_columns_is_refused_not_taken_as_no_image() -> None:
    body = to_bytes(ct_slices(n=1)[0][0])
    cut = _refused(body[:body.index(b"\x28\x00\x10\x00US")])  # (0028,0010) Rows
    assert (cut.failure_reason, cut.code) == (R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                                              C.IMAGE_INCOMPLETE)


@pytest.mark.req("SRS-INTAKE-003")
def test_an_element_of_unknown_vr_is_refused_naming_its_tag_only() -> None:
    body = to_bytes(ct_slices(n=1)[0][0])
    at = body.index(b"\x10\x00\x10\x00PN")  # (0010,0010) Patient's Name, explicit VR
    failure = _refused(body[:at + 4] + b"QQ" + body[at + 6:])
    assert (failure.failure_reason, failure.code) == (R.CANNOT_UNDERSTAND,
                                                      C.ELEMENT_UNREADABLE)
    assert "(0010,0010)" in failure.detail


@pytest.mark.req("SRS-INTAKE-003")
def test_an_element_checked_before_vouches_only_for_the_same_bytes() -> None:
    """The check remembers elements that serialised (most repeat through a series), by hash
    of tag, VR, bytes and character set: another value of the same element is checked again,
    a refused one is refused every time, and no value is kept."""
    from digital_contrast.intake import instance

    body = to_bytes(ct_slices(n=1)[0][0])
    at = body.index(b"\x20\x00\x13\x00IS") + 6  # (0020,0013) Instance Number: length, value
    length = struct.unpack("<H", body[at:at + 2])[0]
    bad = body[:at + 2] + b"1x".ljust(length, b" ") + body[at + 2 + length:]
    for _ in range(2):
        assert isinstance(validate_instance(body), ParsedInstance)
        failure = _refused(bad)
        assert (failure.code, "(0020,0013)" in failure.detail) == (C.ELEMENT_UNREADABLE, True)
    assert instance._SERIALISABLE and all(isinstance(k, int) for k in instance._SERIALISABLE)


@pytest.mark.req("SRS-INTAKE-002", "SRS-INTAKE-003")
def test_real_ct_is_accepted(phantom_series) -> None:
    from digital_contrast.phantom.export import Phase

    files = sorted(phantom_series[Phase.NCCT].iterdir())
    assert all(isinstance(validate_instance(p.read_bytes()), ParsedInstance) for p in files)
    ct_small = pydicom.data.get_testdata_file("CT_small.dcm")
    with open(str(ct_small), "rb") as handle:
        assert isinstance(validate_instance(handle.read()), ParsedInstance)


@pytest.mark.req("SRS-INTAKE-004")
def test_a_checked_instance_keeps_its_bytes_once_not_twice() -> None:
    """The header kept for the database holds neither the pixel data nor the buffer it was
    read from (pydicom keeps it): intake drops `data` once written, and then nothing of the
    file stays in memory (bench/upload_memory.py measures the whole request)."""
    ds = ct_slices(1)[0][0]
    checked = validate_instance(to_bytes(ds))
    assert isinstance(checked, ParsedInstance)
    assert checked.header.buffer is None and "PixelData" not in checked.header
