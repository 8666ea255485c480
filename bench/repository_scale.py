"""The series index at a million series: NCI IDC's real series index (idc-index-data, ~1 M
series, 31 columns) loaded into our index on PostgreSQL, the columns it lacks filled with
generated values labelled as such; index rows ingested per second; cohort queries timed
(p50 / p95 of count + first page, through the product's `search`); and the queries both can
answer run beside idc-index's own query (DuckDB over its own columns), answers compared.

IDC's index has no tube voltage, slice thickness or kernel: those are generated from each
series UID's hash (named in the row's `generated` column), so the figures time the queries,
not a cohort anyone could use. Phase and region are our header labels of IDC's own
descriptions and body parts.

    .venv/bin/pip install idc-index==0.13.4      # the peer and its data, not a dependency
    .venv/bin/python bench/repository_scale.py --repeats 20

PostgreSQL: a throwaway database on the server of bench/query_scale.py (postgres@127.0.0.1).
Target (issue 22): p95 <= 200 ms for the cohort queries at >= 1 M series.
"""

import argparse
import datetime as dt
import hashlib
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from query_scale import nearest_rank, postgres_database

from digital_contrast.repository.index.classify import (
    age_band,
    phase_from_text,
    region_from_text,
)
from digital_contrast.repository.index.database import open_index, sessions
from digital_contrast.repository.index.records import bulk_insert
from digital_contrast.repository.index.search import SeriesQuery, search

GENERATED = "kvp,thickness_mm,kernel"
KVPS = (80.0, 100.0, 100.0, 120.0, 120.0, 120.0, 140.0)
THICKNESSES = (0.625, 1.0, 1.0, 1.25, 2.5, 3.0, 5.0)
KERNELS = ("B30F", "B40F", "BR40", "STANDARD", "SOFT", "FC08", "B70F", "LUNG")
BATCH = 10_000


def _generated(uid: str) -> tuple[float, float, str]:
    digest = hashlib.blake2b(uid.encode(), digest_size=6).digest()
    return (KVPS[digest[0] % len(KVPS)], THICKNESSES[digest[1] % len(THICKNESSES)],
            KERNELS[digest[2] % len(KERNELS)])


def _date(text: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def idc_rows(table: Any) -> Iterator[list[dict[str, Any]]]:
    """Our index rows from IDC's table (pyarrow), in batches."""
    for batch in table.to_batches(BATCH):
        rows = []
        for r in batch.to_pylist():
            uid = r["SeriesInstanceUID"]
            kvp, thickness, kernel = _generated(uid)
            sex = (r["PatientSex"] or "").strip().upper()
            rows.append({
                "site": r["collection_id"][:64], "series_uid": uid[:64],
                "study_uid": r["StudyInstanceUID"][:64], "patient": (r["PatientID"] or "")[:64],
                "modality": (r["Modality"] or "unknown")[:16],
                "region": region_from_text(r["BodyPartExamined"] or "",
                                           f"{r['StudyDescription'] or ''} "
                                           f"{r['SeriesDescription'] or ''}"),
                "region_source": "header",
                "phase": phase_from_text(r["SeriesDescription"] or ""),
                "phase_source": "header", "kvp": kvp, "thickness_mm": thickness,
                "kernel": kernel, "manufacturer": (r["Manufacturer"] or None),
                "study_date": _date(r["StudyDate"]), "age_band": age_band(r["PatientAge"]),
                "sex": sex if sex in ("M", "F", "O") else None,
                "instances": int(r["instanceCount"] or 0), "quality": "unknown",
                "instance_set_sha256": None, "source": "idc-index", "generated": GENERATED,
                "extra": {},
            })
        yield rows


def timed(run: Callable[[], Any], repeats: int) -> tuple[Any, list[float]]:
    times, answer = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        answer = run()
        times.append(1000.0 * (time.perf_counter() - started))
    return answer, times


def _busiest_site(table: Any) -> str:
    """The collection with the most CT series of women in their sixties: a site query that
    finds something."""
    import pyarrow.compute as pc

    ages = pc.fill_null(table.column("PatientAge"), "")
    chosen = table.filter(pc.and_(pc.and_(pc.equal(table.column("Modality"), "CT"),
                                          pc.equal(table.column("PatientSex"), "F")),
                                  pc.match_substring_regex(ages, "^06[0-9]Y$")))
    counts = pc.value_counts(chosen.column("collection_id")).to_pylist()
    return max(counts, key=lambda c: c["counts"])["values"] if counts else \
        table.column("collection_id")[0].as_py()


def peers() -> dict[str, Callable[[str], int]]:
    """idc-index's own query (IDCClient.sql_query: DuckDB over its pandas index) and, as the
    stronger peer, DuckDB reading the same parquet file directly."""
    import duckdb
    import idc_index_data

    connection = duckdb.connect()
    connection.execute("CREATE VIEW \"index\" AS SELECT * FROM read_parquet("
                       f"'{idc_index_data.IDC_INDEX_PARQUET_FILEPATH}')")
    found = {"duckdb-parquet": lambda sql: int(connection.execute(sql).fetchone()[0])}
    try:
        from idc_index import IDCClient

        client = IDCClient()
        found["idc-index"] = lambda sql: int(client.sql_query(sql).iloc[0, 0])
    except Exception as exc:  # the client may reach for the network when it starts
        print(f"idc-index's client did not start: {type(exc).__name__}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--limit", type=int, default=0,
                        help="load only this many series (a trial: the peers read them all)")
    args = parser.parse_args()
    import idc_index_data
    import pyarrow.parquet as pq

    table = pq.read_table(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)
    if args.limit:
        table = table.slice(0, args.limit)
    print(f"IDC index {idc_index_data.__version__}: {table.num_rows} series")
    with postgres_database() as url:
        engine = open_index(url)
        make = sessions(engine)
        started, loaded = time.perf_counter(), 0
        for rows in idc_rows(table):
            with make.begin() as session:
                bulk_insert(session, rows)
            loaded += len(rows)
        seconds = time.perf_counter() - started
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE repository_series")
        print(f"loaded {loaded} index rows in {seconds:.0f} s: {loaded / seconds:.0f} rows/s "
              "(header labels computed, product insert path, PostgreSQL)")
        site = _busiest_site(table)
        cohorts = {
            "PV abdomen, 100-120 kVp, <= 1.5 mm": SeriesQuery(
                phase=["portal_venous"], region=["abdomen", "abdomen_pelvis"], kvp_min=100,
                kvp_max=120, thickness_max_mm=1.5),
            "contrast with a native pair, abdomen": SeriesQuery(
                region=["abdomen", "abdomen_pelvis"], with_native_pair=True),
            f"site {site}, F, 60-69": SeriesQuery(site=[site], sex=["F"], age_band=["60-69"]),
            "arterial, kernel B30F or STANDARD": SeriesQuery(
                phase=["arterial"], kernel=["B30F", "STANDARD"]),
            "chest, 1.0 mm, M, 70-79": SeriesQuery(
                region=["chest"], thickness_min_mm=1.0, thickness_max_mm=1.0, sex=["M"],
                age_band=["70-79"]),
        }
        print(f"{'cohort query (count + first 50)':<42}{'matches':>9}{'p50 ms':>9}"
              f"{'p95 ms':>9}")
        def count(query: SeriesQuery) -> int:
            with make() as session:
                return search(session, query)[0]

        for name, query in cohorts.items():
            matches, times = timed(lambda query=query: count(query), args.repeats)
            print(f"{name:<42}{matches:>9}{statistics.median(times):>9.1f}"
                  f"{nearest_rank(times, 0.95):>9.1f}")

        others = peers()
        both = {
            "CT series": ("SELECT count(*) FROM index WHERE Modality = 'CT'",
                          SeriesQuery(modality="CT", limit=0)),
            f"CT of {site}": (f"SELECT count(*) FROM index WHERE Modality = 'CT' AND "
                              f"collection_id = '{site}'",
                              SeriesQuery(modality="CT", site=[site], limit=0)),
            "CT, F, age 60-69": ("SELECT count(*) FROM index WHERE Modality = 'CT' AND "
                                 "PatientSex = 'F' AND regexp_matches(PatientAge, "
                                 "'^06[0-9]Y$')",
                                 SeriesQuery(modality="CT", sex=["F"], age_band=["60-69"],
                                             limit=0)),
        }
        print(f"{'query both answer (count)':<26}{'method':<16}{'answer':>9}{'same':>6}"
              f"{'p50 ms':>10}{'p95 ms':>10}")
        for name, (sql, query) in both.items():
            mine, times = timed(lambda query=query: count(query), args.repeats)
            print(f"{name:<26}{'ours (PG)':<16}{mine:>9}{'':>6}"
                  f"{statistics.median(times):>10.1f}{nearest_rank(times, 0.95):>10.1f}")
            for peer, ask in others.items():
                # idc-index's client takes seconds per query: fewer repeats
                repeats = args.repeats if peer == "duckdb-parquet" else min(3, args.repeats)
                theirs, times = timed(lambda sql=sql, ask=ask: ask(sql), repeats)
                print(f"{'':<26}{peer:<16}{theirs:>9}{'yes' if mine == theirs else 'NO':>6}"
                      f"{statistics.median(times):>10.1f}{nearest_rank(times, 0.95):>10.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
