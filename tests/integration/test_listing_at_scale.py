"""The job listing and the sustainability aggregates stay bounded at a million jobs: keyset
pages (no gap, no repeat, equal creation times included) on both databases, index ranges in
PostgreSQL's plans, the API's Link header and cursor, and energy bins read by whole months.
Nothing here is timed: bench/query_scale.py measures (docs/operations.md)."""

import base64
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from digital_contrast.config import Settings
from digital_contrast.store import EmissionRecord, EnergyStatus, Job, JobState, Series, Study
from digital_contrast.store.enums import DeliveryState, Origin, Protocol
from digital_contrast.store.footprints import FootprintFilter, month_split, record_emission, summary
from digital_contrast.store.jobs import list_jobs
from digital_contrast.store.tables import Delivery, Destination
from tests.support.databases import recorded_statements
from tests.support.service import running_service

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _jobs(session, n: int, *, site: str = "site-a", seed: int = 0) -> list[Job]:
    """`n` jobs of a site at five distinct times (so many share one), in random states."""
    rng = random.Random(seed)
    jobs = [Job(site=site, use_case="aaa-cta", bundle_sha256="b" * 64, model_name="m",
                model_version="1", state=rng.choice(list(JobState)),
                created_at=T0 + timedelta(minutes=rng.randrange(5))) for _ in range(n)]
    session.add_all(jobs)
    session.flush()
    return jobs


def _paged(session, limit: int, **filters: Any) -> list[list[str]]:
    """Every page of site-a's listing, each after the last job of the one before."""
    pages: list[list[str]] = []
    after = None
    while page := list_jobs(session, "site-a", limit=limit, after=after, **filters):
        pages.append([job.id for job in page])
        after = (page[-1].created_at, page[-1].id)
    return pages


@pytest.mark.req("SRS-STORE-008")
@pytest.mark.parametrize("filters", [{}, {"state": JobState.SUCCEEDED},
                                     {"since": T0 + timedelta(minutes=2)}],
                         ids=["all", "state", "since"])
def test_pages_follow_each_other_without_gap_or_repeat(store_sessions,
                                                       filters: dict[str, Any]) -> None:
    with store_sessions() as session:
        jobs = _jobs(session, 40)
        _jobs(session, 10, site="site-b", seed=1)
        session.commit()
        pages = _paged(session, 3, **filters)
    wanted = [j for j in jobs if j.state == filters.get("state", j.state)
              and j.created_at >= filters.get("since", T0)]
    newest_first = sorted(wanted, key=lambda j: (j.created_at, j.id), reverse=True)
    assert [job_id for page in pages for job_id in page] == [j.id for j in newest_first]
    assert [len(page) for page in pages[:-1]] == [3] * (len(pages) - 1)


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


@pytest.mark.req("SRS-STORE-008")
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_page_is_an_index_range_on_postgresql(store_engine, store_sessions) -> None:
    """Jobs of four sites, analysed. With sorts and sequential scans priced out, PostgreSQL
    shows that an index gives every page in the listing's order with the filters and the
    cursor as its bounds: the plan is one index range (the planner's own choice at a million
    jobs is in bench/query_scale.py --explain)."""
    with store_engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO jobs (id, site, use_case, options, bundle_sha256, model_name, "
            "model_version, state, attempts, created_at) SELECT md5(g::text), "
            "'site-' || g % 4, 'aaa-cta', '{}', 'b', 'm', '1', CASE WHEN g % 25 = 0 THEN "
            "'failed' ELSE 'succeeded' END, 1, :t0 + g * interval '1 minute' "
            "FROM generate_series(1, 10000) AS g"), {"t0": T0})
        connection.exec_driver_sql("ANALYZE jobs")
    with store_sessions() as session:
        session.connection().exec_driver_sql("SET LOCAL enable_sort = off")
        session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
        deep = list_jobs(session, "site-1", limit=500)[-1]
        after = (deep.created_at, deep.id)
        for filters, index in (({}, "ix_jobs_site_created_at_id"),
                               ({"after": after}, "ix_jobs_site_created_at_id"),
                               ({"state": "failed"}, "ix_jobs_site_state_created_at_id"),
                               ({"state": "failed", "since": T0, "after": after},
                                "ix_jobs_site_state_created_at_id")):
            with recorded_statements(store_engine) as statements:
                assert list_jobs(session, "site-1", limit=100, **filters)
            ((_, sql, parameters),) = statements
            (plan,) = session.connection().exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) {sql}", parameters).scalar_one()
            nodes = _plan_nodes(plan["Plan"])
            assert [n["Index Name"] for n in nodes if "Index Name" in n] == [index], filters
            assert {n["Node Type"] for n in nodes} <= {"Limit", "Index Scan"}, filters
            if "after" in filters:  # the cursor bounds the range itself, not a filter
                (scan,) = (n for n in nodes if n["Node Type"] == "Index Scan")
                assert "ROW(created_at, (id)::text) < ROW(" in scan["Index Cond"]


@pytest.fixture
def service(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", releases_dir=tmp_path / "releases",
                        workers=0, rate_limit_address="1000000/minute",
                        rate_limit_key="1000000/minute")
    with running_service(settings) as running:
        yield running


def _listed(service, **params: Any) -> tuple[list[str], list[str]]:
    """The ids of every page of GET /v1/jobs, following Link headers, and the links."""
    ids: list[str] = []
    links: list[str] = []
    url: str | None = "/v1/jobs"
    query: dict[str, Any] | None = params
    while url:
        response = service.client.get(url, params=query, headers=service.headers())
        assert response.status_code == 200, response.text
        ids += [job["id"] for job in response.json()]
        url, query = response.links.get("next", {}).get("url"), None  # the link has it all
        links += [url] if url else []
    return ids, links


@pytest.mark.req("SRS-STORE-008", "SRS-API-005")
def test_the_api_pages_by_its_link_header(service) -> None:
    site = service.settings.site
    with service.state.sessions() as db:
        jobs = _jobs(db, 7, site=site)
        study = Study(site=site, study_instance_uid="1.2.3")
        destination = Destination(site=site, name="pacs", protocol=Protocol.DIMSE,
                                  ae_title="PACS", host="pacs", port=104)
        db.add_all([study, destination])
        db.flush()
        series = Series(study_id=study.id, site=site, series_instance_uid="1.2.3.4",
                        origin=Origin.RECEIVED)
        db.add(series)
        db.flush()
        jobs[0].series_id = series.id
        db.add(Delivery(site=site, job_id=jobs[0].id, destination_id=destination.id,
                        series_uids=["1.2.3.5"], state=DeliveryState.PENDING,
                        next_attempt_at=T0, requested_by="auto"))
        db.commit()
    everything, no_link = _listed(service)
    assert no_link == [] and len(everything) == 7  # one page: no Link
    paged, links = _listed(service, limit=3)
    assert paged == everything and len(links) == 2  # pages of 3, 3 and 1
    assert all(re.fullmatch(r"/v1/jobs\?limit=3&cursor=[\w-]+", link) for link in links)
    state = jobs[1].state  # a state some jobs are in
    assert _listed(service, state=state.value, limit=1)[0] == [
        i for i in everything if i in {j.id for j in jobs if j.state == state}]
    listed = {j["id"]: j for j in service.client.get("/v1/jobs", headers=service.headers()
                                                     ).json()}
    alone = service.client.get(f"/v1/jobs/{jobs[0].id}", headers=service.headers()).json()
    assert listed[jobs[0].id] == alone and alone["series_uid"] == "1.2.3.4"
    assert [d["destination"] for d in alone["deliveries"]] == ["pacs"]
    made = [base64.urlsafe_b64encode(raw).decode() for raw in (
        b"0001-01-01T00:00:00+23:00|j",  # before year 1 in UTC
        b"2026-05-01T08:00:00|j",  # no zone
        b"2026-05-01T08:00:00+00:00|j\x00")]  # a character PostgreSQL refuses
    for cursor in ("nope", "bm90IGEgY3Vyc29y", "x" * 201, *made):
        refused = service.client.get("/v1/jobs", params={"cursor": cursor},
                                     headers=service.headers())
        assert refused.status_code == 422 and refused.json()["code"] == "REQUEST_INVALID"


@pytest.mark.req("SRS-STORE-008")
def test_a_range_reads_energy_bins_by_whole_months() -> None:
    d = date
    assert month_split(d(2026, 1, 16), d(2026, 12, 20)) == (
        (d(2026, 2, 1), d(2026, 12, 1)), [(d(2026, 1, 16), d(2026, 2, 1)),
                                          (d(2026, 12, 1), d(2026, 12, 20))])
    assert month_split(None, None) == ((None, None), [])
    assert month_split(d(2026, 3, 1), d(2026, 5, 1)) == ((d(2026, 3, 1), d(2026, 5, 1)), [])
    assert month_split(d(2026, 3, 5), d(2026, 4, 1)) == (None, [(d(2026, 3, 5), d(2026, 4, 1))])
    assert month_split(d(2026, 12, 5), None) == (
        (d(2027, 1, 1), None), [(d(2026, 12, 5), d(2027, 1, 1))])
    assert month_split(None, d(2026, 3, 20)) == (
        (None, d(2026, 3, 1)), [(d(2026, 3, 1), d(2026, 3, 20))])


@pytest.mark.req("SRS-STORE-008", "SRS-CARB-025")
def test_the_summary_reads_rollups_and_the_records_of_partial_days_only(
        store_sessions, store_engine) -> None:
    with store_sessions() as session:
        for k in range(12):  # one record a month, at noon on the 16th
            at = datetime(2026, k + 1, 16, 12, tzinfo=UTC)
            session.add(Job(id=f"j{k}", site="site-a", use_case="aaa-cta", bundle_sha256="b",
                            model_name="m", model_version="1", state=JobState.SUCCEEDED,
                            created_at=at, finished_at=at))
            session.flush()
            record_emission(session, EmissionRecord(
                job_id=f"j{k}", site="site-a", use_case="aaa-cta", model_name="m",
                model_version="1", job_state=JobState.SUCCEEDED, finished_at=at,
                energy_status=EnergyStatus.MEASURED, energy_kwh=0.01 * (k + 1),
                emissions_kg_co2e=0.001, factor_set_id="f", factor_set_version="1",
                avoided_kg_co2e=1.0, avoided_iodine_g=1.0, avoided_plastics_g=1.0,
                avoided_steel_g=1.0, avoided_energy_kwh=1.0))
        session.commit()
        scope = FootprintFilter("site-a", datetime(2026, 1, 16, 10, tzinfo=UTC),
                                datetime(2026, 12, 16, 13, tzinfo=UTC))
        with recorded_statements(store_engine) as statements:
            result = summary(session, scope)
    assert result["counts"]["jobs"] == 12
    assert 0.12 <= result["compute"]["energy_kwh_p95_per_scan"] <= 0.12 * 1.02
    read = [(set(re.findall(r"FROM (\w+)", sql)), sql) for _, sql, _ in statements
            if sql.lstrip().startswith("SELECT")]
    assert set().union(*(tables for tables, _ in read)) == {
        "emission_daily", "emission_energy_bins", "emission_energy_bins_monthly",
        "emission_records"}
    # Records of the two partial days only (Jan 16 from 10:00, Dec 16 until 13:00), by site
    # and time: summed by the database, and their energies for the bins; every read is
    # bounded by the site.
    records = [sql for tables, sql in read if tables == {"emission_records"}]
    assert len(records) == 4 and all("finished_at >=" in sql for sql in records)
    assert sum("GROUP BY" in sql for sql in records) == 2
    assert sum(bool(re.match(r"SELECT emission_records\.energy_kwh\s+FROM", sql))
               for sql in records) == 2
    assert all(re.search(r"\.site = ", sql) for _, sql in read)
