"""Orthanc (Debian orthanc + orthanc-dicomweb) as the PACS, over DICOMweb: it pushes a study to
us through its own STOW-RS client and pulls a series back through its WADO-RS client."""

import hashlib
from pathlib import Path

import pydicom
import pytest

from digital_contrast.phantom.export import Phase
from digital_contrast.store import Instance
from tests.support.orthanc import running_orthanc
from tests.support.service import live_server, make_settings, running_service

PEER = "digital-contrast"


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    """Our service on a real port, and Orthanc knowing it as a DICOMweb server."""
    root = tmp_path_factory.mktemp("orthanc-dicomweb")
    with running_service(make_settings(root / "service", empty_registry_db)) as service, \
            live_server(service.app) as base:
        servers = {PEER: {"Url": f"{base}/dicomweb/", "HttpHeaders": service.headers()}}
        with running_orthanc(root / "orthanc", dicomweb_servers=servers) as orthanc:
            yield service, orthanc


def _stored_here(service) -> dict[str, str]:
    with service.state.sessions() as db:
        return {i.sop_instance_uid: i.sha256 for i in db.query(Instance)}


@pytest.mark.req("SRS-DCMW-007", "SRS-DCMW-001")
def test_orthanc_pushes_a_study_through_its_own_stow_rs_client(peers, phantom_series) -> None:
    service, orthanc = peers
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    (study,) = orthanc.upload(files)
    answer = orthanc.post(f"/dicom-web/servers/{PEER}/stow",
                          {"Resources": [study], "Synchronous": True})
    assert answer == {} or "Failed" not in str(answer), answer
    series = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    sent = orthanc.files(series)
    assert len(sent) == len(files)
    stored = _stored_here(service)  # every instance, byte for byte as Orthanc holds it
    assert {uid: stored.get(uid) for uid in sent} == {
        uid: hashlib.sha256(data).hexdigest() for uid, data in sent.items()}


@pytest.mark.req("SRS-DCMW-007", "SRS-DCMW-004")
def test_orthanc_retrieves_a_series_through_its_wado_rs_client(peers, phantom_series) -> None:
    service, orthanc = peers
    files = sorted(phantom_series[Phase.ARTERIAL].iterdir())
    service.client.post("/v1/uploads", content=_zip(files),
                        headers=service.headers() | {"Content-Type": "application/zip"}
                        ).raise_for_status()
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    orthanc.post(f"/dicom-web/servers/{PEER}/retrieve", {"Resources": [
        {"Study": str(first.StudyInstanceUID), "Series": str(first.SeriesInstanceUID)}]})
    expected = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}
    assert orthanc.sop_instance_uids(str(first.SeriesInstanceUID)) == expected


def _zip(files: list[Path]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in files:
            archive.write(path, path.name)
    return buffer.getvalue()
