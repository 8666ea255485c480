"""Hardening (issue 18): inputs that used to end in a 500 are typed 4xx problems, and an admin
cannot mint keys for another site or give itself image access."""

from pathlib import Path

import pytest

from digital_contrast.store import Role
from tests.support.service import make_settings, running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    with running_service(make_settings(tmp_path_factory.mktemp("hardening"),
                                       empty_registry_db)) as running:
        yield running


@pytest.mark.req("SRS-API-023")
@pytest.mark.parametrize(("method", "path", "params", "role", "status", "code"), [
    ("GET", "/dicomweb/studies", {"limit": "\u00b2"}, Role.CLINICIAN, 400, "QIDO_BAD_QUERY"),
    ("GET", "/dicomweb/studies", {"offset": "9" * 40}, Role.CLINICIAN, 400, "QIDO_BAD_QUERY"),
    ("GET", "/dicomweb/series", {"limit": "\u0663"}, Role.CLINICIAN, 400, "QIDO_BAD_QUERY"),
    ("GET", "/v1/jobs", {"since": "9999-12-31T23:59:59-23:59"}, Role.CLINICIAN, 422,
     "REQUEST_INVALID"),
    ("GET", "/v1/jobs", {"since": "0001-01-01T00:00:00+23:59"}, Role.CLINICIAN, 422,
     "REQUEST_INVALID"),
    ("DELETE", "/v1/keys/9223372036854775808", {}, Role.ADMIN, 422, "REQUEST_INVALID"),
    ("DELETE", "/v1/keys/-1", {}, Role.ADMIN, 422, "REQUEST_INVALID"),
])
def test_inputs_that_crashed_are_typed_problems(service, method: str, path: str, params: dict,
                                                role: Role, status: int, code: str) -> None:
    response = service.client.request(method, path, params=params,
                                       headers=service.headers(role))
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


@pytest.mark.req("SRS-KEY-006")
def test_an_admin_manages_keys_of_its_own_site_only_and_never_for_images(service) -> None:
    admin = service.headers(Role.ADMIN)
    other = service.client.post("/v1/keys", headers=admin, json={
        "name": "x", "role": "regulatory", "site": "another-site"})
    assert other.status_code == 403 and other.json()["code"] == "SITE_FORBIDDEN"
    huge = service.client.post("/v1/keys", headers=admin, json={
        "name": "x", "role": "regulatory", "site": "s" * 5000})
    assert huge.status_code == 422
    clinician = service.client.post("/v1/keys", headers=admin, json={
        "name": "self-service", "role": "clinician"})
    assert clinician.status_code == 403 and clinician.json()["code"] == "ROLE_FORBIDDEN"
    own = service.client.post("/v1/keys", headers=admin, json={"name": "audit",
                                                               "role": "regulatory"})
    assert own.status_code == 201 and own.json()["site"] == service.settings.site
    assert "audit" in [k["name"] for k in service.client.get("/v1/keys", headers=admin).json()]


@pytest.mark.req("SRS-API-023")
def test_a_client_that_leaves_mid_upload_is_not_a_server_error(
        service, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import logging

    key = service.headers()["X-API-Key"].encode()
    scope = {"type": "http", "http_version": "1.1", "method": "POST",
             "path": "/dicomweb/studies", "raw_path": b"/dicomweb/studies", "query_string": b"",
             "root_path": "", "scheme": "http", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 5000), "app": service.app,
             "headers": [(b"x-api-key", key), (b"content-type",
                          b'multipart/related; type="application/dicom"; boundary=b')]}
    messages = [{"type": "http.request", "body": b"--b\r\nContent-Type: application/dicom"
                 b"\r\n\r\npartial", "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    with caplog.at_level(logging.INFO):
        asyncio.run(service.app(scope, receive, send))
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [400]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.req("SRS-API-002")
def test_a_body_that_is_not_text_is_a_typed_problem(service) -> None:
    response = service.client.post("/v1/jobs", content=b"\xff\xfe\x00{",
                                   headers=service.headers() | {
                                       "Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (422, "REQUEST_INVALID")
