"""The real client against our messages: dicomweb-client stores into and retrieves from a fake
origin server built only from `digital_contrast.api.dicomweb` (no network, no web app)."""

import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.uid import MRImageStorage
from requests.adapters import BaseAdapter

from digital_contrast.api.dicomweb import (
    DICOM_JSON,
    DicomWebError,
    StowRequest,
    build_multipart_related,
    parse_multipart_related,
)
from tests.support.ct_series import ct_slices, to_bytes

BASE = "http://dc.test/dicomweb"
Handler = Callable[[requests.PreparedRequest, bytes], tuple[int, dict[str, str], Iterable[bytes]]]


class FakeTransport(BaseAdapter):
    """A requests transport that hands each request to `handler` instead of the network."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.seen: list[tuple[requests.PreparedRequest, bytes]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body
        if body is None:
            body = b""
        elif not isinstance(body, bytes | str):  # chunked upload: an iterator of chunks
            body = b"".join(body)
        body = body.encode() if isinstance(body, str) else body
        self.seen.append((request, body))
        status, headers, chunks = self.handler(request, body)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.raw = io.BytesIO(b"".join(chunks))
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class FakeOrigin:
    """The thinnest possible routes over the message layer, keeping instances in a dict."""

    def __init__(self) -> None:
        self.instances: dict[str, tuple[str, str, bytes]] = {}

    def __call__(self, request: requests.PreparedRequest,
                 body: bytes) -> tuple[int, dict[str, str], Iterable[bytes]]:
        path = (request.url or "").removeprefix(BASE)
        if request.method == "POST":
            return self.store(path, request.headers.get("Content-Type"), body)
        match = re.fullmatch(r"/studies/([\d.]+)/series/([\d.]+)(?:/instances/([\d.]+))?",
                             path.split("?")[0])
        assert match, path
        return self.retrieve(*match.groups())

    def store(self, path: str, content_type: str | None,
              body: bytes) -> tuple[int, dict[str, str], Iterable[bytes]]:
        study = path.removeprefix("/studies").strip("/") or None
        try:
            request = StowRequest(BASE, study_instance_uid=study)
            parts = parse_multipart_related(body, content_type)
        except DicomWebError as error:
            problem = {"code": error.code, "detail": error.detail, "status": error.status}
            return error.status, {"Content-Type": "application/problem+json"}, \
                [json.dumps(problem).encode()]
        for part in parts:
            instance = request.check(part)
            if instance is not None:
                self.instances[instance.sop_instance_uid] = (
                    instance.study_instance_uid, instance.series_instance_uid, instance.data)
                request.stored(instance)
        return request.status, {"Content-Type": DICOM_JSON}, \
            [json.dumps(request.response()).encode()]

    def retrieve(self, study: str, series: str,
                 sop: str | None) -> tuple[int, dict[str, str], Iterable[bytes]]:
        found = [data for uid, (st, se, data) in self.instances.items()
                 if (st, se) == (study, series) and sop in (None, uid)]
        if not found:
            return 404, {}, []
        chunks, content_type = build_multipart_related(found)
        return 200, {"Content-Type": content_type}, chunks


def _client(origin: FakeOrigin, **options: Any) -> tuple[DICOMwebClient, FakeTransport]:
    transport = FakeTransport(origin)
    session = requests.Session()
    session.mount("http://", transport)
    return DICOMwebClient(BASE, session=session, **options), transport


@pytest.mark.req("SRS-DCMW-001", "SRS-DCMW-003", "SRS-DCMW-004")
@pytest.mark.parametrize("chunk_size", [10**6, 1000])  # 1000: chunked transfer encoding
def test_store_then_retrieve_a_series_with_dicomweb_client(chunk_size: int) -> None:
    datasets, _ = ct_slices(n=4)
    origin = FakeOrigin()
    client, transport = _client(origin, chunk_size=chunk_size)
    result = client.store_instances(datasets)
    assert isinstance(result, pydicom.Dataset)
    assert [item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence] == \
        [ds.SOPInstanceUID for ds in datasets]
    assert "FailedSOPSequence" not in result
    study, series = datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
    assert result.RetrieveURL == f"{BASE}/studies/{study}"
    assert result.ReferencedSOPSequence[0].RetrieveURL.startswith(
        f"{BASE}/studies/{study}/series/{series}/instances/")
    assert transport.seen[0][0].headers.get("Transfer-Encoding") == (
        "chunked" if chunk_size == 1000 else None)

    retrieved = client.retrieve_series(study, series)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == \
        sorted(ds.SOPInstanceUID for ds in datasets)
    assert {to_bytes(ds) for ds in retrieved} == {to_bytes(ds) for ds in datasets}
    streamed = list(client.iter_series(study, series))  # chunked decoding on the client side
    assert [ds.SOPInstanceUID for ds in streamed] == [ds.SOPInstanceUID for ds in retrieved]
    one = client.retrieve_instance(study, series, datasets[2].SOPInstanceUID)
    assert one.SOPInstanceUID == datasets[2].SOPInstanceUID
    assert (one.pixel_array == datasets[2].pixel_array).all()


@pytest.mark.req("SRS-DCMW-002", "SRS-DCMW-003")
def test_partial_store_is_202_with_failures_that_the_client_reads() -> None:
    datasets, _ = ct_slices(n=2)
    mr = pydicom.dcmread(io.BytesIO(to_bytes(datasets[1])))
    mr.SOPClassUID = MRImageStorage
    mr.file_meta.MediaStorageSOPClassUID = MRImageStorage
    client, _ = _client(FakeOrigin())
    result = client.store_instances([datasets[0], mr])
    assert len(result.ReferencedSOPSequence) == 1
    assert [(item.ReferencedSOPInstanceUID, item.FailureReason)
            for item in result.FailedSOPSequence] == [(mr.SOPInstanceUID, 0x0122)]


@pytest.mark.req("SRS-DCMW-002", "SRS-DCMW-003")
def test_nothing_stored_is_409_and_the_client_raises() -> None:
    datasets, _ = ct_slices(n=1)
    origin = FakeOrigin()
    client, transport = _client(origin)
    with pytest.raises(requests.HTTPError) as info:
        client.store_instances(datasets, study_instance_uid="1.2.3.4")
    assert info.value.response.status_code == 409
    response = pydicom.Dataset.from_json(info.value.response.json())
    assert response.FailedSOPSequence[0].FailureReason == 0xA901
    assert transport.seen[0][0].url == f"{BASE}/studies/1.2.3.4"
    assert not origin.instances


@pytest.mark.req("SRS-DCMW-001")
def test_a_body_the_parser_refuses_reaches_the_client_as_a_problem() -> None:
    origin = FakeOrigin()
    status, headers, chunks = origin.store("", "multipart/related; boundary=x", b"--x\r\n")
    assert status == 400 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(b"".join(chunks))["code"] == "STOW_MALFORMED"
    status, _, _ = origin.store("", "application/dicom", to_bytes(ct_slices(n=1)[0][0]))
    assert status == 415
