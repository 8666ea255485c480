"""Benchmark: carbon accounting. Three figures, each beside its peer measured in the same run:

1. overhead of measuring a job (the warmed CodeCarbon task + the host's measurement slot in the
   database) against the job's own synthesis time (targets: <= 50 ms and <= 1 %);
2. the compute energy and CO2e of one benchmark scan (512x512x300 phantom NCCT through
   `synthesize`) and the ratio of the potential avoided footprint to what it emitted;
3. latency of the sustainability summary and time series over 1,000,000 emission records in
   PostgreSQL (target p95 <= 200 ms), beside a plain `SELECT count(*)` over the same rows.

    .venv/bin/python bench/carbon.py [--repeats 3] [--threads 2] [--bundle DIR]
        [--records 1000000] [--queries 20] [--skip-job] [--skip-aggregates]

PostgreSQL: the local server (127.0.0.1:5432, trust auth), in a throwaway database. The
machine is shared: read medians and ratios more than seconds.
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def percentile(values: list[float], q: float) -> float:
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q / 100 * len(ranked)) - 1))]


def job_overhead(repeats: int, threads: int, bundle: Path | None) -> None:
    import torch
    from inference_speed import load_model, prepare

    from digital_contrast.carbon.factors import load_factor_set
    from digital_contrast.carbon.meter import MeterConfig, ScanMeter
    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.inference import synthesize
    from digital_contrast.jobs.host_slot import host_slot
    from digital_contrast.store import make_engine, session_factory, upgrade_to_head

    torch.set_num_threads(threads)
    factors = load_factor_set()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        used = prepare(workdir, bundle)
        engine = make_engine(f"sqlite:///{workdir / 'store.db'}")
        upgrade_to_head(engine)
        sessions = session_factory(engine)
        volume = read_series(workdir / "ncct")
        model = load_model(Path(used["model"]))
        started = time.perf_counter()
        meter = ScanMeter(MeterConfig().check()).warm()
        warm_s = time.perf_counter() - started
        print(f"job: 512x512x300 phantom NCCT; model {used['weights']}; {threads} threads; "
              f"tracker warm-up (once per process) {warm_s:.2f} s")
        overheads, jobs, energies, bare = [], [], [], []

        def measured(repeat: int) -> None:
            t0 = time.perf_counter()
            with meter.measure(f"bench {repeat}", host_slot(sessions, "bench")) as energy:
                t1 = time.perf_counter()
                synthesize(volume, "aaa-cta", model)
                t2 = time.perf_counter()
            overheads.append((t1 - t0) + (time.perf_counter() - t2))
            jobs.append(t2 - t1)
            energies.append(energy)

        def unmeasured() -> None:  # the peer: the same synthesis, no tracker running
            t0 = time.perf_counter()
            synthesize(volume, "aaa-cta", model)
            bare.append(time.perf_counter() - t0)

        synthesize(volume, "aaa-cta", model)  # warm-up, not counted
        for repeat in range(repeats):  # alternate the order: neither always runs first
            if repeat % 2:
                unmeasured()
                measured(repeat)
            else:
                measured(repeat)
                unmeasured()
        engine.dispose()
    overhead, job, plain = (statistics.median(x) for x in (overheads, jobs, bare))
    print(f"measurement overhead per job: median {overhead * 1000:.1f} ms "
          f"(max {max(overheads) * 1000:.1f} ms) = {100 * overhead / job:.3f} % of the "
          f"synthesis ({job:.2f} s; unmeasured peer {plain:.2f} s, ratio {job / plain:.3f}); "
          f"targets <= 50 ms and <= 1 %")
    energy = energies[len(energies) // 2]
    kwh = statistics.median(e.energy_kwh for e in energies)
    kg = statistics.median(e.emissions_kg_co2e for e in energies)
    print(f"energy per benchmark scan: median {kwh * 1000:.3f} Wh, {kg * 1000:.3f} g CO2e "
          f"({energy.status}: {energy.method}; grid {energy.grid_intensity_kg_per_kwh:.3f} "
          f"kg/kWh {energy.country_iso_code}; CPU {energy.cpu_energy_kwh * 1000:.3f} Wh, RAM "
          f"{energy.ram_energy_kwh * 1000:.3f} Wh)")
    r = factors.co2e_range
    print(f"potential avoided per scan {r.central:.3f} kg CO2e (range {r.low:.3f}-{r.high:.3f}; "
          f"{factors.id}@{factors.version}, {factors.kind}) / emitted {kg * 1000:.3f} g = "
          f"{r.central / kg:,.0f}x (low {r.low / kg:,.0f}x)")


SEED_SQL = """
INSERT INTO jobs (id, site, use_case, options, bundle_sha256, model_name, model_version,
                  idempotency_key, state, attempts, created_at, finished_at)
SELECT md5(g::text)::uuid::text, CASE WHEN g % 10 = 0 THEN 'site-b' ELSE 'site-a' END,
       CASE WHEN g % 4 = 0 THEN 'abdomen-pv' ELSE 'aaa-cta' END, '{{}}', repeat('0', 64),
       'aaa-cta', '1.' || (g % 3) || '.0', md5(g::text),
       CASE WHEN g % 20 = 0 THEN 'rejected' WHEN g % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
       1, :start + (g * interval '{step} seconds'), :start + (g * interval '{step} seconds')
FROM generate_series(1, {n}) AS g;
INSERT INTO emission_records (job_id, site, use_case, model_name, model_version, job_state,
    finished_at, energy_status, method, duration_s, cpu_energy_kwh, gpu_energy_kwh,
    ram_energy_kwh, energy_kwh, emissions_kg_co2e, grid_intensity_kg_per_kwh,
    country_iso_code, pue, codecarbon_version, factor_set_id, factor_set_version,
    avoided_kg_co2e, avoided_iodine_g, avoided_plastics_g, avoided_steel_g,
    avoided_energy_kwh, contrast_scan_avoided)
SELECT id, site, use_case, model_name, model_version, state, finished_at,
       CASE WHEN random() < 0.01 THEN 'unavailable' ELSE 'estimated' END,
       'estimated (CPU load x TDP)', 30, e, 0, e * 0.1, e * 1.1, e * 1.1 * 0.2, 0.2, 'GBR',
       1.0, '3.3.2', 'contrast-ct', '2026.1',
       CASE WHEN state = 'succeeded' THEN 9.2 ELSE 0 END,
       CASE WHEN state = 'succeeded' THEN 35 ELSE 0 END,
       CASE WHEN state = 'succeeded' THEN 733.3 ELSE 0 END,
       CASE WHEN state = 'succeeded' THEN 5 ELSE 0 END,
       CASE WHEN state = 'succeeded' THEN 0.83 ELSE 0 END,
       CASE WHEN state = 'succeeded' AND random() < 0.5 THEN random() < 0.8 END
FROM (SELECT j.*, 0.002 + random() * 0.004 AS e FROM jobs j) AS s;
UPDATE emission_records SET energy_kwh = NULL, emissions_kg_co2e = NULL, method = NULL,
    cpu_energy_kwh = NULL, ram_energy_kwh = NULL, gpu_energy_kwh = NULL
WHERE energy_status = 'unavailable';
INSERT INTO emission_daily
SELECT site, (finished_at AT TIME ZONE 'UTC')::date, use_case, model_version, factor_set_id,
       factor_set_version, count(*), count(*) FILTER (WHERE job_state = 'succeeded'),
       count(*) FILTER (WHERE job_state = 'rejected'),
       count(*) FILTER (WHERE job_state = 'failed'),
       count(*) FILTER (WHERE energy_status = 'measured'),
       count(*) FILTER (WHERE energy_status = 'estimated'),
       count(*) FILTER (WHERE energy_status = 'unavailable'),
       count(*) FILTER (WHERE contrast_scan_avoided), count(*) FILTER (WHERE NOT
       contrast_scan_avoided), coalesce(sum(energy_kwh), 0), coalesce(sum(emissions_kg_co2e), 0),
       coalesce(sum(avoided_kg_co2e) FILTER (WHERE energy_kwh IS NOT NULL), 0),
       coalesce(sum(avoided_kg_co2e) FILTER (WHERE energy_kwh IS NOT NULL
                                             AND contrast_scan_avoided), 0),
       sum(avoided_kg_co2e), sum(avoided_iodine_g), sum(avoided_plastics_g),
       sum(avoided_steel_g), sum(avoided_energy_kwh),
       coalesce(sum(avoided_kg_co2e) FILTER (WHERE contrast_scan_avoided), 0),
       coalesce(sum(avoided_iodine_g) FILTER (WHERE contrast_scan_avoided), 0),
       coalesce(sum(avoided_plastics_g) FILTER (WHERE contrast_scan_avoided), 0),
       coalesce(sum(avoided_steel_g) FILTER (WHERE contrast_scan_avoided), 0),
       coalesce(sum(avoided_energy_kwh) FILTER (WHERE contrast_scan_avoided), 0)
FROM emission_records GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO emission_energy_bins
SELECT site, (finished_at AT TIME ZONE 'UTC')::date, use_case, model_version, factor_set_id,
       factor_set_version, floor(ln(energy_kwh / 1e-9) / ln(1.02))::int, count(*)
FROM emission_records WHERE energy_kwh IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;
ANALYZE;
"""


def aggregates(records: int, queries: int) -> None:
    from sqlalchemy import text

    from digital_contrast.store import make_engine, session_factory, upgrade_to_head
    from digital_contrast.store.footprints import FootprintFilter, summary, timeseries
    from tests.support.databases import throwaway_postgres_database

    start = datetime(2025, 12, 1, tzinfo=UTC)
    span = timedelta(days=365)
    with throwaway_postgres_database() as url:
        engine = make_engine(url)
        upgrade_to_head(engine)
        t0 = time.perf_counter()
        with engine.begin() as connection:
            for statement in SEED_SQL.format(n=records, step=span.total_seconds() / records
                                             ).split(";"):
                if statement.strip():
                    connection.execute(text(statement), {"start": start})
        print(f"aggregates: {records:,} emission records (and jobs) in PostgreSQL, one year, "
              f"90 % site-a, with their daily rollups; seeded in "
              f"{time.perf_counter() - t0:.0f} s")
        sessions = session_factory(engine)
        with sessions() as db:  # the bench's SQL rollups must say what the records say
            jobs, kwh = db.execute(text("SELECT count(*), sum(energy_kwh) FROM emission_records"
                                        " WHERE site = 'site-a'")).one()
            found = summary(db, FootprintFilter("site-a"))
        if found["counts"]["jobs"] != jobs or not math.isclose(found["compute"]["energy_kwh"],
                                                               kwh, rel_tol=1e-9):
            raise SystemExit(f"rollups disagree with the records: {found['counts']['jobs']} "
                             f"jobs, {found['compute']['energy_kwh']} kWh vs {jobs}, {kwh}")
        cases = {
            "summary, whole year": lambda db: summary(db, FootprintFilter("site-a")),
            "summary, one month, one use case": lambda db: summary(db, FootprintFilter(
                "site-a", start + timedelta(days=150), start + timedelta(days=180),
                use_case="aaa-cta")),
            "summary, 90 days from 13:30 (partial)": lambda db: summary(db, FootprintFilter(
                "site-a", start + timedelta(days=100, hours=13.5),
                start + timedelta(days=190, hours=13.5))),
            "timeseries by day, whole year": lambda db: timeseries(
                db, FootprintFilter("site-a"), "day"),
            "timeseries by month, whole year": lambda db: timeseries(
                db, FootprintFilter("site-a"), "month"),
            "peer: SELECT count(*) of the site": lambda db: db.execute(text(
                "SELECT count(*) FROM emission_records WHERE site = 'site-a'")).scalar(),
        }
        print(f"{'query':<38} {'p50 ms':>8} {'p95 ms':>8}   ({queries} runs each)")
        for name, run in cases.items():
            times = []
            for _ in range(queries):
                with sessions() as db:
                    t = time.perf_counter()
                    run(db)
                    times.append(time.perf_counter() - t)
            print(f"{name:<38} {statistics.median(times) * 1000:8.1f} "
                  f"{percentile(times, 95) * 1000:8.1f}")
        engine.dispose()
    print("target: summary and timeseries p95 <= 200 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="time this bundle (default: production "
                        "model, else the untrained reference architecture)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--skip-job", action="store_true")
    parser.add_argument("--skip-aggregates", action="store_true")
    args = parser.parse_args()
    if not args.skip_aggregates:
        aggregates(args.records, args.queries)
    if not args.skip_job:
        job_overhead(args.repeats, args.threads, args.bundle)


if __name__ == "__main__":
    main()
