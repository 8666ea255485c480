"""Limits before work (issue 18): oversized bodies and headers refused before authentication
and unread, stalled bodies timed out without blocking other uploads, request rates per address
and per key (shared through Redis by several service instances), wrong keys locking their
address out in the database (shared too), keys that expire and rotate, and no answer with
patient data cacheable."""

import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from digital_contrast.api.app import create_app
from digital_contrast.phantom.export import Phase
from digital_contrast.store import Role
from digital_contrast.store import api_keys as api_keys_module
from digital_contrast.store.audit import list_audit
from tests.support.service import live_server, make_settings, running_service

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b0undary'


def _settings(tmp_path: Path, registry: Path, **overrides):
    return make_settings(tmp_path / uuid.uuid4().hex[:8], registry, **overrides)


def _raw(url: str, request: bytes, *, then_wait_s: float = 10.0) -> bytes:
    """Send `request` over a raw socket and read the answer (the connection may stay open)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=then_wait_s) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.req("SRS-API-024")
def test_an_oversized_body_is_refused_unread_and_before_authentication(
        tmp_path: Path, empty_registry_db: Path) -> None:
    settings = _settings(tmp_path, empty_registry_db, max_request_bytes=4096)
    with running_service(settings) as service, live_server(service.app) as url:
        # 300 MB announced, none sent, no key: refused at once, nothing read.
        answer = _raw(url, b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                           b"application/json\r\nContent-Length: 300000000\r\n\r\n{")
        assert answer.startswith(b"HTTP/1.1 413") and b"REQUEST_TOO_LARGE" in answer
        assert b"no-store" in answer.lower()

        def endless():  # no Content-Length: the body is cut off at the limit
            for _ in range(10_000):
                yield b" " * 1024

        response = httpx.post(f"{url}/v1/jobs", content=endless(),
                              headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["code"]) == (413, "REQUEST_TOO_LARGE")
        stow = service.client.post("/dicomweb/studies", content=b"x" * 10, headers={
            "Content-Type": STOW_TYPE, "Content-Length": str(settings.max_upload_bytes + 1)})
        assert (stow.status_code, stow.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        bad = service.client.post("/v1/jobs", content=b"{}", headers={
            "Content-Length": "1e3", "Content-Type": "application/json"})
        assert (bad.status_code, bad.json()["code"]) == (400, "REQUEST_INVALID")


@pytest.mark.req("SRS-API-024")
def test_too_many_or_too_large_headers_are_refused(tmp_path: Path,
                                                   empty_registry_db: Path) -> None:
    with running_service(_settings(tmp_path, empty_registry_db)) as service:
        many = {f"X-H{i}": "1" for i in range(150)}
        large = {"X-Big": "a" * 20_000}
        for headers in (many, large):
            response = service.client.get("/v1/jobs", headers=headers)
            assert (response.status_code, response.json()["code"]) == (
                431, "REQUEST_HEADERS_TOO_LARGE")


@pytest.mark.req("SRS-API-024")
def test_stalled_bodies_time_out_and_block_no_other_upload(
        tmp_path: Path, empty_registry_db: Path, phantom_series) -> None:
    settings = _settings(tmp_path, empty_registry_db, body_idle_timeout_s=2.0)
    part = sorted(phantom_series[Phase.NCCT].iterdir())[0].read_bytes()
    body = (b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + part +
            b"\r\n--b0undary--\r\n")
    with running_service(settings) as service, live_server(service.app) as url:
        key = service.keys[Role.CLINICIAN]
        head = (f"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
                f"Content-Type: {STOW_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        answers: list[bytes] = []
        # More stalled uploads than the STOW readers (32), each sending half its body.
        stalled = [threading.Thread(target=lambda: answers.append(_raw(
            url, head + body[:len(body) // 2], then_wait_s=60))) for _ in range(40)]
        for thread in stalled:
            thread.start()
        time.sleep(0.5)
        good = httpx.post(f"{url}/dicomweb/studies", content=body, timeout=60,
                          headers={"X-API-Key": key, "Content-Type": STOW_TYPE})
        assert good.status_code == 200, good.text
        for thread in stalled:
            thread.join(timeout=60)
        assert len(answers) == 40
        assert all(a.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in a for a in answers)


@pytest.mark.req("SRS-API-025")
def test_request_rates_per_address_and_per_key(tmp_path: Path,
                                               empty_registry_db: Path) -> None:
    settings = _settings(tmp_path, empty_registry_db, rate_limit_key="3/minute",
                         rate_limit_address="7/minute")
    with running_service(settings) as service:
        statuses = [service.client.get("/v1/jobs", headers=service.headers()).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = service.client.get("/v1/jobs", headers=service.headers())
        assert limited.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        other_key = [service.client.get("/v1/keys", headers=service.headers(Role.ADMIN))
                     for _ in range(2)]
        assert [r.status_code for r in other_key] == [200, 200]
        # The eighth request from this address: refused whatever its route (a public one).
        by_address = service.client.get("/healthz")
        assert (by_address.status_code, by_address.json()["code"]) == (429, "RATE_LIMITED")


@pytest.mark.req("SRS-API-025")
def test_request_rates_are_shared_by_service_processes_through_redis(
        tmp_path: Path, empty_registry_db: Path) -> None:
    settings = _settings(tmp_path, empty_registry_db, rate_limit_key="4/minute",
                         rate_limit_storage="redis://127.0.0.1:6379/0")
    # A second service instance of the same installation (own app, own limiter).
    with running_service(settings) as first, \
            TestClient(create_app(settings, background=False)) as second:
        headers = first.headers()
        statuses = [client.get("/v1/jobs", headers=headers).status_code
                    for client in (first.client, second, first.client, second, second)]
    assert statuses == [200, 200, 200, 200, 429]


@pytest.mark.req("SRS-API-026")
def test_wrong_keys_lock_their_address_out_across_instances(tmp_path: Path,
                                                            empty_registry_db: Path) -> None:
    settings = _settings(tmp_path, empty_registry_db, auth_lockout_failures=3)
    wrong = {"X-API-Key": "dc_0123456789ab_" + "x" * 43}
    with running_service(settings) as first, \
            TestClient(create_app(settings, background=False)) as second:
        answers = [c.get("/v1/jobs", headers=wrong) for c in (first.client, second,
                                                              first.client)]
        assert [a.status_code for a in answers] == [401, 401, 401]
        locked = second.get("/v1/jobs", headers=first.headers())  # even a good key
        assert (locked.status_code, locked.json()["code"]) == (429, "AUTH_LOCKED")
        assert int(locked.headers["Retry-After"]) > 800
        with first.state.sessions() as db:
            (event,) = [e for e in list_audit(db, settings.site) if e.action == "auth.lockout"]
            assert event.outcome == "refused" and event.object_id == "address:testclient"


@pytest.mark.req("SRS-API-026")
def test_text_that_is_not_a_key_costs_no_hashing(monkeypatch: pytest.MonkeyPatch,
                                                 store_sessions) -> None:
    calls = []
    real = api_keys_module._derive
    monkeypatch.setattr(api_keys_module, "_derive", lambda *a, **k: calls.append(1) or real(
        *a, **k))
    with store_sessions() as db:
        assert api_keys_module.authenticate(db, "garbage" * 1000) is None
        assert calls == []
        assert api_keys_module.authenticate(db, "dc_0123456789ab_" + "y" * 43) is None
        assert calls == [1]  # an unknown key costs what a real check costs


@pytest.mark.req("SRS-KEY-007")
def test_keys_expire_and_rotate_with_a_grace_period(tmp_path: Path,
                                                    empty_registry_db: Path) -> None:
    with running_service(_settings(tmp_path, empty_registry_db)) as service:
        admin = service.headers(Role.ADMIN)
        made = service.client.post("/v1/keys", json={"name": "dashboard", "role": "regulatory",
                                                      "valid_days": 30}, headers=admin)
        assert made.status_code == 201
        old = made.json()
        rotated = service.client.post(f"/v1/keys/{old['id']}/rotate",
                                      json={"grace_days": 0}, headers=admin)
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()
        assert (new["name"], new["role"]) == ("dashboard", "regulatory")
        assert service.client.get("/v1/audit", headers={"X-API-Key": new["key"]}
                                  ).status_code == 200
        expired = service.client.get("/v1/audit", headers={"X-API-Key": old["key"]})
        assert (expired.status_code, expired.json()["code"]) == (401, "AUTH_INVALID")
        listed = {k["id"]: k for k in service.client.get("/v1/keys", headers=admin).json()}
        assert listed[old["id"]]["expires_at"] <= listed[new["id"]]["expires_at"]
        clinician = next(k for k in listed.values() if k["role"] == "clinician")
        refused = service.client.post(f"/v1/keys/{clinician['id']}/rotate", json={},
                                      headers=admin)
        assert (refused.status_code, refused.json()["code"]) == (403, "ROLE_FORBIDDEN")
        for body in ({"valid_days": 0}, {"grace_days": 91}, {"grace_days": -1}):
            bad = service.client.post(f"/v1/keys/{new['id']}/rotate", json=body, headers=admin)
            assert (bad.status_code, bad.json()["code"]) == (422, "REQUEST_INVALID")
        gone = service.client.post(f"/v1/keys/{old['id']}/rotate", json={}, headers=admin)
        assert (gone.status_code, gone.json()["code"]) == (404, "API_KEY_NOT_FOUND")


@pytest.mark.req("SRS-API-027")
def test_answers_with_patient_data_are_never_cached(tmp_path: Path, empty_registry_db: Path,
                                                    phantom_series) -> None:
    from tests.support.service import upload

    with running_service(_settings(tmp_path, empty_registry_db)) as service:
        uid = upload(service, phantom_series[Phase.NCCT])
        for path in ("/dicomweb/studies", f"/dicomweb/series?SeriesInstanceUID={uid}",
                     "/v1/jobs", "/v1/keys"):
            role = Role.ADMIN if path == "/v1/keys" else Role.CLINICIAN
            response = service.client.get(path, headers=service.headers(role))
            assert response.status_code == 200, path
            assert response.headers["Cache-Control"] == "no-store", path
        problem = service.client.get("/v1/jobs")
        assert problem.headers["Cache-Control"] == "no-store"
        static = service.client.get("/static/vendor/swagger-ui.css")
        assert static.status_code == 200
        assert "no-store" not in static.headers.get("Cache-Control", "")


@pytest.mark.req("SRS-API-025")
@pytest.mark.parametrize("field, value", [("rate_limit_key", "lots"),
                                          ("rate_limit_address", "0/minute"),
                                          ("rate_limit_storage", "file:///tmp/x")])
def test_an_unusable_rate_setting_stops_the_start(field: str, value: str) -> None:
    from pydantic import ValidationError

    from digital_contrast.config import Settings

    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})
