"""The sustainability dashboard without a browser: login and the session cookie (signature,
expiry, revocation, GET only), roles, the page's figures against the summary API, and its
self-containment (CSP, no external resource, static files served by the service)."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from digital_contrast.api import web_session
from digital_contrast.api.roles import PAGE_ROLES, PUBLIC_MOUNTS, ROUTE_ROLES, SUSTAINABILITY
from digital_contrast.api.routers import dashboard
from digital_contrast.errors import DigitalContrastError
from digital_contrast.store import EmissionRecord, EnergyStatus, Job, JobState, Role
from digital_contrast.store.api_keys import create_api_key
from digital_contrast.store.audit import list_audit
from digital_contrast.store.footprints import record_emission, report_outcome
from digital_contrast.store.tables import ApiKey
from tests.support.service import make_settings, running_service

PAGE, LOGIN = "/dashboard/sustainability", "/dashboard/login"
HTML = {"Accept": "text/html,application/xhtml+xml"}
TILE = re.compile(r'<li class="tile" data-path="([^"]+)" data-value="([^"]+)"')


def seed_footprints(sessions, site: str) -> None:
    """Five finished jobs of `site` over 2-9 Nov 2026 (two model versions, two use cases, one
    job without energy, one outcome confirmed) and one job of another site. Literal figures:
    0.5 kg CO2e/kWh grid, 9.2 kg CO2e and 35 g iodine avoided per succeeded job, under the
    factor set contrast-ct 2026.1 (0.1.0's default, not the set in force)."""
    def add(job_id: str, state: JobState, day: int, energy: float | None, *,
            job_site: str = site, use_case: str = "aaa-cta", version: str = "1.0.0") -> None:
        at = datetime(2026, 11, day, 12, tzinfo=UTC)
        db.add(Job(id=job_id, site=job_site, use_case=use_case, bundle_sha256="0" * 64,
                   model_name=f"dc-{use_case}", model_version=version, state=state,
                   idempotency_key=job_id, finished_at=at))
        db.flush()  # the job row first: the record's foreign key points at it
        ok = state is JobState.SUCCEEDED
        record_emission(db, EmissionRecord(
            job_id=job_id, site=job_site, use_case=use_case, model_name=f"dc-{use_case}",
            model_version=version, job_state=state, finished_at=at,
            energy_status=EnergyStatus.ESTIMATED if energy is not None else
            EnergyStatus.UNAVAILABLE, energy_kwh=energy, method="cpu load x TDP",
            emissions_kg_co2e=None if energy is None else energy * 0.5,
            grid_intensity_kg_per_kwh=0.5, country_iso_code="FRA", pue=1.0,
            factor_set_id="contrast-ct", factor_set_version="2026.1",
            avoided_kg_co2e=9.2 if ok else 0.0, avoided_iodine_g=35.0 if ok else 0.0,
            avoided_plastics_g=733.0 if ok else 0.0, avoided_steel_g=5.0 if ok else 0.0,
            avoided_energy_kwh=0.8 if ok else 0.0))

    with sessions() as db:
        add("dash-1", JobState.SUCCEEDED, 2, 0.010)
        add("dash-2", JobState.SUCCEEDED, 3, 0.020, version="1.1.0")
        add("dash-3", JobState.REJECTED, 3, 0.002)
        add("dash-4", JobState.SUCCEEDED, 9, None)  # the energy tracker failed
        add("dash-5", JobState.FAILED, 9, 0.004, use_case="abdomen-pv")
        add("dash-other", JobState.SUCCEEDED, 3, 0.5, job_site="another-site")
        report_outcome(db, "dash-1", site, True)
        db.commit()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("dashboard"), empty_registry_db)
    with running_service(settings) as running:
        seed_footprints(running.state.sessions, settings.site)
        yield running


def login(service, key: str) -> str:
    """The session cookie's value after a successful login (the client's jar left empty)."""
    response = service.client.post(LOGIN, data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == PAGE
    value = response.cookies[web_session.COOKIE]
    service.client.cookies.clear()
    return value


def with_cookie(value: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{web_session.COOKIE}={value}", **headers}


def resolve(body: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        body = body[part]
    return body


def new_key(service, role: Role) -> tuple[ApiKey, str]:
    with service.state.sessions() as db:
        key, plaintext = create_api_key(db, service.settings.site, f"dash-{role}", role)
        db.commit()
        db.refresh(key)
        db.expunge(key)
    return key, plaintext


@pytest.mark.req("SRS-CARB-031")
def test_login_sets_a_strict_httponly_expiring_cookie_and_audits_without_the_key(
        service) -> None:
    key, plaintext = new_key(service, Role.SUSTAINABILITY)
    response = service.client.post(LOGIN, data={"api_key": plaintext}, follow_redirects=False)
    service.client.cookies.clear()
    assert response.status_code == 303 and response.headers["location"] == PAGE
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{web_session.COOKIE}={key.id}.")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/",
                      f"Max-Age={web_session.MAX_AGE_S}"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http here; https responses add it
    assert plaintext not in cookie
    secret_file = service.settings.data_dir / web_session.SECRET_FILE
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert len(secret_file.read_bytes()) == web_session.SECRET_BYTES
    with service.state.sessions() as db:
        events = [e for e in list_audit(db, service.settings.site)
                  if e.action == "dashboard.login" and e.object_id == str(key.id)]
    assert [(e.actor, e.outcome) for e in events] == [(f"key:{key.id}", "success")]
    assert plaintext not in json.dumps(events[0].detail)


@pytest.mark.req("SRS-CARB-031")
def test_a_wrong_or_missing_key_gets_the_login_page_again_and_no_cookie(service) -> None:
    for form, status in (({"api_key": "dc_000000000000_" + "x" * 43}, 401),
                         ({"api_key": "not a key"}, 401), ({}, 400), ({"api_key": " "}, 400)):
        response = service.client.post(LOGIN, data=form, follow_redirects=False)
        assert response.status_code == status, form
        assert "set-cookie" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in response.text and 'name="api_key"' in response.text


@pytest.mark.req("SRS-CARB-024", "SRS-CARB-031")
@pytest.mark.parametrize("role", [r for r in Role if r not in SUSTAINABILITY])
def test_other_roles_cannot_log_in_or_open_the_page(service, role: Role) -> None:
    key, plaintext = new_key(service, role)
    response = service.client.post(LOGIN, data={"api_key": plaintext}, follow_redirects=False)
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert f"role {role.value} may not" in response.text
    page = service.client.get(PAGE, headers={"X-API-Key": plaintext} | HTML)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    api = service.client.get(PAGE, headers={"X-API-Key": plaintext})
    assert api.status_code == 403 and api.json()["code"] == "AUTH_FORBIDDEN"
    with service.state.sessions() as db:
        assert [e.outcome for e in list_audit(db, service.settings.site)
                if e.action == "dashboard.login" and e.object_id == str(key.id)] == ["refused"]


@pytest.mark.req("SRS-CARB-024", "SRS-CARB-031")
def test_without_a_session_a_browser_is_sent_to_login_and_an_api_client_gets_401(
        service) -> None:
    browser = service.client.get(PAGE, headers=HTML, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == LOGIN
    api = service.client.get(PAGE)
    assert api.status_code == 401 and api.json()["code"] == "AUTH_MISSING"
    assert api.headers["content-type"] == "application/problem+json"


@pytest.mark.req("SRS-CARB-031")
def test_a_tampered_forged_or_expired_cookie_is_refused(service) -> None:
    good = login(service, service.keys[Role.SUSTAINABILITY])
    assert service.client.get(PAGE, headers=with_cookie(good)).status_code == 200
    key_id, expires, mac = good.split(".")
    secret = web_session.installation_secret(service.settings.data_dir)
    with service.state.sessions() as db:
        key = db.get(ApiKey, int(key_id))
        assert key is not None
        expired = web_session.issue(secret, key, now=datetime.now(UTC) - timedelta(hours=9))
        foreign = web_session.issue(b"another installation" * 2, key)
    admin_id = next(k for k in _keys(service) if k.role is Role.ADMIN).id
    for bad in (f"{key_id}.{int(expires) + 3600}.{mac}",  # extended by hand
                f"{admin_id}.{expires}.{mac}",  # another key's id
                f"{key_id}.{expires}.{mac[:-2]}AA", expired, foreign, "garbage", ""):
        page = service.client.get(PAGE, headers=with_cookie(bad, **HTML),
                                  follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == LOGIN, bad
        api = service.client.get("/v1/sustainability/summary", headers=with_cookie(bad))
        assert api.status_code == 401, bad
        assert api.json()["code"] == ("AUTH_INVALID" if bad else "AUTH_MISSING")


def _keys(service) -> list[ApiKey]:
    with service.state.sessions() as db:
        return list(db.query(ApiKey).all())


@pytest.mark.req("SRS-CARB-031")
def test_the_cookie_of_a_revoked_key_is_refused_at_once(service) -> None:
    key, plaintext = new_key(service, Role.SUSTAINABILITY)
    cookie = login(service, plaintext)
    assert service.client.get(PAGE, headers=with_cookie(cookie)).status_code == 200
    revoked = service.client.delete(f"/v1/keys/{key.id}", headers=service.headers(Role.ADMIN))
    assert revoked.status_code == 204
    page = service.client.get(PAGE, headers=with_cookie(cookie, **HTML), follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == LOGIN
    assert web_session.COOKIE in page.headers["set-cookie"]  # the stale cookie is dropped
    api = service.client.get("/v1/sustainability/summary", headers=with_cookie(cookie))
    assert api.status_code == 401 and api.json()["code"] == "AUTH_INVALID"


@pytest.mark.req("SRS-CARB-031", "SRS-CARB-024")
def test_the_cookie_authenticates_reads_only_never_a_state_change(service) -> None:
    cookie = login(service, service.keys[Role.ADMIN])
    assert service.client.get("/v1/keys", headers=with_cookie(cookie)).status_code == 200
    for method, url, body in (("POST", "/v1/keys", {"name": "x", "role": "clinician"}),
                              ("DELETE", "/v1/keys/1", None),
                              ("POST", "/v1/jobs/dash-1/outcome", {"contrast_scan_avoided": 1})):
        response = service.client.request(method, url, json=body, headers=with_cookie(cookie))
        assert response.status_code == 401, (method, url)
        assert response.json()["code"] == "AUTH_MISSING"


@pytest.mark.req("SRS-CARB-031")
def test_logout_clears_the_cookie_and_is_audited(service) -> None:
    key, plaintext = new_key(service, Role.SUSTAINABILITY)
    cookie = login(service, plaintext)
    response = service.client.post("/dashboard/logout", headers=with_cookie(cookie),
                                   follow_redirects=False)
    service.client.cookies.clear()
    assert response.status_code == 303 and response.headers["location"] == LOGIN
    cleared = response.headers["set-cookie"]
    assert cleared.startswith(f'{web_session.COOKIE}=""') and "Max-Age=0" in cleared
    with service.state.sessions() as db:
        assert [e.action for e in list_audit(db, service.settings.site)
                if e.object_id == str(key.id)] == ["dashboard.login", "dashboard.logout"]
    anonymous = service.client.post("/dashboard/logout", follow_redirects=False)
    assert anonymous.status_code == 303


@pytest.mark.req("SRS-CARB-030", "SRS-CARB-024")
@pytest.mark.parametrize("query", [{}, {"from": "2026-11-03", "to": "2026-11-03"},
                                   {"use_case": "aaa-cta", "model_version": "1.0.0",
                                    "bucket": "week"}])
def test_the_tiles_equal_the_summary_api(service, query: dict[str, str]) -> None:
    cookie = login(service, service.keys[Role.SUSTAINABILITY])
    page = service.client.get(PAGE, params=query, headers=with_cookie(cookie))
    assert page.status_code == 200
    api_query = dict(query)
    if "from" in query:  # the page takes UTC days, 'to' inclusive; the API instants
        api_query |= {"from": "2026-11-03T00:00:00+00:00", "to": "2026-11-04T00:00:00+00:00"}
    api_query.pop("bucket", None)
    summary = service.client.get("/v1/sustainability/summary", params=api_query,
                                 headers=service.headers(Role.SUSTAINABILITY)).json()
    tiles = dict(TILE.findall(page.text))
    assert set(tiles) == {"counts.jobs", "compute.energy_kwh", "compute.emissions_kg_co2e",
                          "compute.emissions_kg_co2e_per_scan",
                          "avoided_range.per_scan_kg_co2e.central",
                          "avoided.potential.kg_co2e", "avoided.confirmed.kg_co2e",
                          "net_kg_co2e.potential", "net_kg_co2e.confirmed",
                          "avoided.potential.iodine_g", "avoided.confirmed.iodine_g"}
    for path, value in tiles.items():
        assert json.loads(value) == resolve(summary, path), path
    # The CSV link carries the same filters as the tiles.
    csv_url = re.search(r'id="download-csv" href="([^"]+)"', page.text)
    assert csv_url is not None
    csv = service.client.get(csv_url.group(1).replace("&amp;", "&"),
                             headers=with_cookie(cookie))
    assert csv.status_code == 200
    assert len(csv.text.strip().splitlines()) == 1 + summary["counts"]["jobs"]


@pytest.mark.req("SRS-CARB-030")
def test_the_unfiltered_page_shows_the_hand_computed_figures_and_the_factor_set(
        service) -> None:
    cookie = login(service, service.keys[Role.ADMIN])
    page = service.client.get(PAGE, headers=with_cookie(cookie)).text
    tiles = {path: json.loads(value) for path, value in TILE.findall(page)}
    assert tiles["counts.jobs"] == 5
    assert tiles["compute.energy_kwh"] == pytest.approx(0.036)
    assert tiles["avoided.potential.kg_co2e"] == pytest.approx(27.6)
    assert tiles["avoided.confirmed.kg_co2e"] == pytest.approx(9.2)
    assert tiles["net_kg_co2e.potential"] == pytest.approx(18.4 - 0.018)  # dash-4 left out
    assert tiles["avoided.potential.iodine_g"] == pytest.approx(105.0)
    assert 'data-value="5"' in page and ">0.0360 <small>kWh" in page
    factors = service.state.factors.to_dict()
    assert factors["sha256"] in page
    for factor in factors["factors"]:
        assert f"<code>{factor['key']}</code>" in page
    # The differential default rejects no figure; a point set's rejected figures are listed.
    assert ("Figures considered and rejected" in page) == bool(factors["rejected"])
    assert "not clinically validated" in page and "potential unless confirmed" in page
    data = json.loads(re.search(r'<script type="application/json" id="dashboard-data">'
                                r"(.*?)</script>", page, re.S).group(1))
    assert [r["start"] for r in data["series"]] == ["2026-11-02", "2026-11-03", "2026-11-09"]
    assert [r["model_version"] for r in data["by_model_version"]] == ["1.0.0", "1.1.0"]
    assert [r["use_case"] for r in data["by_use_case"]] == ["aaa-cta", "abdomen-pv"]
    assert sum(b["jobs"] for b in data["energy_histogram"]) == 4


@pytest.mark.req("SRS-CARB-037", "SRS-CARB-036")
def test_the_page_shows_the_range_the_set_and_the_compute_co2e_per_scan(service) -> None:
    cookie = login(service, service.keys[Role.SUSTAINABILITY])
    page = service.client.get(PAGE, headers=with_cookie(cookie)).text
    summary = service.client.get("/v1/sustainability/summary",
                                 headers=service.headers(Role.SUSTAINABILITY)).json()
    tiles = {path: json.loads(value) for path, value in TILE.findall(page)}
    per_scan = summary["avoided_range"]["per_scan_kg_co2e"]
    assert tiles["avoided_range.per_scan_kg_co2e.central"] == per_scan["central"]
    low, central, high = per_scan["low"], per_scan["central"], per_scan["high"]
    assert f"{low:.2f} \u2013 {central:.2f} \u2013 {high:.2f} <small>kg CO2e" in page
    # Our own processing: 0.036 kWh x 0.5 kg/kWh over the 4 jobs whose energy is known.
    assert tiles["compute.emissions_kg_co2e_per_scan"] == pytest.approx(0.018 / 4)
    assert ">4.500 <small>g CO2e" in page
    grid = summary["compute_settings"]
    assert (grid["country_iso_code"], grid["pue"]) == ("GBR", 1.0)
    assert (f"kWh x {grid['grid_intensity_kg_co2e_per_kwh']:.3f} kg CO2e/kWh (GBR grid), "
            "PUE 1") in page
    assert 'id="compute-settings"' in page and grid["grid_source"] in page
    assert "contrast-differential@2026.1" in page
    assert "non-contrast CT it replaces" in page  # what the set measures
    in_force = summary["factor_set_in_force"]
    for component in in_force["components"]:
        assert f"<code>{component['key']}</code>" in page
        assert f"doi:{component['source']['doi']}" in page
    assert 'id="not-verified"' in page
    assert page.count("not verified against the source") >= len(in_force["components"])
    # The records were made with 0.1.0's set: their totals' range is not claimed.
    assert summary["avoided_range"]["potential_kg_co2e"] is None
    assert "contrast-ct@2026.1" in summary["avoided_range"]["note"]


@pytest.mark.req("SRS-CARB-030")
def test_a_bad_filter_shows_the_form_with_the_reason(service) -> None:
    cookie = login(service, service.keys[Role.SUSTAINABILITY])
    for query, reason in (({"from": "2026-11-09", "to": "2026-11-02"}, "starts after"),
                          ({"from": "yesterday"}, "neither a day"),
                          ({"from": "2026-11-02T10:00:00"}, "needs a time zone"),
                          ({"bucket": "year"}, "bucket must be"),
                          ({"to": "9999-12-31"}, "out of range"),
                          ({"from": "0001-01-01T00:00:00+05:00"}, "out of range")):
        page = service.client.get(PAGE, params=query, headers=with_cookie(cookie))
        assert page.status_code == 422 and reason in page.text, query
        assert 'class="tile"' not in page.text


@pytest.mark.req("SRS-CARB-030")
def test_pages_are_self_contained_under_a_strict_csp(service) -> None:
    cookie = login(service, service.keys[Role.SUSTAINABILITY])
    for url, headers in ((LOGIN, {}), (PAGE, with_cookie(cookie))):
        response = service.client.get(url, headers=headers)
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert "http://" not in html and "https://" not in html, url
        for reference in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert reference.startswith("/") and not reference.startswith("//"), reference
        for script in re.findall(r"<script[^>]*>", html):  # no inline code, data only
            assert "src=" in script or 'type="application/json"' in script, script
        assert " style=" not in html and "<style" not in html  # no inline style
        assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handler


@pytest.mark.req("SRS-CARB-030", "SRS-CARB-024")
def test_static_files_are_served_public_and_read_only(service) -> None:
    for path, media in (("/static/vendor/chart.umd.min.js", "javascript"),
                        ("/static/dashboard.js", "javascript"),
                        ("/static/dashboard.css", "text/css"),
                        ("/static/favicon.svg", "image/svg+xml")):
        response = service.client.get(path)
        assert response.status_code == 200 and media in response.headers["content-type"], path
    assert "Chart.js v4" in service.client.get("/static/vendor/chart.umd.min.js").text[:200]
    assert service.client.post("/static/dashboard.js").status_code == 405
    for outside in ("/static/../web_session.py", "/static/%2e%2e/web_session.py",
                    "/static/../templates/base.html"):
        assert service.client.get(outside).status_code == 404, outside


@pytest.mark.req("SRS-CARB-024", "SRS-API-001")
def test_every_page_and_mount_is_in_the_matrix(service) -> None:
    """The JSON API's routes are walked through its OpenAPI document (test_api_auth); the
    pages are left out of it, so their router is walked here, and every mount is listed."""
    pages = {(method, route.path) for route in dashboard.router.routes
             if isinstance(route, APIRoute) for method in route.methods}
    assert pages == set(PAGE_ROLES) and not pages & set(ROUTE_ROLES)
    schema = service.client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/dashboard") for path in schema)
    mounts = {route.path for route in service.app.routes if isinstance(route, Mount)}
    assert mounts == PUBLIC_MOUNTS


@pytest.mark.req("SRS-CARB-031")
def test_the_session_secret_is_created_once_private_and_refused_when_exposed(
        tmp_path: Path) -> None:
    secret = web_session.installation_secret(tmp_path / "data")
    path = tmp_path / "data" / web_session.SECRET_FILE
    assert path.read_bytes() == secret and len(secret) == web_session.SECRET_BYTES
    assert path.stat().st_mode & 0o777 == 0o600
    assert web_session.installation_secret(tmp_path / "data") == secret  # not renewed
    exposed = tmp_path / "exposed"
    exposed.mkdir()
    (exposed / web_session.SECRET_FILE).write_bytes(bytes(32))
    (exposed / web_session.SECRET_FILE).chmod(0o644)
    with pytest.raises(DigitalContrastError, match="readable by others"):
        web_session.installation_secret(exposed)
