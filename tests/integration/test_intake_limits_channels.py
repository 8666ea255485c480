"""Intake limits through each real channel (STOW-RS, zip upload, DIMSE C-STORE): a bad instance
is refused with its status and code, nothing of it is stored, the good ones beside it are."""

import io
import logging
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from sqlalchemy import select

from digital_contrast.dimse import StorageSCP
from digital_contrast.phantom.export import Phase
from digital_contrast.store import Instance
from digital_contrast.store.dicom_senders import add_sender
from tests.support.orphans import leftovers
from tests.support.service import make_settings, running_service

MODALITY = "CT_LIMITS"
STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b0undary'


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("intake-limits"), empty_registry_db,
                             dimse_ae_title="DC_LIMITS")
    with running_service(settings) as running:
        with running.state.sessions() as db:
            add_sender(db, MODALITY, settings.site)
            db.commit()
        scp = StorageSCP(running.state)
        port = scp.start("127.0.0.1", 0)
        try:
            yield running, port
        finally:
            scp.stop()


def _stored(service) -> set[str]:
    with service.state.sessions() as db:
        return set(db.scalars(select(Instance.sop_instance_uid)))


def _fresh(path: Path) -> pydicom.Dataset:
    """A phantom slice under new UIDs (a new series), so each test stores its own."""
    ds = pydicom.dcmread(path)
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _bad_instances(path: Path) -> dict[str, tuple[bytes, int, str]]:
    """Bad instances built from a real slice: name -> (file, DICOM status, code)."""
    zero_bits, huge = _fresh(path), _fresh(path)
    zero_bits.BitsAllocated = 0
    huge.Rows = huge.Columns = 65535
    cut = _bytes(_fresh(path))
    unknown_vr = bytearray(_bytes(_fresh(path)))
    at = unknown_vr.index(b"\x10\x00\x10\x00PN")
    unknown_vr[at + 4:at + 6] = b"QQ"
    return {"bits": (_bytes(zero_bits), 0xA900, "INTAKE_IMAGE_BITS"),
            "huge": (_bytes(huge), 0xA900, "INTAKE_IMAGE_DIMENSIONS"),
            "cut": (cut[:cut.index(b"\x28\x00\x10\x00US")], 0xA900, "INTAKE_IMAGE_INCOMPLETE"),
            "vr": (bytes(unknown_vr), 0xC000, "INTAKE_ELEMENT_UNREADABLE")}


def _uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                               specific_tags=["SOPInstanceUID"]).SOPInstanceUID)


def _patient_names(path: Path) -> list[str]:
    name = str(pydicom.dcmread(path).PatientName)
    return [part for part in name.split("^") if len(part) > 2]


@pytest.mark.req("SRS-INTAKE-002", "SRS-INTAKE-003", "SRS-DCMW-002")
def test_stow_refuses_each_bad_instance_and_keeps_the_good_one(
        service, phantom_series, caplog: pytest.LogCaptureFixture) -> None:
    running, _ = service
    path = sorted(phantom_series[Phase.NCCT].iterdir())[0]
    good = _bytes(_fresh(path))
    bad = _bad_instances(path)
    parts = [good, *(data for data, _, _ in bad.values())]
    body = b"".join(b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                    for p in parts) + b"--b0undary--\r\n"
    with caplog.at_level(logging.WARNING, logger="digital_contrast.api.dicomweb.stow"):
        response = running.client.post("/dicomweb/studies", content=body,
                                       headers=running.headers() | {"Content-Type": STOW_TYPE})
    assert response.status_code == 202, response.text
    failed = response.json()["00081198"]["Value"]
    reasons = sorted(item["00081197"]["Value"][0] for item in failed)
    assert reasons == sorted(status for _, status, _ in bad.values())
    assert _uid(good) in _stored(running)
    assert leftovers(running.settings.data_dir, running.state.sessions) == []
    logged = caplog.text
    assert all(code in logged for _, _, code in bad.values())
    assert not any(name in logged for name in _patient_names(path))


@pytest.mark.req("SRS-INTAKE-002", "SRS-INTAKE-003", "SRS-API-004")
def test_zip_upload_lists_each_bad_member_with_its_code_and_stores_the_good_ones(
        service, phantom_series) -> None:
    running, _ = service
    path = sorted(phantom_series[Phase.NCCT].iterdir())[0]
    good = _bytes(_fresh(path))
    bad = _bad_instances(path)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("good.dcm", good)
        for name, (data, _, _) in bad.items():
            zipped.writestr(f"{name}.dcm", data)
    response = running.client.post("/v1/uploads", content=archive.getvalue(),
                                   headers=running.headers() | {"Content-Type":
                                                                "application/zip"})
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["stored"] == 1 and _uid(good) in _stored(running)
    assert {f["member"]: (f["reason"], f["code"]) for f in result["failed"]} == \
        {f"{name}.dcm": (status, code) for name, (_, status, code) in bad.items()}
    assert not any(n in str(result["failed"]) for n in _patient_names(path))
    assert leftovers(running.settings.data_dir, running.state.sessions) == []


@pytest.mark.req("SRS-INTAKE-001")
def test_a_zip_bomb_of_small_members_is_refused_and_stores_nothing(
        service, phantom_series) -> None:
    running, _ = service
    before = _stored(running)
    good = _bytes(_fresh(sorted(phantom_series[Phase.NCCT].iterdir())[0]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("good.dcm", good)
        for i in range(40):
            zipped.writestr(f"pad/{i}.dcm", bytes(512 * 1024))
    response = running.client.post("/v1/uploads", content=archive.getvalue(),
                                   headers=running.headers() | {"Content-Type":
                                                                "application/zip"})
    assert (response.status_code, response.json()["code"]) == (413, "ZIP_TOO_LARGE")
    assert _stored(running) == before
    assert leftovers(running.settings.data_dir, running.state.sessions) == []


@pytest.mark.req("SRS-INTAKE-002", "SRS-DIMSE-003")
def test_dimse_answers_each_bad_instance_with_its_status_and_code(
        service, phantom_series) -> None:
    running, port = service
    path = sorted(phantom_series[Phase.NCCT].iterdir())[0]
    bad = {name: case for name, case in _bad_instances(path).items() if name != "vr"}
    good = _fresh(path)
    ae = AE(ae_title=MODALITY)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="DC_LIMITS")
    assert assoc.is_established
    try:
        answers = {name: assoc.send_c_store(pydicom.dcmread(io.BytesIO(data)))
                   for name, (data, _, _) in bad.items()}
        good_status = assoc.send_c_store(good).Status
    finally:
        assoc.release()
    assert {name: (a.Status, a.ErrorComment) for name, a in answers.items()} == \
        {name: (status, code) for name, (_, status, code) in bad.items()}
    assert good_status == 0x0000 and str(good.SOPInstanceUID) in _stored(running)
    assert not any(_uid(data) in _stored(running) for data, _, _ in bad.values())
    assert leftovers(running.settings.data_dir, running.state.sessions) == []
