"""Carbon accounting through the service: every finished job's record, the outcome a site
reports, the sustainability API and its roles, bad input, a failing tracker, startup checks."""

import csv
import dataclasses
import io
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from typer.testing import CliRunner

from digital_contrast.carbon.factors import DEFAULT_FACTOR_FILE, grid_for
from digital_contrast.carbon.meter import MeterConfig, ScanMeter
from digital_contrast.cli import app as cli
from digital_contrast.config import get_settings
from digital_contrast.phantom.export import Phase
from digital_contrast.store import AuditEvent, EmissionRecord, Role
from tests.support.service import make_settings, running_service, upload

ROUTES = ("/v1/sustainability/summary", "/v1/sustainability/timeseries",
          "/v1/sustainability/export.csv")


# The default differential's central kg CO2e per scan, by hand: injector set 0.6 + its packaging
# 0.1 + agent 0.043 kg/g x 35 g iodine + bottle 0.15 + 0.3 kWh x the site's grid (France here).
CENTRAL = 0.6 + 0.1 + 0.043 * 35 + 0.15 + 0.3 * grid_for("FRA").kg_co2e_per_kwh


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("carbon"), empty_registry_db,
                             carbon_country="FRA", carbon_pue=1.3, max_upload_bytes=60_000_000)
    with running_service(settings) as running:
        yield running


@pytest.fixture(scope="module")
def finished_jobs(service, phantom_series) -> dict[str, str]:
    """A succeeded job (NCCT) and a rejected one (contrast already given)."""
    jobs = {}
    for name, phase in (("succeeded", Phase.NCCT), ("rejected", Phase.ARTERIAL)):
        uid = upload(service, phantom_series[phase])
        jobs[name] = _submit(service, uid)
    assert service.run_jobs() == 2
    return jobs


def _submit(service, series_uid: str) -> str:
    response = service.client.post("/v1/jobs", json={"series_uid": series_uid,
                                                     "use_case": "aaa-cta"},
                                   headers=service.headers())
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _records(service) -> dict[str, EmissionRecord]:
    with service.state.sessions() as db:
        return {r.job_id: r for r in db.query(EmissionRecord)}


def _get(service, path: str, role: Role | None = Role.SUSTAINABILITY, **params):
    return service.client.get(path, params=params,
                              headers=service.headers(role) if role else {})


@pytest.mark.req("SRS-CARB-002", "SRS-CARB-004", "SRS-CARB-013")
def test_every_finished_job_has_its_emission_record(service, finished_jobs) -> None:
    records = _records(service)
    factors = service.state.factors
    done, refused = records[finished_jobs["succeeded"]], records[finished_jobs["rejected"]]
    assert (done.job_state.value, refused.job_state.value) == ("succeeded", "rejected")
    for record in (done, refused):  # a refused job still cost compute, and it is measured
        assert record.energy_status.value in ("measured", "estimated") and record.method
        assert record.energy_kwh is not None and record.energy_kwh > 0
        assert record.energy_kwh == pytest.approx(record.cpu_energy_kwh + record.gpu_energy_kwh
                                                  + record.ram_energy_kwh)
        assert (record.country_iso_code, record.pue) == ("FRA", 1.3)
        assert record.emissions_kg_co2e == pytest.approx(
            record.energy_kwh * record.grid_intensity_kg_per_kwh, rel=1e-3)
        assert record.codecarbon_version and record.duration_s > 0
        assert (record.factor_set_id, record.factor_set_version) == (factors.id,
                                                                     factors.version)
        assert record.contrast_scan_avoided is None
    assert (done.avoided_kg_co2e, done.avoided_iodine_g, done.avoided_plastics_g) == (
        factors.co2e_kg, factors.iodine_g, factors.plastics_g)
    assert done.avoided_kg_co2e == pytest.approx(CENTRAL)
    assert done.avoided_iodine_g == pytest.approx(35.0)
    assert (refused.avoided_kg_co2e, refused.avoided_iodine_g, refused.avoided_plastics_g,
            refused.avoided_steel_g, refused.avoided_energy_kwh) == (0, 0, 0, 0, 0)
    job = service.client.get(f"/v1/jobs/{finished_jobs['succeeded']}",
                             headers=service.headers()).json()
    assert job["energy"]["energy_kwh"] == done.energy_kwh
    assert job["energy"]["status"] == done.energy_status.value


@pytest.mark.req("SRS-CARB-020", "SRS-CARB-013")
def test_outcome_confirms_the_avoided_footprint(service, finished_jobs) -> None:
    done, refused = finished_jobs["succeeded"], finished_jobs["rejected"]

    def report(job_id: str, body: object, role: Role = Role.CLINICIAN):
        return service.client.post(f"/v1/jobs/{job_id}/outcome", json=body,
                                   headers=service.headers(role))

    for job_id, body, status, code in (
            ("no-such-job", {"contrast_scan_avoided": True}, 404, "JOB_NOT_FOUND"),
            (refused, {"contrast_scan_avoided": True}, 409, "OUTCOME_NOT_APPLICABLE"),
            (done, {"contrast_scan_avoided": "maybe"}, 422, "REQUEST_INVALID"),
            (done, {"contrast_scan_avoided": True, "extra": 1}, 422, "REQUEST_INVALID"),
            (done, {}, 422, "REQUEST_INVALID")):
        response = report(job_id, body)
        assert (response.status_code, response.json()["code"]) == (status, code)
    malformed = service.client.post(f"/v1/jobs/{done}/outcome", content=b"{not json",
                                    headers=service.headers() | {
                                        "Content-Type": "application/json"})
    assert (malformed.status_code, malformed.json()["code"]) == (422, "REQUEST_INVALID")
    assert report(done, {"contrast_scan_avoided": True}, Role.SUSTAINABILITY).status_code == 403
    assert all(r.contrast_scan_avoided is None for r in _records(service).values())

    reported = report(done, {"contrast_scan_avoided": True})
    assert reported.status_code == 200
    body = reported.json()
    assert body["confirmed_avoided"]["kg_co2e"] == pytest.approx(CENTRAL)
    assert body["factor_set"] == f"{service.state.factors.id}@{service.state.factors.version}"
    assert _records(service)[done].contrast_scan_avoided is True
    with service.state.sessions() as db:
        audited = db.query(AuditEvent).filter_by(action="job.outcome", object_id=done).all()
    assert [a.detail for a in audited] == [{"contrast_scan_avoided": True}]


@pytest.mark.req("SRS-CARB-036", "SRS-CARB-021")
def test_the_summary_gives_the_range_the_set_and_the_compute_grid(service,
                                                                  finished_jobs) -> None:
    service.client.post(f"/v1/jobs/{finished_jobs['succeeded']}/outcome",
                        json={"contrast_scan_avoided": True}, headers=service.headers())
    records = _records(service)
    summary = _get(service, ROUTES[0]).json()
    factors = service.state.factors
    # /v1 stays compatible: every 0.1.0 field is still there.
    assert {"site", "from", "to", "use_case", "model_version", "counts", "compute", "avoided",
            "net_kg_co2e", "factor_sets", "factor_set_in_force", "evidence"} <= set(summary)
    assert {"id", "version", "title", "description", "source_file", "sha256",
            "annual_contrast_ct", "per_scan", "protocol", "factors", "rejected"} <= set(
        summary["factor_set_in_force"])
    in_range = summary["avoided_range"]
    assert in_range["factor_set"] == "contrast-differential@2026.1"
    assert in_range["kind"] == "differential" and "non-contrast" in in_range["kind_label"]
    per_scan = in_range["per_scan_kg_co2e"]
    assert per_scan == pytest.approx(factors.co2e_range.to_dict())
    assert per_scan["low"] < per_scan["central"] < per_scan["high"]
    assert per_scan["central"] == pytest.approx(CENTRAL)
    assert in_range["per_scan_energy_kwh"] == pytest.approx(
        {"low": 0.1, "central": 0.3, "high": 0.8})
    assert in_range["not_verified"] == list(factors.not_verified) != []
    # Every record was made with the set in force: the totals carry its proportions.
    potential = in_range["potential_kg_co2e"]
    assert potential["central"] == pytest.approx(summary["avoided"]["potential"]["kg_co2e"])
    assert potential["low"] == pytest.approx(potential["central"] * per_scan["low"]
                                             / per_scan["central"])
    assert in_range["confirmed_kg_co2e"]["high"] == pytest.approx(
        CENTRAL * per_scan["high"] / per_scan["central"])
    settings = summary["compute_settings"]
    assert (settings["country_iso_code"], settings["pue"]) == ("FRA", 1.3)
    measured = [r for r in records.values() if r.emissions_kg_co2e is not None]
    assert {r.grid_intensity_kg_per_kwh for r in measured} == {
        settings["grid_intensity_kg_co2e_per_kwh"]}
    assert "CodeCarbon" in settings["grid_source"]
    assert summary["compute"]["emissions_kg_co2e_per_scan"] == pytest.approx(
        sum(r.emissions_kg_co2e for r in measured) / len(measured))
    in_force = summary["factor_set_in_force"]
    assert in_force["kind"] == "differential" and in_force["range"]["computed"] is True
    assert in_force["scanner_energy_grid"]["country_iso_code"] == "FRA"
    assert all(c["source"]["doi"].startswith("10.") for c in in_force["components"])


@pytest.mark.req("SRS-CARB-021", "SRS-CARB-022", "SRS-CARB-023")
def test_summary_timeseries_and_csv_agree_with_the_records(service, finished_jobs) -> None:
    service.client.post(f"/v1/jobs/{finished_jobs['succeeded']}/outcome",
                        json={"contrast_scan_avoided": True}, headers=service.headers())
    records = _records(service)
    emitted = sum(r.emissions_kg_co2e for r in records.values())
    summary = _get(service, ROUTES[0]).json()
    assert summary["counts"]["jobs"] == 2 and summary["counts"]["rejected"] == 1
    assert summary["counts"]["outcome_contrast_avoided"] == 1
    assert summary["compute"]["emissions_kg_co2e"] == pytest.approx(emitted)
    assert summary["avoided"]["confirmed"]["kg_co2e"] == pytest.approx(CENTRAL)
    assert summary["net_kg_co2e"]["confirmed"] == pytest.approx(CENTRAL - emitted)
    assert "phantom" in summary["evidence"] and "not clinically validated" in summary["evidence"]
    assert summary["factor_set_in_force"]["id"] == service.state.factors.id

    series = _get(service, ROUTES[1], bucket="week").json()["series"]
    assert len(series) == 1 and series[0]["jobs"] == 2

    export = _get(service, ROUTES[2])
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["job_id"] for r in rows) == sorted(records)
    done = next(r for r in rows if r["job_id"] == finished_jobs["succeeded"])
    assert done["ghg_scope"] == "Scope 2 (location-based electricity)"
    assert done["contrast_scan_avoided"] == "yes"
    assert float(done["net_confirmed_kg_co2e"]) == pytest.approx(
        CENTRAL - records[finished_jobs["succeeded"]].emissions_kg_co2e)
    patient = pydicom.dcmread(next(iter(Path(service.settings.data_dir, "instances").rglob(
        "*.dcm"))), stop_before_pixels=True)
    assert str(patient.PatientID) not in export.text
    assert str(patient.PatientName) not in export.text


@pytest.mark.req("SRS-CARB-024")
def test_sustainability_routes_are_for_sustainability_and_admin_only(service) -> None:
    for route in ROUTES:
        assert _get(service, route, None).status_code == 401
        for role in (Role.CLINICIAN, Role.REGULATORY):
            assert _get(service, route, role).status_code == 403
        for role in (Role.SUSTAINABILITY, Role.ADMIN):
            assert _get(service, route, role).status_code == 200
        other = _get(service, route, site="another-site")
        assert (other.status_code, other.json()["code"]) == (403, "SITE_FORBIDDEN")


@pytest.mark.req("SRS-CARB-021", "SRS-CARB-022")
def test_bad_ranges_and_buckets_are_problems(service) -> None:
    for params, code in (({"from": "2026-11-09T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
                          "RANGE_INVALID"),
                         ({"from": "2026-11-02T00:00:00"}, "REQUEST_INVALID"),
                         ({"from": "yesterday"}, "REQUEST_INVALID"),
                         ({"from": "0001-01-01T00:00:00+05:00"}, "REQUEST_INVALID")):
        response = _get(service, ROUTES[0], **params)
        assert (response.status_code, response.json()["code"]) == (422, code)
    response = _get(service, ROUTES[1], bucket="year")
    assert (response.status_code, response.json()["code"]) == (422, "REQUEST_INVALID")


def _copy_series(source: Path, target: Path) -> Path:
    """The same images as a new series (new UIDs), so a new job is made for them."""
    target.mkdir()
    series = generate_uid()
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(target / path.name)
    return target


@pytest.mark.req("SRS-CARB-005")
def test_a_failing_tracker_never_fails_the_job(service, phantom_series, tmp_path) -> None:
    def broken(config: MeterConfig):
        raise RuntimeError("no power counters")

    original = service.state
    service.app.state.service = dataclasses.replace(
        original, meter=ScanMeter(original.meter.config, broken))
    try:
        job_id = _submit(service, upload(service, _copy_series(phantom_series[Phase.NCCT],
                                                               tmp_path / "copy")))
        assert service.run_jobs() == 1
    finally:
        service.app.state.service = original
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
    assert job["state"] == "succeeded" and job["energy"]["status"] == "unavailable"
    record = _records(service)[job_id]
    assert record.energy_status.value == "unavailable" and "tracker" in record.energy_reason
    assert (record.energy_kwh, record.emissions_kg_co2e) == (None, None)
    # The scan it spared does not depend on the tracker.
    assert record.avoided_kg_co2e == pytest.approx(CENTRAL)
    net = _get(service, ROUTES[0]).json()
    assert net["counts"]["energy_unavailable"] == 1


@pytest.mark.req("SRS-CARB-006", "SRS-CARB-014")
def test_carbon_settings_are_checked_at_startup(tmp_path: Path, monkeypatch,
                                                empty_registry_db: Path) -> None:
    site_factors = tmp_path / "site-lca.yaml"
    site_factors.write_text(
        DEFAULT_FACTOR_FILE.read_text().replace("id: contrast-differential", "id: site-lca"))
    monkeypatch.setenv("DC_DATA_DIR", str(tmp_path / "data"))
    shutil.copy(empty_registry_db, tmp_path / "mlflow.db")
    for env, named in (({"DC_CARBON_COUNTRY": "XXX"}, "DC_CARBON_COUNTRY"),
                       ({"DC_CARBON_PUE": "0.5"}, "DC_CARBON_PUE"),
                       ({"DC_CARBON_FACTORS_FILE": str(tmp_path / "missing.yaml")},
                        "DC_CARBON_FACTORS_FILE"),
                       ({"DC_CARBON_FACTOR_SET": "contrast-ct-2026.1"},
                        "DC_CARBON_FACTOR_SET: no packaged factor set"),
                       ({"DC_CONTRAST_VOLUME_ML": "5000"}, "DC_CONTRAST_VOLUME_ML")):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        result = CliRunner().invoke(cli, ["keys", "list"])
        assert result.exit_code == 2 and "CONFIG_INVALID" in result.output, result.output
        assert named in result.output and "Traceback" not in result.output
        for name in env:
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    settings = make_settings(tmp_path / "site", empty_registry_db,
                             carbon_factors_file=site_factors, contrast_volume_ml=80.0,
                             contrast_iodine_mg_per_ml=300.0)
    with running_service(settings) as running:
        factors = running.state.factors
        assert (factors.id, factors.iodine_g) == ("site-lca", pytest.approx(24.0))
        summary = _get(running, ROUTES[0]).json()
    assert summary["factor_set_in_force"]["id"] == "site-lca"
    get_settings.cache_clear()
