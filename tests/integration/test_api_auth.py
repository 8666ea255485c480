"""Role matrix: every route is in it, and every role gets 401/403 exactly where it should."""

from pathlib import Path

import pytest

from digital_contrast.api.roles import PUBLIC, ROUTE_ROLES
from digital_contrast.store import Role
from tests.support.service import make_settings, running_service

UID = "1.2.3.4"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("auth"), empty_registry_db)
    with running_service(settings) as running:
        yield running


def _routes(service) -> set[tuple[str, str]]:
    schema = service.client.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, item in schema["paths"].items()
                  for method in item}
    return documented | {("GET", p) for p in ("/", "/openapi.json", "/docs", "/redoc",
                                              "/docs/oauth2-redirect")}


@pytest.mark.req("SRS-API-001")
def test_every_route_is_in_the_role_matrix_and_nothing_else(service) -> None:
    assert _routes(service) == set(ROUTE_ROLES)


@pytest.mark.req("SRS-API-001", "SRS-KEY-001", "SRS-EXP-025")
@pytest.mark.parametrize(("method", "path"), sorted(ROUTE_ROLES))
def test_each_role_is_refused_where_it_should_be(service, method: str, path: str) -> None:
    url = path.replace("{job_id}", "no-such-job").replace("{key_id}", "999999")
    url = url.replace("{slug}", "uncertainty-tta").replace("{name}", "preview_axial.png")
    for name in ("study", "series", "instance"):
        url = url.replace("{" + name + "}", UID)
    allowed = ROUTE_ROLES[method, path]

    def call(headers: dict[str, str]) -> int:
        return service.client.request(method, url, headers=headers).status_code

    if allowed == PUBLIC:
        assert call({}) not in (401, 403)
        return
    for headers in ({}, {"X-API-Key": "dc_000000000000_wrong"},
                    {"Authorization": "Bearer not-a-key"}):
        response = service.client.request(method, url, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in ("AUTH_MISSING", "AUTH_INVALID")
    for role in Role:
        status = call(service.headers(role))
        if role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


@pytest.mark.req("SRS-API-001", "SRS-KEY-002")
def test_a_revoked_key_is_refused(service) -> None:
    admin = service.headers(Role.ADMIN)
    created = service.client.post("/v1/keys", json={"name": "temp", "role": "regulatory"},
                                  headers=admin)
    assert created.status_code == 201
    key = {"X-API-Key": created.json()["key"]}
    assert service.client.get("/v1/audit", headers=key).status_code == 200
    listed = service.client.get("/v1/keys", headers=admin).json()
    assert all("key" not in entry for entry in listed)
    assert service.client.delete(f"/v1/keys/{created.json()['id']}",
                                 headers=admin).status_code == 204
    refused = service.client.get("/v1/audit", headers=key)
    assert refused.status_code == 401 and refused.json()["code"] == "AUTH_INVALID"
