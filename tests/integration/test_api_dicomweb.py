"""DICOMweb through the real `dicomweb-client` over HTTP, and every bad STOW input."""

from pathlib import Path

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from digital_contrast.phantom.export import Phase
from digital_contrast.store import Instance
from digital_contrast.store.instance_store import relative_path_for
from tests.support.service import live_server, make_settings, running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("dicomweb"), empty_registry_db)
    with running_service(settings) as running:
        yield running


def _count(service) -> int:
    with service.state.sessions() as db:
        return db.query(Instance).count()


@pytest.mark.req("SRS-STORE-002")
def test_stow_files_are_durable_before_their_rows(service, phantom_series,
                                                  monkeypatch) -> None:
    """A request's files are written without a per-file fsync, then made durable by one store
    sync, which must come after the last write and before any row is recorded."""
    from digital_contrast.intake import ingestion as intake
    from digital_contrast.store.instance_store import InstanceStore

    events: list[str] = []
    real_put, real_sync, real_record = (InstanceStore.put, InstanceStore.sync,
                                        intake.record_instances)
    monkeypatch.setattr(InstanceStore, "put", lambda self, data, **kw: events.append(
        f"put sync={kw.get('sync', True)}") or real_put(self, data, **kw))
    monkeypatch.setattr(InstanceStore, "sync",
                        lambda self: events.append("sync") or real_sync(self))
    monkeypatch.setattr(intake, "record_instances",
                        lambda *a, **kw: events.append("rows") or real_record(*a, **kw))
    files = sorted(phantom_series[Phase.NCCT].iterdir())[:3]
    response = service.client.post("/dicomweb/studies",
                                   content=_multipart([("application/dicom", f.read_bytes())
                                                       for f in files]),
                                   headers=service.headers() | {"Content-Type": STOW_TYPE})
    assert response.status_code == 200
    assert events == ["put sync=False"] * 3 + ["sync", "rows"]


@pytest.mark.req("SRS-API-003", "SRS-DCMW-003", "SRS-DCMW-004")
def test_dicomweb_client_stores_searches_and_retrieves(service, phantom_series) -> None:
    datasets = [pydicom.dcmread(p) for p in sorted(phantom_series[Phase.NCCT].iterdir())]
    study, series = datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
    with live_server(service.app) as base:
        client = DICOMwebClient(f"{base}/dicomweb", headers=service.headers())
        response = client.store_instances(datasets)
        assert len(response.ReferencedSOPSequence) == len(datasets)
        assert "FailedSOPSequence" not in response
        studies = client.search_for_studies(search_filters={"StudyInstanceUID": study})
        assert [pydicom.Dataset.from_json(s).StudyInstanceUID for s in studies] == [study]
        found = client.search_for_series(study)
        assert [pydicom.Dataset.from_json(s).SeriesInstanceUID for s in found] == [series]
        retrieved = client.retrieve_series(study, series)
        assert sorted(d.SOPInstanceUID for d in retrieved) == \
            sorted(d.SOPInstanceUID for d in datasets)
        one = client.retrieve_instance(study, series, datasets[3].SOPInstanceUID)
        assert (one.pixel_array == datasets[3].pixel_array).all()
        # Storing the same instances again changes nothing.
        again = client.store_instances(datasets[:2])
        assert len(again.ReferencedSOPSequence) == 2
    assert _count(service) == len(datasets)


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> bytes:
    body = b""
    for content_type, data in parts:
        body += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b0undary'


@pytest.mark.req("SRS-API-003", "SRS-API-002", "SRS-DCMW-001")
@pytest.mark.parametrize(("content_type", "body", "status", "code"), [
    ("application/json", b"{}", 415, "STOW_MEDIA_TYPE"),
    ('multipart/related; type="image/jpeg"; boundary=b0undary', b"--b0undary--", 415,
     "STOW_MEDIA_TYPE"),
    ('multipart/related; type="application/dicom"', b"--x--", 400, "STOW_MALFORMED"),
    (STOW_TYPE, b"--b0undary\r\nContent-Type: application/dicom\r\n\r\nDICM", 400,
     "STOW_MALFORMED"),  # truncated: no closing delimiter
])
def test_malformed_stow_is_a_problem_and_stores_nothing(service, content_type: str,
                                                        body: bytes, status: int,
                                                        code: str) -> None:
    before = _count(service)
    response = service.client.post("/dicomweb/studies", content=body,
                                   headers=service.headers() | {"Content-Type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code and "Traceback" not in response.text
    assert _count(service) == before


@pytest.mark.req("SRS-API-003", "SRS-DCMW-002", "SRS-STORE-002")
def test_a_body_cut_off_after_good_parts_stores_nothing(service, phantom_series) -> None:
    """Parts are written while the body arrives; when it then turns out truncated, no row is
    recorded and the files already written are journaled, and removed by the next purge."""
    import hashlib
    import io

    parts = []
    for path in sorted(phantom_series[Phase.NCCT].iterdir())[:2]:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        parts.append(buffer.getvalue())
    body = _multipart([("application/dicom", p) for p in parts])
    cut = body[:body.rindex(b"--b0undary--")] + b"--b0undary\r\nContent-Type: application/dicom"
    before = _count(service)
    response = service.client.post("/dicomweb/studies", content=cut,
                                   headers=service.headers() | {"Content-Type": STOW_TYPE})
    assert (response.status_code, response.json()["code"]) == (400, "STOW_MALFORMED")
    assert _count(service) == before
    paths = [service.state.instances.root / relative_path_for(hashlib.sha256(p).hexdigest())
             for p in parts]
    # The files written before the body broke off are gone at once, and so is their intent.
    assert not any(p.exists() for p in paths)
    assert not list(service.state.instances.journal.root.glob("*/*"))


@pytest.mark.req("SRS-API-003", "SRS-DCMW-001")
def test_a_stow_body_over_the_limit_is_refused_and_stores_nothing(
        tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path,
        phantom_series) -> None:
    files = sorted(phantom_series[Phase.NCCT].iterdir())[:3]
    body = _multipart([("application/dicom", f.read_bytes()) for f in files])
    settings = make_settings(tmp_path_factory.mktemp("stow-limit"), empty_registry_db,
                             max_upload_bytes=len(body) - 1)  # one byte short
    with running_service(settings) as small:
        response = small.client.post("/dicomweb/studies", content=body,
                                     headers=small.headers() | {"Content-Type": STOW_TYPE})
        assert (response.status_code, response.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        assert _count(small) == 0
        within = _multipart([("application/dicom", f.read_bytes()) for f in files[:2]])
        accepted = small.client.post("/dicomweb/studies", content=within,
                                     headers=small.headers() | {"Content-Type": STOW_TYPE})
        assert accepted.status_code == 200 and _count(small) == 2


@pytest.mark.req("SRS-API-003", "SRS-DCMW-002", "SRS-DCMW-003")
def test_bad_parts_fail_alone_with_their_reason(service, phantom_series) -> None:
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    good = files[0].read_bytes()
    before = _count(service)
    response = service.client.post(
        "/dicomweb/studies", headers=service.headers() | {"Content-Type": STOW_TYPE},
        content=_multipart([("application/dicom", b"not dicom at all"),
                            ("text/plain", b"hello"), ("application/dicom", good)]))
    assert response.status_code == 202
    result = pydicom.Dataset.from_json(response.json())
    assert len(result.ReferencedSOPSequence) == 1
    assert sorted(int(i.FailureReason) for i in result.FailedSOPSequence) == [0xC000, 0xC000]
    assert _count(service) - before <= 1  # the good part (already known from the other test)


@pytest.mark.req("SRS-API-003", "SRS-DCMW-002")
def test_synthetic_input_is_refused_at_intake(service, phantom_series) -> None:
    ds = pydicom.dcmread(sorted(phantom_series[Phase.NCCT].iterdir())[0])
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.999"
    ds.SyntheticData = "YES"
    path = Path(service.settings.data_dir) / "synthetic.dcm"
    ds.save_as(path, enforce_file_format=True)
    response = service.client.post(
        "/dicomweb/studies", headers=service.headers() | {"Content-Type": STOW_TYPE},
        content=_multipart([("application/dicom", path.read_bytes())]))
    assert response.status_code == 409
    result = pydicom.Dataset.from_json(response.json())
    assert [int(i.FailureReason) for i in result.FailedSOPSequence] == [0xA902]


@pytest.mark.req("SRS-API-003")
def test_wado_of_unknown_series_is_404(service) -> None:
    response = service.client.get("/dicomweb/studies/1.2.3/series/4.5.6",
                                  headers=service.headers())
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    bad_uid = service.client.get("/dicomweb/studies/abc/series", headers=service.headers())
    assert bad_uid.status_code == 400 and bad_uid.json()["code"] == "DICOMWEB_BAD_UID"
