"""The researcher role: admitted by the database from migration 0009 on (a 0.1.0 database
upgraded, on SQLite and PostgreSQL), and allowed on the repository's routes only."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from digital_contrast.api.roles import PAGE_ROLES, RESEARCH, ROUTE_ROLES
from digital_contrast.api.routers import repository as repository_routes
from digital_contrast.repository.index.cohorts import save_cohort
from digital_contrast.repository.index.database import open_index, sessions
from digital_contrast.repository.index.records import record_series
from digital_contrast.repository.index.search import SeriesQuery
from digital_contrast.repository.index.tables import Series
from digital_contrast.store import Role, StoreError
from digital_contrast.store.audit import list_audit
from digital_contrast.store.database import current_revision, downgrade, upgrade_to_head
from tests.integration.test_store_schema import _database_at_0002
from tests.support.cli import run_cli, site_environment
from tests.support.repository import index_row
from tests.support.service import make_settings, running_service

NOW = datetime(2026, 12, 8, tzinfo=UTC)
REPOSITORY_PREFIX = "/v1/repository/"


def _insert_key(engine: Engine, key_id: int, role: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO api_keys (id, site, name, role, prefix, salt, key_hash, created_at) "
            "VALUES (:id, 'site-a', :name, :role, :prefix, 's', 'h', :now)"),
            {"id": key_id, "name": f"key-{key_id}", "role": role,
             "prefix": f"prefix{key_id:06d}", "now": NOW})


def _roles(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT id, role FROM api_keys ORDER BY id"))]


@pytest.mark.req("SRS-REPO-010", "SRS-STORE-001")
def test_a_0_1_0_database_upgraded_to_head_admits_researcher_keys_only(blank_url: str
                                                                         ) -> None:
    """A job naming the key that submitted it: on SQLite the table is made again under it."""
    engine = _database_at_0002(blank_url)
    try:
        _insert_key(engine, 1, "clinician")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO jobs (id, site, use_case, options, bundle_sha256, model_name, "
                "model_version, state, attempts, created_at, submitted_by) VALUES ('job-1', "
                "'site-a', 'aaa-cta', '{}', 'b', 'm', '1', 'queued', 0, :now, 1)"),
                {"now": NOW})
        with pytest.raises(IntegrityError):  # 0.1.0 knew no researcher
            _insert_key(engine, 2, "researcher")
        upgrade_to_head(engine)
        _insert_key(engine, 2, "researcher")
        with pytest.raises(IntegrityError):
            _insert_key(engine, 3, "superuser")
        assert _roles(engine) == [(1, "clinician"), (2, "researcher")]
        with engine.connect() as connection:
            assert connection.execute(text("SELECT submitted_by FROM jobs")).scalar() == 1
            with pytest.raises(IntegrityError):  # foreign keys still hold on the new table
                connection.execute(text(
                    "INSERT INTO jobs (id, site, use_case, options, bundle_sha256, model_name,"
                    " model_version, state, attempts, created_at, submitted_by) VALUES "
                    "('job-2', 'site-a', 'aaa-cta', '{}', 'b', 'm', '1', 'queued', 0, :now, "
                    "99)"), {"now": NOW})
    finally:
        engine.dispose()


@pytest.mark.req("SRS-REPO-010", "SRS-STORE-001")
def test_the_downgrade_refuses_while_researcher_keys_exist(blank_url: str) -> None:
    engine = _database_at_0002(blank_url)
    try:
        upgrade_to_head(engine)
        downgrade(engine, "0009")
        _insert_key(engine, 1, "admin")
        _insert_key(engine, 2, "researcher")
        with pytest.raises(StoreError) as info:
            downgrade(engine, "0008")
        assert info.value.code == "API_KEY_INVALID" and "researcher" in info.value.detail
        assert current_revision(engine) == "0009" and _roles(engine) == [(1, "admin"),
                                                                          (2, "researcher")]
        with engine.begin() as connection:  # the operator's decision, not the migration's
            connection.execute(text("DELETE FROM api_keys WHERE role = 'researcher'"))
        downgrade(engine, "0008")
        assert current_revision(engine) == "0008" and _roles(engine) == [(1, "admin")]
        with pytest.raises(IntegrityError):
            _insert_key(engine, 3, "researcher")
    finally:
        engine.dispose()


@pytest.mark.req("SRS-REPO-010")
def test_the_researcher_is_in_no_role_set_but_the_repository_routes() -> None:
    """Never the clinical store, records, keys, sustainability or the dashboard."""
    matrix = {**ROUTE_ROLES, **PAGE_ROLES}
    repository = {route for route in matrix if route[1].startswith(REPOSITORY_PREFIX)}
    assert repository == {("GET", "/v1/repository/series"), ("GET", "/v1/repository/cohorts"),
                          ("GET", "/v1/repository/cohorts/{name}")}
    assert frozenset({Role.RESEARCHER}) == RESEARCH
    assert all(matrix[route] == RESEARCH for route in repository)
    assert [route for route, roles in matrix.items()
            if Role.RESEARCHER in roles and route not in repository] == []


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    """A service whose series index holds a native + portal-venous pair, an arterial series
    without a native one, and cohort `pv-pairs` saved twice (two versions)."""
    settings = make_settings(tmp_path_factory.mktemp("researcher"), empty_registry_db)
    engine = open_index(settings.repository_database_url)
    make = sessions(engine)
    with make.begin() as session:
        record_series(session, [index_row(0), index_row(1, phase="portal_venous"),
                                index_row(2, phase="arterial", kernel="FC08")])
        save_cohort(session, "pv-pairs", SeriesQuery(phase=["portal_venous"]), "pairs")
        save_cohort(session, "pv-pairs", SeriesQuery(with_native_pair=True), "pairs")
    engine.dispose()
    with running_service(settings) as running:
        yield running


@pytest.mark.req("SRS-REPO-010", "SRS-API-001")
def test_a_researcher_key_reads_the_repository_and_nothing_of_the_clinical_store(service
                                                                                  ) -> None:
    researcher = service.headers(Role.RESEARCHER)
    assert service.client.get("/v1/repository/series", headers=researcher).status_code == 200
    for method, path in (("GET", "/dicomweb/studies"), ("GET", "/v1/jobs"),
                         ("POST", "/v1/jobs"), ("GET", "/dicomweb/series"),
                         ("POST", "/v1/uploads"), ("GET", "/v1/audit"), ("GET", "/v1/keys"),
                         ("GET", "/v1/records/qms"), ("GET", "/v1/sustainability/summary"),
                         ("GET", "/dashboard/sustainability")):
        response = service.client.request(method, path, headers=researcher)
        assert response.status_code == 403, (method, path, response.status_code)
        assert response.json()["code"] == "AUTH_FORBIDDEN"
    for role in set(Role) - {Role.RESEARCHER}:
        for path in ("/v1/repository/series", "/v1/repository/cohorts",
                     "/v1/repository/cohorts/pv-pairs"):
            response = service.client.get(path, headers=service.headers(role))
            assert response.status_code == 403, (role, path)
    assert service.client.get("/v1/repository/series").status_code == 401
    made = service.client.post("/v1/keys", json={"name": "study-y", "role": "researcher"},
                               headers=service.headers(Role.ADMIN))  # by an admin, too
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["key"]}
    assert service.client.get("/v1/repository/cohorts", headers=key).status_code == 200


@pytest.mark.req("SRS-REPO-011")
def test_the_search_over_the_api_answers_as_the_command_line(service) -> None:
    researcher = service.headers(Role.RESEARCHER)
    response = service.client.get("/v1/repository/series?phase=portal_venous&phase=arterial"
                                  "&limit=1", headers=researcher)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["limit"], len(body["series"])) == (2, 1, 1)
    (row,) = body["series"]
    assert set(row) == {c.name for c in Series.__table__.columns} - {"id"}  # as `--json`
    assert (row["series_uid"], row["phase"], row["phase_source"], row["study_date"]) == (
        "2.25.1", "portal_venous", "header", "2015-01-01")
    assert "unverified" in body["evidence"] and "generated" in body["evidence"]
    pairs = service.client.get("/v1/repository/series?with_native_pair=true&kernel=B30F",
                               headers=researcher).json()
    assert [r["series_uid"] for r in pairs["series"]] == ["2.25.1"]
    counted = service.client.get("/v1/repository/series?limit=0&sex=F&kvp_min=100&kvp_max=120",
                                 headers=researcher).json()
    assert (counted["count"], counted["series"]) == (3, [])
    with service.state.sessions() as db:
        audited = [e for e in list_audit(db, service.settings.site)
                   if e.action == "repository.search"]
    assert audited[-1].detail["query"]["kvp_min"] == 100 and audited[-1].detail["count"] == 3
    assert audited[-1].actor == f"key:{_key_id(service, Role.RESEARCHER)}"
    assert "P0" not in str([e.detail for e in audited])  # filters and counts, no pseudonym


def _key_id(service, role: Role) -> int:
    with service.state.sessions() as db:
        return db.execute(text("SELECT id FROM api_keys WHERE name = :name"),
                          {"name": f"test-{role}"}).scalar_one()  # as running_service names it


@pytest.mark.req("SRS-REPO-011", "SRS-API-002")
@pytest.mark.parametrize("query", ["kvp_min=130&kvp_max=100", "phase=venous", "limit=1001",
                                   "thickness_min_mm=nan", "sex=X", "kernel=%0A",
                                   "limit=-1", "with_native_pair=perhaps"])
def test_an_invalid_search_is_a_request_invalid_problem(service, query: str) -> None:
    response = service.client.get(f"/v1/repository/series?{query}",
                                  headers=service.headers(Role.RESEARCHER))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "REQUEST_INVALID" and body["errors"][0]["loc"][0] == "query"


@pytest.mark.req("SRS-REPO-011")
def test_cohorts_over_the_api(service) -> None:
    researcher = service.headers(Role.RESEARCHER)
    listed = service.client.get("/v1/repository/cohorts", headers=researcher).json()
    assert [(c["name"], c["version"], c["series_count"]) for c in listed] == [
        ("pv-pairs", 2, 1)]
    assert set(listed[0]) == {"name", "version", "series_count", "cohort_sha256", "purpose",
                              "created_at"}
    assert datetime.fromisoformat(listed[0]["created_at"]).utcoffset() is not None  # SQLite too
    newest = service.client.get("/v1/repository/cohorts/pv-pairs", headers=researcher).json()
    first = service.client.get("/v1/repository/cohorts/pv-pairs?version=1",
                               headers=researcher).json()
    assert (newest["version"], newest["query"]["with_native_pair"]) == (2, True)
    assert newest["cohort_sha256"] == listed[0]["cohort_sha256"]
    assert (first["version"], first["query"]["phase"]) == (1, ["portal_venous"])
    (member,) = first["members"]
    assert {k: member[k] for k in ("site", "series_uid", "study_uid", "patient",
                                   "instance_set_sha256")} == {
        "site": "site-a", "series_uid": "2.25.1", "study_uid": "2.25.90", "patient": "P0",
        "instance_set_sha256": f"{1:064x}"}
    assert "cohort_id" not in member and "unverified" in first["evidence"]
    for path, status, code in (("pv-pairs?version=3", 404, "COHORT_UNKNOWN"),
                               ("nope", 404, "COHORT_UNKNOWN"),
                               ("Bad%20Name", 422, "REQUEST_INVALID")):
        response = service.client.get(f"/v1/repository/cohorts/{path}", headers=researcher)
        assert (response.status_code, response.json()["code"]) == (status, code), path
    with service.state.sessions() as db:
        assert [e.object_id for e in list_audit(db, service.settings.site)
                if e.action == "repository.cohort_read"] == ["pv-pairs@2", "pv-pairs@1"]


@pytest.mark.req("SRS-REPO-011", "SRS-API-002")
def test_an_index_that_cannot_be_used_is_a_503_without_internals(service, monkeypatch
                                                                  ) -> None:
    researcher = service.headers(Role.RESEARCHER)
    state, opened = service.app.state, service.app.state.repository_index
    # Swapped by hand: monkeypatch would delete the attribute of Starlette's State on undo.
    state.repository_index = repository_routes.RepositoryIndex(
        "postgresql+psycopg://researcher:s3cret@127.0.0.1:1/index")  # nothing listens there
    try:
        response = service.client.get("/v1/repository/cohorts", headers=researcher)
    finally:
        state.repository_index = opened
    assert response.status_code == 503 and response.json()["code"] == "INDEX_UNAVAILABLE"
    assert "s3cret" not in response.text and "Traceback" not in response.text

    def lost(*_: object) -> None:  # the connection lost in the middle of a search
        raise OperationalError("SELECT", {}, Exception("server at 10.0.0.9 closed"))

    monkeypatch.setattr(repository_routes, "search", lost)
    response = service.client.get("/v1/repository/series", headers=researcher)
    assert response.status_code == 503 and response.json()["code"] == "INDEX_UNAVAILABLE"
    assert "10.0.0.9" not in response.text
    assert service.client.get("/v1/repository/cohorts", headers=researcher).status_code == 200


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_registry_db: Path):
    yield from site_environment(tmp_path, empty_registry_db, monkeypatch)


@pytest.mark.req("SRS-REPO-010")
def test_an_operator_creates_a_researcher_key_at_the_host(site) -> None:
    assert "researcher" in run_cli("keys", "create", "--help").output
    created = run_cli("keys", "create", "--role", "researcher", "--name", "study-x")
    assert created.exit_code == 0, created.output
    key = {"X-API-Key": created.output.strip().splitlines()[-1]}
    with running_service(site) as service:
        assert service.client.get("/v1/repository/cohorts", headers=key).status_code == 200
        assert service.client.get("/v1/jobs", headers=key).status_code == 403
