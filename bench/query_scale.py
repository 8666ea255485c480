"""Benchmark: the job listing and the sustainability summary at scale, on PostgreSQL and, as
the peer, on SQLite. A throwaway database is migrated to head with the product's migrations and
filled with N jobs as a multi-site installation would hold them after months of use: states,
use cases and model versions by time, jobs older than the retention period de-identified, an
emission record per finished job and the rollups the product writes for them (summed from the
product's own `footprints.rollup_additions`), and a delivery per succeeded job of the site with
an automatic destination. Rows are bulk loaded (COPY on PostgreSQL, then VACUUM ANALYZE as
autovacuum would; SQLite is left without statistics, as a site's file is).

The queries run through the real FastAPI app (in process, with API keys): the job list (first
page, a deep page by cursor, filtered by state and by time, limit 1000), the sustainability
summary (the site, a range with partial days, a use case and model version) and the dashboard
page. Each is sent `--repeats` times per round (fewer, at least 5, once a round of it took
5 s) for `--rounds` rounds; p50 and p95 are nearest-rank per round, and the medians over the
rounds are printed with the target (p95 at most 200 ms). The databases are dropped at the end.

    .venv/bin/python bench/query_scale.py [--jobs 1000000] [--sqlite-jobs N] [--sites 4]
        [--months 12] [--rounds 5] [--repeats 30] [--explain]

`--sqlite-jobs 0` skips SQLite; `--explain` prints PostgreSQL's plan (EXPLAIN ANALYZE) of every
statement of one request per query that took over 2 ms. PostgreSQL at DC_TEST_POSTGRES_URL (the
maintenance database; default postgres@127.0.0.1:5432, as the tests). The machine is shared:
read the figures as a bound, not a precise time.
"""

import argparse
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "device"))

# ruff: noqa: E402  (the repository's folders are put on the path first)
from fastapi.testclient import TestClient
from sqlalchemy import JSON, Engine, Integer, Table, create_engine, event, func, insert, select
from sqlalchemy.engine import make_url

from digital_contrast.api.app import create_app
from digital_contrast.api.routers import jobs as jobs_router
from digital_contrast.carbon.accounting import potential_avoided
from digital_contrast.carbon.factors import load_factor_set
from digital_contrast.config import Settings
from digital_contrast.store import Origin, Role, Series, Study
from digital_contrast.store.api_keys import create_api_key
from digital_contrast.store.database import make_engine, session_factory, upgrade_to_head
from digital_contrast.store.footprints import rollup_additions
from digital_contrast.store.tables import (
    Base,
    Delivery,
    Destination,
    EmissionRecord,
    Job,
)
from tests.support.databases import POSTGRES_ADMIN_URL, recorded_statements

TARGET_MS = 200.0
ROUND_BUDGET_S = 5.0  # a query slower than this per round gets fewer samples (at least 5)
CHUNK = 20_000
DEEP_RANK = 100_000  # the deep page starts after this many jobs of the site (or half of them)
RETENTION = timedelta(days=30)  # the default DC_RETENTION_DAYS: older jobs are de-identified
SERIES_PER_SITE = 2_000
AUTO_DELIVERY_SITES = 1  # the first site pushes every result to its PACS
# (country, grid kg CO2e/kWh) per site, cycled
GRIDS = (("FRA", 0.052), ("DEU", 0.381), ("GBR", 0.207), ("NLD", 0.328))
USE_CASES = (("aaa-cta", 0.7), ("abdomen-pv", 0.3))
OUTCOMES = (("succeeded", 0.88), ("rejected", 0.08), ("failed", 0.04))
REJECTIONS = ("CONF_COVERAGE", "CONF_CONTRAST_GIVEN", "IMG_MISSING_SLICES", "SERIES_CHANGED")
VERSIONS = ((0.4, "1.0.0"), (0.8, "1.1.0"), (1.01, "1.2.0"))  # model in use by time
BUNDLES = {v: hashlib.sha256(v.encode()).hexdigest() for _, v in VERSIONS}


class BenchError(Exception):
    """A normal failure: printed as one message, without a traceback."""


# --- the data a site has ------------------------------------------------------------------

@dataclass(frozen=True)
class Scale:
    jobs: int
    sites: int
    months: int
    seed: int
    end: datetime
    start: datetime = field(init=False)
    seconds: float = field(init=False)
    sites_named: list[str] = field(init=False)

    def __post_init__(self) -> None:  # derived once: read for every generated job
        object.__setattr__(self, "start", self.end - timedelta(days=30 * self.months))
        object.__setattr__(self, "seconds", (self.end - self.start).total_seconds())
        object.__setattr__(self, "sites_named", [f"site-{k + 1:02d}" for k in range(self.sites)])

    def site(self, k: int) -> str:
        return self.sites_named[k]


@dataclass
class Fixtures:
    """Rows the jobs refer to: a key per site, series to read, a destination per site."""

    series: dict[str, list[int]]
    destinations: dict[str, int]
    submitter: dict[str, int]


@dataclass
class Batch:
    jobs: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


def _hex(rng: random.Random, bits: int = 256) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _uid(rng: random.Random) -> str:
    return f"2.25.{rng.getrandbits(120)}"


def _result(rng: random.Random, state: str, use_case: str, energy: dict[str, Any]
            ) -> dict[str, Any]:
    """A job's result as the runner stores it (conformity, timings, confidence, maps)."""
    checks = [{"code": code, "check": code.lower(), "outcome": "passed", "measured": "ok",
               "expected": "within the use case's envelope", "message": ""}
              for code in ("CONF_MODALITY", "CONF_SLICE_THICKNESS", "CONF_COVERAGE",
                           "CONF_KVP", "CONF_CONTRAST_GIVEN", "CONF_BODY_PART")]
    result: dict[str, Any] = {"conformity": {"use_case": use_case, "passed": state != "rejected",
                                             "checks": checks}, "energy": energy}
    if state != "succeeded":
        return result
    slug = "uncertainty-tta"
    return result | {
        "timings_s": {"conformity": round(rng.uniform(0.2, 0.6), 3),
                      "inference": round(rng.uniform(20, 90), 3),
                      "uncertainty": round(rng.uniform(10, 40), 3),
                      "write": round(rng.uniform(1, 4), 3)},
        "warnings": [], "input_sha256": _hex(rng), "output_sha256": _hex(rng),
        "confidence": {"low_confidence": rng.random() < 0.05,
                       "mean_sd_hu": round(rng.uniform(4, 20), 2), "calibrated": True},
        "maps": [{"kind": "uncertainty", "method": "tta", "slug": slug, "unit": "[hnsf'U]",
                  "description": "SD of synthesized enhancement over 8 test-time "
                                 "augmentations",
                  "parametric_map_series_uid": _uid(rng),
                  "parametric_map_sop_instance_uid": _uid(rng),
                  "secondary_capture_series_uid": _uid(rng),
                  "previews": {"axial": "preview_axial.png", "coronal": "preview_coronal.png"},
                  "nifti": "map.nii.gz"}]}


def _energy(rng: random.Random, country: str, grid: float) -> dict[str, Any]:
    """The job's energy as CodeCarbon reports it: mostly measured, some estimated, a few
    unavailable (the tracker failed)."""
    x = rng.random()
    if x < 0.02:
        return {"status": "unavailable", "reason": "the tracker failed to start"}
    kwh = rng.lognormvariate(math.log(0.006), 0.4)
    split = (0.25, 0.7, 0.05) if x < 0.6 else (0.85, 0.0, 0.15)
    return {"status": "measured" if x < 0.6 else "estimated",
            "method": "rapl+nvml" if x < 0.6 else "cpu_load_x_tdp",
            "duration_s": round(kwh / 0.0001, 1), "cpu_kwh": kwh * split[0],
            "gpu_kwh": kwh * split[1], "ram_kwh": kwh * split[2], "kwh": kwh,
            "kg_co2e": kwh * 1.4 * grid, "country": country, "grid": grid, "pue": 1.4}


def _record(job: dict[str, Any], energy: dict[str, Any], factors: Any, rng: random.Random
            ) -> dict[str, Any]:
    avoided = potential_avoided(job["state"], factors)
    reported = job["state"] == "succeeded" and rng.random() < 0.3
    avoided_scan = (rng.random() < 0.7) if reported else None
    return {
        "job_id": job["id"], "site": job["site"], "use_case": job["use_case"],
        "model_name": job["model_name"], "model_version": job["model_version"],
        "job_state": job["state"], "finished_at": job["finished_at"],
        "energy_status": energy["status"], "energy_reason": energy.get("reason"),
        "method": energy.get("method"), "duration_s": energy.get("duration_s"),
        "cpu_energy_kwh": energy.get("cpu_kwh"), "gpu_energy_kwh": energy.get("gpu_kwh"),
        "ram_energy_kwh": energy.get("ram_kwh"), "energy_kwh": energy.get("kwh"),
        "emissions_kg_co2e": energy.get("kg_co2e"),
        "grid_intensity_kg_per_kwh": energy.get("grid"),
        "country_iso_code": energy.get("country"), "pue": energy.get("pue"),
        "codecarbon_version": "3.0.7", "factor_set_id": factors.id,
        "factor_set_version": factors.version, "avoided_kg_co2e": avoided.kg_co2e,
        "avoided_iodine_g": avoided.iodine_g, "avoided_plastics_g": avoided.plastics_g,
        "avoided_steel_g": avoided.steel_g, "avoided_energy_kwh": avoided.energy_kwh,
        "contrast_scan_avoided": avoided_scan,
        "outcome_at": job["finished_at"] + timedelta(days=2) if reported else None,
        "detail": {"methods": [energy.get("method")], "slot_wait_s": 0.0}}


def _id(rng: random.Random) -> str:
    """A random UUID's text (as uuid4 makes them, faster)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _job(scale: Scale, fixtures: Fixtures, rng: random.Random, i: int) -> dict[str, Any]:
    created = scale.start + timedelta(seconds=(i + rng.random()) * scale.seconds / scale.jobs)
    site = scale.sites_named[rng.randrange(scale.sites)]
    version = next(v for limit, v in VERSIONS if i / scale.jobs < limit)
    recent, age = created > scale.end - RETENTION, scale.end - created
    state = ("queued" if age < timedelta(minutes=3) else "running"
             if age < timedelta(minutes=6) else _pick(rng, OUTCOMES))
    started = created + timedelta(seconds=rng.uniform(1, 60)) if state != "queued" else None
    finished = (started + timedelta(seconds=rng.uniform(40, 240))
                if started is not None and state != "running" else None)
    use_case = _pick(rng, USE_CASES)
    code = (rng.choice(REJECTIONS) if state == "rejected" else "INTERNAL_ERROR"
            if state == "failed" else None)
    return {
        "id": _id(rng), "site": site,
        "series_id": rng.choice(fixtures.series[site]) if recent else None,
        "use_case": use_case, "options": {}, "bundle_sha256": BUNDLES[version],
        "instance_set_sha256": _hex(rng) if recent else None,
        "model_name": f"dc-{use_case}", "model_version": version,
        "idempotency_key": _hex(rng) if recent else None, "state": state,
        "attempts": 0 if state == "queued" else 1,
        "lease_owner": None if state == "queued" else f"worker-{rng.randrange(4)}",
        "lease_expires_at": created + timedelta(minutes=10) if state == "running" else None,
        "submitted_by": fixtures.submitter.get(site), "created_at": created,
        "started_at": started, "finished_at": finished, "result": None,
        "error_code": code, "error_detail": "refused" if code and recent else None,
        "output_series_uid": _uid(rng) if state == "succeeded" and recent else None,
        "deidentified_at": None if recent else created + RETENTION + timedelta(hours=1),
        "dispatched_at": None}


def _delivery(job: dict[str, Any], destination: int, rng: random.Random) -> dict[str, Any]:
    done = job["finished_at"] + timedelta(seconds=rng.uniform(2, 20))
    return {"id": _id(rng), "site": job["site"],
            "job_id": job["id"], "destination_id": destination,
            "series_uids": [_uid(rng), _uid(rng), _uid(rng)], "state": "delivered",
            "attempts": 1, "next_attempt_at": job["finished_at"], "lease_owner": None,
            "lease_expires_at": None, "last_error": None, "instances_sent": 186,
            "requested_by": "auto", "created_at": job["finished_at"], "delivered_at": done}


def generate(scale: Scale, fixtures: Fixtures, factors: Any) -> Iterator[Batch]:
    """Jobs in time order (as they were inserted), in batches, with their records and
    deliveries; the same seed gives the same rows."""
    rng = random.Random(scale.seed)
    grids = {scale.site(k): GRIDS[k % len(GRIDS)] for k in range(scale.sites)}
    batch = Batch()
    for i in range(scale.jobs):
        job = _job(scale, fixtures, rng, i)
        batch.jobs.append(job)
        if job["finished_at"] is not None:
            energy = _energy(rng, *grids[job["site"]])
            if job["deidentified_at"] is None:
                job["result"] = _result(rng, job["state"], job["use_case"], energy)
            batch.records.append(_record(job, energy, factors, rng))
            if job["state"] == "succeeded" and job["site"] in fixtures.destinations:
                batch.deliveries.append(_delivery(job, fixtures.destinations[job["site"]], rng))
        if len(batch.jobs) == CHUNK:
            yield batch
            batch = Batch()
    yield batch


class Rollups:
    """The rollup rows of the records, summed from the product's own `rollup_additions`."""

    def __init__(self) -> None:
        self.rows: dict[Table, dict[tuple[Any, ...], dict[str, float]]] = defaultdict(dict)

    def add(self, record: dict[str, Any]) -> None:
        for table, key, values in rollup_additions(SimpleNamespace(**record)):
            target = self.rows[table].setdefault(tuple(key.items()), defaultdict(float))
            for name, value in values.items():
                target[name] += value

    def tables(self) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
        """Each rollup table's rows (counts as integers, as the columns are)."""
        for table, sums in self.rows.items():
            integers = {c.name for c in table.columns if isinstance(c.type, Integer)}
            yield table, [dict(key) | {c: round(v) if c in integers else v
                                       for c, v in values.items()}
                          for key, values in sums.items()]


# --- databases ----------------------------------------------------------------------------

@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"dc_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        raise BenchError(f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {exc}") from None
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _row_values(table: Table, rows: list[dict[str, Any]], convert: Callable[[str], Any]
                ) -> tuple[list[str], list[list[Any]]]:
    """Columns and values in column order, each value through the column's converter."""
    columns = list(rows[0])
    converters = [(i, f) for i, c in enumerate(columns) if (f := convert(c)) is not None]
    values = []
    for row in rows:
        value = [row[c] for c in columns]
        for i, f in converters:
            value[i] = f(value[i])
        values.append(value)
    return columns, values


def copy_rows(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY, JSON as the product's JSON columns write it, foreign keys not
    re-checked (the rows are consistent by construction; checking them would time the checks,
    not the queries)."""
    if not rows:
        return
    columns, values = _row_values(table, rows, lambda c: json.dumps if isinstance(
        table.c[c].type, JSON) else None)
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)


def insert_rows(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    """SQLite: a prepared INSERT run for every row, each value through its column's own
    SQLAlchemy bind processor, so values are stored as the product stores them (naive UTC
    datetimes, JSON text)."""
    if not rows:
        return
    columns, values = _row_values(
        table, rows, lambda c: table.c[c].type.bind_processor(engine.dialect))
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, [tuple(v) for v in values])


def sqlite_loader(path: Path) -> Engine:
    """A bulk-load connection: no fsync, a large cache (the file is the same)."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")
        dbapi_connection.execute("PRAGMA cache_size=-1000000")

    return engine


@dataclass
class Target:
    """One database under test: how rows are bulk loaded into it, and its API keys."""

    label: str
    url: str
    load: Callable[[Engine, Table, list[dict[str, Any]]], None]
    loader: Callable[[], Engine]  # the bulk-load connection
    analyze: bool
    keys: dict[str, str] = field(default_factory=dict)


def make_fixtures(engine: Engine, scale: Scale) -> tuple[Fixtures, dict[str, str]]:
    """A study with series and a destination per site (the same ids in every database), and
    the API keys of the first site, the one measured; its clinician key submitted its jobs
    (the other sites' jobs were auto-run: no key)."""
    fixtures, keys, now = Fixtures({}, {}, {}), {}, scale.end
    with session_factory(engine)() as db:
        for role in (Role.CLINICIAN, Role.SUSTAINABILITY):
            key, keys[role.value] = create_api_key(db, scale.site(0), f"bench-{role}", role)
            fixtures.submitter.setdefault(scale.site(0), key.id)
        for k, site in enumerate(scale.sites_named):
            study = Study(site=site, study_instance_uid=f"1.2.826.0.1.{k}", created_at=now)
            db.add(study)
            db.flush()
            fixtures.series[site] = list(db.scalars(insert(Series).returning(Series.id), [
                {"study_id": study.id, "site": site, "modality": "CT", "created_at": now,
                 "series_instance_uid": f"1.2.826.0.1.{k}.{n}", "updated_at": now,
                 "origin": Origin.RECEIVED, "synthetic": False}
                for n in range(SERIES_PER_SITE)]))
            if k < AUTO_DELIVERY_SITES:
                destination = Destination(site=site, name="pacs", protocol="dimse",
                                          ae_title="PACS", host="pacs.local", port=104,
                                          auto=True, transfer_syntaxes=[], created_at=now)
                db.add(destination)
                db.flush()
                fixtures.destinations[site] = destination.id
        db.commit()
    return fixtures, keys


def fill(targets: list[Target], scale: Scale) -> None:
    """Migrate each database and add the fixtures; then generate the jobs once and bulk load
    them, their records and deliveries, and the rollups into every database."""
    fixtures = None
    for target in targets:
        engine = make_engine(target.url)
        try:
            upgrade_to_head(engine)
            fixtures, target.keys = make_fixtures(engine, scale)
        finally:
            engine.dispose()
    assert fixtures is not None
    loaders, rollups, started = [t.loader() for t in targets], Rollups(), time.perf_counter()
    try:
        for batch in generate(scale, fixtures, load_factor_set()):
            for target, loader in zip(targets, loaders, strict=True):
                target.load(loader, Job.__table__, batch.jobs)
                target.load(loader, EmissionRecord.__table__, batch.records)
                target.load(loader, Delivery.__table__, batch.deliveries)
            for record in batch.records:
                rollups.add(record)
        for table, rows in rollups.tables():
            for target, loader in zip(targets, loaders, strict=True):
                for start in range(0, len(rows), CHUNK):
                    target.load(loader, table, rows[start:start + CHUNK])
        for target, loader in zip(targets, loaders, strict=True):
            if target.analyze:  # what autovacuum does after a large load
                with loader.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM ANALYZE")
    finally:
        for loader in loaders:
            loader.dispose()
    print(f"{' and '.join(t.label for t in targets)}: {scale.jobs:,} jobs generated and loaded "
          f"in {time.perf_counter() - started:.0f} s")


# --- the queries --------------------------------------------------------------------------

Figures = dict[str, tuple[float, float, int]]  # query: p50 ms, p95 ms, requests timed


@dataclass(frozen=True)
class Query:
    name: str
    path: str
    params: dict[str, str]
    role: str  # a Role value


def deep_rank(scale: Scale) -> int:
    return min(DEEP_RANK, max(1, scale.jobs // scale.sites // 2))


def queries(scale: Scale, deep_cursor: str | None) -> list[Query]:
    def at(days: float, hour: int = 0) -> str:
        moment = (scale.end - timedelta(days=days)).replace(hour=hour, minute=0, second=0,
                                                            microsecond=0)
        return moment.isoformat().replace("+00:00", "Z")

    listing = [
        Query("jobs: first page (100)", "/v1/jobs", {}, "clinician"),
        Query("jobs: state=failed", "/v1/jobs", {"state": "failed"}, "clinician"),
        Query("jobs: state=rejected, since 90 d", "/v1/jobs",
              {"state": "rejected", "since": at(90)}, "clinician"),
        Query("jobs: since 7 d", "/v1/jobs", {"since": at(7)}, "clinician"),
        Query("jobs: limit=1000", "/v1/jobs", {"limit": "1000"}, "clinician"),
    ]
    if deep_cursor is not None:
        listing.insert(1, Query(f"jobs: deep page (after {deep_rank(scale):,})", "/v1/jobs",
                                {"cursor": deep_cursor}, "clinician"))
    summaries = [
        Query("summary: site", "/v1/sustainability/summary", {}, "sustainability"),
        Query("summary: 90 d, partial days", "/v1/sustainability/summary",
              {"from": at(90, 8), "to": at(1, 17)}, "sustainability"),
        Query("summary: use case + model", "/v1/sustainability/summary",
              {"use_case": "aaa-cta", "model_version": "1.1.0"}, "sustainability"),
        Query("timeseries: month", "/v1/sustainability/timeseries", {"bucket": "month"},
              "sustainability"),
        Query("dashboard page", "/dashboard/sustainability", {}, "sustainability"),
    ]
    return listing + summaries


@contextmanager
def connected(url: str) -> Iterator[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def deep_cursor(url: str, site: str, rank: int) -> str | None:
    """The cursor after the `rank`-th job of the site, made by the API's own encoder (None:
    this version of the API has no cursor)."""
    encode = getattr(jobs_router, "page_cursor", None)
    if encode is None:
        return None
    with connected(url) as connection:
        row = connection.execute(
            select(Job.created_at, Job.id).where(Job.site == site)
            .order_by(Job.created_at.desc(), Job.id.desc()).offset(rank - 1).limit(1)
        ).one_or_none()
    return None if row is None else encode(row.created_at, row.id)


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


@contextmanager
def service(url: str, site: str, root: Path) -> Iterator[TestClient]:
    """The service's app on the database, in process (no job workers)."""
    settings = Settings(data_dir=root / "data", keys_dir=root / "keys", releases_dir=root / "rel",
                        database_url=url, site=site, workers=0,
                        rate_limit_address="1000000/minute", rate_limit_key="1000000/minute")
    with TestClient(create_app(settings, background=False)) as client:
        yield client


def timed(client: TestClient, query: Query, keys: dict[str, str], repeats: int) -> list[float]:
    """Milliseconds of `repeats` requests, fewer (at least 5) past the round's budget."""
    headers, times = {"X-API-Key": keys[query.role]}, []
    deadline = time.perf_counter() + ROUND_BUDGET_S
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
        started = time.perf_counter()
        client.get(query.path, params=query.params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(client: TestClient, keys: dict[str, str], plan: list[Query], rounds: int,
            repeats: int) -> Figures:
    """Per query: the medians over rounds of the nearest-rank p50 and p95 (ms), and how many
    requests were timed."""
    per_round: dict[str, list[list[float]]] = defaultdict(list)
    for query in plan:  # warm: caches, plans, the key's verification
        for _ in range(3):
            response = client.get(query.path, params=query.params,
                                  headers={"X-API-Key": keys[query.role]})
            if response.status_code != 200:
                raise BenchError(f"{query.name}: {response.status_code} {response.text[:300]}")
    for _ in range(rounds):
        for query in plan:
            per_round[query.name].append(timed(client, query, keys, repeats))
    return {name: (statistics.median(nearest_rank(t, 0.5) for t in samples),
                   statistics.median(nearest_rank(t, 0.95) for t in samples),
                   sum(map(len, samples)))
            for name, samples in per_round.items()}


def explain(client: TestClient, keys: dict[str, str], plan: list[Query]) -> None:
    """PostgreSQL's plan of every SELECT over 2 ms in one request of each query."""
    engine = client.app.state.service.engine
    for query in plan:
        with recorded_statements(engine) as statements:
            client.get(query.path, params=query.params, headers={"X-API-Key": keys[query.role]})
        total = sum(s[0] for s in statements)
        print(f"\n== {query.name}: {len(statements)} statements, {total:.1f} ms in the database")
        with engine.connect() as connection:
            for took, sql, params in statements:
                if took > 2 and sql.lstrip().upper().startswith("SELECT"):
                    print(f"-- {took:.1f} ms: {' '.join(sql.split())[:300]}")
                    print("\n".join(connection.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).scalars()))


def describe(url: str) -> str:
    """The database's version and row counts."""
    with connected(url) as connection:
        version = (connection.exec_driver_sql("SHOW server_version").scalar_one()
                   if connection.dialect.name == "postgresql" else "SQLite " +
                   connection.exec_driver_sql("SELECT sqlite_version()").scalar_one())
        rows = {name: connection.execute(select(func.count()).select_from(
            Base.metadata.tables[name])).scalar_one()
            for name in ("jobs", "emission_records", "emission_daily", "emission_energy_bins",
                         "emission_energy_bins_monthly", "deliveries")}
    return f"{version}: " + ", ".join(f"{name} {n:,}" for name, n in rows.items())


def check_summary(client: TestClient, keys: dict[str, str], url: str, site: str) -> None:
    """The summary the API serves against a direct aggregate of the site's records."""
    body = client.get("/v1/sustainability/summary",
                      headers={"X-API-Key": keys["sustainability"]}).json()
    with connected(url) as connection:
        jobs, kwh = connection.execute(select(func.count(), func.sum(EmissionRecord.energy_kwh))
                                       .where(EmissionRecord.site == site)).one()
    same = body["counts"]["jobs"] == jobs and math.isclose(
        body["compute"]["energy_kwh"], kwh or 0.0, rel_tol=1e-9)
    print(f"summary of {site} equals a direct aggregate of its emission records "
          f"({jobs:,} records, {kwh or 0:.3f} kWh): {'yes' if same else 'NO'}")
    if not same:
        raise BenchError(f"summary {body['counts']['jobs']} jobs, "
                         f"{body['compute']['energy_kwh']} kWh; records {jobs}, {kwh}")


def run(target: Target, scale: Scale, args: argparse.Namespace, root: Path) -> Figures:
    site = scale.site(0)
    print(f"{target.label} {describe(target.url)}")
    plan = queries(scale, deep_cursor(target.url, site, deep_rank(scale)))
    with service(target.url, site, root / target.label) as client:
        check_summary(client, target.keys, target.url, site)
        if args.explain and target.label == "postgresql":
            explain(client, target.keys, plan)
        return measure(client, target.keys, plan, args.rounds, args.repeats)


def report(results: dict[str, Figures], jobs: dict[str, int]) -> None:
    print(f"\np50 / p95 in ms (median over rounds of nearest-rank percentiles), requests "
          f"timed; target p95 <= {TARGET_MS:.0f} ms")
    labels = list(results)
    print(f"{'query':36}" + "".join(f" | {f'{label} ({jobs[label]:,} jobs)':>36}"
                                    for label in labels))
    for name in dict.fromkeys(n for r in results.values() for n in r):
        cells = []
        for label in labels:
            if name not in results[label]:
                cells.append(f" | {'n/a':>36}")
                continue
            p50, p95, n = results[label][name]
            verdict = "meets" if p95 <= TARGET_MS else "MISSES"
            cells.append(f" | {p50:8.1f} / {p95:8.1f} {n:5d} {verdict:>6}")
        print(f"{name:36}{''.join(cells)}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--sqlite-jobs", type=int, default=None,
                        help="jobs in the SQLite peer (default: --jobs; 0 skips SQLite)")
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    if min(args.jobs, args.sites, args.months, args.rounds, args.repeats) < 1:
        parser.error("--jobs, --sites, --months, --rounds and --repeats must be positive")
    args.sqlite_jobs = args.jobs if args.sqlite_jobs is None else args.sqlite_jobs
    return args


def main() -> int:
    args = arguments()
    started = time.perf_counter()
    results: dict[str, Figures] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="dc-query-scale-") as folder, \
            postgres_database() as url:
        root = Path(folder)
        path = root / "sqlite" / "store.db"
        postgres = Target("postgresql", url, copy_rows, lambda: make_engine(url), True)
        sqlite = Target("sqlite", f"sqlite:///{path}", insert_rows, lambda: sqlite_loader(path),
                        False)
        # Databases of the same size share one generation pass (the same rows).
        passes = {args.jobs: [postgres]}
        if args.sqlite_jobs > 0:
            passes.setdefault(args.sqlite_jobs, []).append(sqlite)
        end = datetime.now(UTC).replace(microsecond=0)
        for jobs, targets in passes.items():
            scale = Scale(jobs, args.sites, args.months, args.seed, end)
            fill(targets, scale)
            for target in targets:
                results[target.label] = run(target, scale, args, root)
                sizes[target.label] = jobs
    report(results, sizes)
    print(f"\nbench ran {time.perf_counter() - started:.0f} s; throwaway databases dropped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"query_scale: {exc}", file=sys.stderr)
        sys.exit(1)
