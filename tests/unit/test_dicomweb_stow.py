"""STOW-RS: per-part validation, per-request rules, the Store Instances Response and status."""

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage

from digital_contrast.api.dicomweb.errors import DicomWebError
from digital_contrast.api.dicomweb.multipart import Part, PartHeaders
from digital_contrast.api.dicomweb.store_response import (
    StoredInstance,
    store_instances_response,
    stow_status,
)
from digital_contrast.api.dicomweb.stow import StowRequest
from digital_contrast.intake import (
    FailedInstance,
    FailureReason,
    ParsedInstance,
    WarningReason,
)
from digital_contrast.intake import validate_instance as validate_part
from tests.support.ct_series import changed, ct_slices, to_bytes

R = FailureReason
BASE = "https://dc.example/dicomweb"


def _part(body: bytes, index: int = 0, media_type: str = "application/dicom") -> Part:
    return Part(index=index, headers=PartHeaders([("Content-Type", media_type)]), body=body,
                media_type=media_type)


def _failure(body: bytes, **options: Any) -> FailedInstance:
    outcome = validate_part(body, **options)
    assert isinstance(outcome, FailedInstance), outcome
    assert outcome.detail and "Doe" not in outcome.detail  # no patient data in messages
    return outcome


@pytest.mark.req("SRS-DCMW-002")
def test_a_valid_instance_keeps_its_bytes_and_gives_its_header() -> None:
    datasets, _ = ct_slices(n=1)
    body = to_bytes(datasets[0])
    outcome = validate_part(body)
    assert isinstance(outcome, ParsedInstance)
    assert outcome.data is body
    assert outcome.sop_instance_uid == datasets[0].SOPInstanceUID
    assert outcome.study_instance_uid == datasets[0].StudyInstanceUID
    assert outcome.series_instance_uid == datasets[0].SeriesInstanceUID
    assert outcome.transfer_syntax_uid == datasets[0].file_meta.TransferSyntaxUID
    assert "PixelData" not in outcome.header and outcome.header.Rows == datasets[0].Rows
    ct_small = Path(str(get_testdata_file("CT_small.dcm")))
    assert isinstance(validate_part(ct_small.read_bytes()), ParsedInstance)


@pytest.mark.req("SRS-DCMW-002")
def test_a_file_without_preamble_is_stored_with_one() -> None:
    ds = ct_slices(n=1)[0][0]
    bare = io.BytesIO()
    pydicom.dcmwrite(bare, ds)  # in-memory data set: File Meta but no preamble, as clients send
    assert bare.getvalue()[:2] == b"\x02\x00"
    outcome = validate_part(bare.getvalue())
    assert isinstance(outcome, ParsedInstance)
    assert outcome.data == bytes(128) + b"DICM" + bare.getvalue()
    assert pydicom.dcmread(io.BytesIO(outcome.data)).SOPInstanceUID == ds.SOPInstanceUID
    data_set_only = io.BytesIO()
    pydicom.dcmwrite(data_set_only, Dataset(ds), implicit_vr=False, little_endian=True)
    assert data_set_only.getvalue()[:2] == b"\x08\x00"  # no File Meta at all
    assert _failure(data_set_only.getvalue()).failure_reason == R.CANNOT_UNDERSTAND


@pytest.mark.req("SRS-DCMW-002")
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom complains about the bad input
def test_each_problem_fails_with_its_reason() -> None:
    ds = ct_slices(n=1)[0][0]
    body = to_bytes(ds)
    sop = (ds.SOPClassUID, ds.SOPInstanceUID)
    assert _failure(b"just text").failure_reason == R.CANNOT_UNDERSTAND
    assert _failure(b"\0" * 128 + b"DICM" + b"\xff" * 40).failure_reason == R.CANNOT_UNDERSTAND
    no_class = _failure(changed(ds, SOPClassUID=None))
    assert no_class[:3] == (None, None, R.CANNOT_UNDERSTAND)
    mr = _failure(changed(ds, SOPClassUID=MRImageStorage))
    assert mr.failure_reason == R.SOP_CLASS_NOT_SUPPORTED and "MR Image Storage" in mr.detail
    assert validate_part(changed(ds, SOPClassUID=MRImageStorage),
                         accepted_sop_classes={MRImageStorage}).__class__ is ParsedInstance
    syntax = _failure(body, accepted_transfer_syntaxes={"1.2.840.10008.1.2"})
    assert syntax[:3] == (*sop, R.TRANSFER_SYNTAX_NOT_SUPPORTED)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        assert _failure(changed(ds, **{keyword: None}))[:3] == \
            (*sop, R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)
    bad_uid = _failure(changed(ds, SeriesInstanceUID="1.2.abc"))
    assert bad_uid.failure_reason == R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    no_instance = _failure(changed(ds, SOPInstanceUID=None))
    assert no_instance[:3] == (ds.SOPClassUID, None, R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)
    truncated = _failure(body[:-100])
    assert truncated[:3] == (*sop, R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)
    assert "truncated" in truncated.detail
    headless = _failure(body[: body.index(b"\xe0\x7f\x10\x00")])  # cut before Pixel Data
    assert "without pixel data" in headless.detail
    other_study = _failure(body, study_instance_uid="1.2.3")
    assert other_study[:3] == (*sop, R.STUDY_INSTANCE_UID_MISMATCH)
    assert validate_part(body, study_instance_uid=ds.StudyInstanceUID).__class__ \
        is ParsedInstance


@pytest.mark.req("SRS-DCMW-002")
def test_file_meta_must_exist_and_agree_with_the_data_set() -> None:
    ds = ct_slices(n=1)[0][0]
    plain = io.BytesIO()
    no_syntax = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    del no_syntax.file_meta.TransferSyntaxUID
    no_syntax.save_as(plain, enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert _failure(plain.getvalue()).failure_reason == R.CANNOT_UNDERSTAND
    copy = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    copy.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    contradicting = io.BytesIO()
    copy.save_as(contradicting)  # as is: enforce_file_format would rewrite the meta
    mismatch = _failure(contradicting.getvalue())
    assert mismatch.failure_reason == R.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert "MediaStorageSOPInstanceUID" in mismatch.detail


@pytest.mark.req("SRS-DCMW-002", "SRS-DCMW-003")
def test_one_request_fails_only_its_bad_parts() -> None:
    datasets, _ = ct_slices(n=3)
    good = [to_bytes(ds) for ds in datasets]
    other_study = to_bytes(ct_slices(n=1, name="other")[0][0])
    request = StowRequest(BASE, study_instance_uid=datasets[0].StudyInstanceUID)
    parts = [_part(good[0], 0), _part(b"not dicom", 1), _part(good[1], 2),
             _part(b"hello", 3, "text/plain"), _part(other_study, 4), _part(good[1], 5),
             _part(good[2], 6)]
    checked = [request.check(p) for p in parts]
    assert [c is not None for c in checked] == [True, False, True, False, False, False, True]
    assert [f.failure_reason for f in request.failures] == [
        R.CANNOT_UNDERSTAND, R.CANNOT_UNDERSTAND, R.STUDY_INSTANCE_UID_MISMATCH,
        R.DUPLICATE_SOP_INSTANCE]
    assert [f.detail.split(":")[0] for f in request.failures] == \
        ["part 2", "part 4", "part 5", "part 6"]
    assert "text/plain" in request.failures[1].detail
    assert request.failures[3].sop_instance_uid == datasets[1].SOPInstanceUID
    first, second, third = (c for c in checked if c is not None)
    request.stored(first)
    request.stored(second, WarningReason.COERCION_OF_DATA_ELEMENTS)
    with pytest.raises(ValueError, match="never reported"):
        request.response()
    assert request.unreported == [third.sop_instance_uid]
    request.failed(third, R.OUT_OF_RESOURCES, "disk full")
    with pytest.raises(ValueError, match="already reported"):
        request.stored(first)
    assert request.status == 202
    response = pydicom.Dataset.from_json(request.response())
    study = datasets[0].StudyInstanceUID
    assert response.RetrieveURL == f"{BASE}/studies/{study}"
    assert [item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence] == \
        [datasets[0].SOPInstanceUID, datasets[1].SOPInstanceUID]
    assert response.ReferencedSOPSequence[0].RetrieveURL == (
        f"{BASE}/studies/{study}/series/{datasets[0].SeriesInstanceUID}"
        f"/instances/{datasets[0].SOPInstanceUID}")
    assert "WarningReason" not in response.ReferencedSOPSequence[0]
    assert response.ReferencedSOPSequence[1].WarningReason == 0xB000
    assert [item.FailureReason for item in response.FailedSOPSequence] == \
        [0xC000, 0xC000, 0xA901, 0x0111, 0xA700]
    assert response.FailedSOPSequence[0].ReferencedSOPInstanceUID == ""


@pytest.mark.req("SRS-DCMW-002")
def test_the_study_in_the_url_must_be_a_uid() -> None:
    with pytest.raises(DicomWebError) as info:
        StowRequest(BASE, study_instance_uid="../../etc")
    assert info.value.code == "DICOMWEB_BAD_UID" and info.value.status == 400


@pytest.mark.req("SRS-DCMW-003")
def test_study_retrieve_url_is_empty_unless_one_study() -> None:
    a = to_bytes(ct_slices(n=1, name="a")[0][0])
    b = to_bytes(ct_slices(n=1, name="b")[0][0])
    for bodies, one_study in (([a], True), ([a, b], False)):
        request = StowRequest(BASE)
        for k, body in enumerate(bodies):
            instance = request.check(_part(body, k))
            assert instance is not None
            request.stored(instance)
        assert request.status == 200
        url = pydicom.Dataset.from_json(request.response()).RetrieveURL
        assert bool(url) is one_study


@pytest.mark.req("SRS-DCMW-003")
def test_response_json_follows_ps3_18_annex_i() -> None:
    stored = [("1.2.840.10008.5.1.4.1.1.2", "1.2.3.1", f"{BASE}/studies/1/series/2/instances/3")]
    failed = [(None, None, 0xC000), ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.2", R.PROCESSING_FAILURE)]
    json = store_instances_response(f"{BASE}/studies/1", stored, failed)
    assert json["00081190"] == {"vr": "UR", "Value": [f"{BASE}/studies/1"]}
    assert json["00081199"]["vr"] == "SQ" and json["00081198"]["vr"] == "SQ"
    item = json["00081199"]["Value"][0]
    assert item["00081150"] == {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}
    assert item["00081155"] == {"vr": "UI", "Value": ["1.2.3.1"]}
    assert item["00081190"]["vr"] == "UR"
    failures = json["00081198"]["Value"]
    assert failures[0]["00081197"] == {"vr": "US", "Value": [0xC000]}
    assert failures[0]["00081155"] == {"vr": "UI"}  # present, empty: the part was unreadable
    assert failures[1]["00081197"]["Value"] == [0x0110]
    only_failed = store_instances_response(None, [], failed)
    assert only_failed["00081190"] == {"vr": "UR"} and "00081199" not in only_failed
    assert "00081198" not in store_instances_response(None, stored, [])


@pytest.mark.req("SRS-DCMW-003")
def test_status_follows_table_10_5_3_1() -> None:
    ok = StoredInstance("1.2", "1.3", "u")
    warned = StoredInstance("1.2", "1.4", "u", WarningReason.ELEMENTS_DISCARDED)
    bad = FailedInstance(None, None, R.CANNOT_UNDERSTAND)
    assert stow_status([ok], []) == 200
    assert stow_status([ok, warned], []) == 202
    assert stow_status([ok], [bad]) == 202
    assert stow_status([], [bad, bad]) == 409
    with pytest.raises(ValueError, match="at least one instance"):
        stow_status([], [])


@pytest.mark.req("SRS-DCMW-003")
@pytest.mark.parametrize(("stored", "failed", "message"), [
    ([("1.2", "x/../y", "u")], [], "not a UID"),
    ([("1.2", "1.3", "")], [], "give its URL"),
    ([("1.2", "1.3", "u", 0xC000)], [], "not a Bxxx warning"),
    ([], [("1.2", "1.3", 0xB000)], "not a failure status"),
    ([], [("1.2", "1.3", 0)], "not a failure status"),
    ([], [("bad", None, 0xC000)], "not a UID"),
])
def test_response_builder_refuses_inconsistent_input(stored: list, failed: list,
                                                     message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store_instances_response(None, stored, failed)
