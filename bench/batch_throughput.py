"""Benchmark: a cohort batch through 2 Celery workers (RabbitMQ) against the same batch through
2 embedded-queue workers, on the same machine, one after the other, in the same run.

Each side gets its own PostgreSQL database (a throwaway one) and data folder, the same
manifest of N small phantom NCCT series (cached under var/cache/batch-cases: generated once),
and two `digital-contrast worker` processes. The clock runs from `batch submit` (which stores
each case through the intake checks, submits it and, under Celery, publishes it) until every
case has an outcome. Printed per executor: cases/hour, the median job time and the
per-case cost in worker-seconds (2 workers x wall time / cases), and the ratio Celery/embedded.

Jobs run a tiny test model registered with a test signing key (tests/support), as the soak
bench does: this bench measures the executor (intake, queueing, claims, publication,
accounting), not inference. The per-case cost of a clinical-size synthesis is measured by
bench/inference_speed.py; docs/batch-synthesis.md combines the two for a 1 M-case estimate.

    .venv/bin/python bench/batch_throughput.py [--cases 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = REPO / "var" / "cache" / "batch-cases"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def cohort(count: int) -> Path:
    """N small phantom NCCT series, one folder each (seeds 1000...), and their manifest."""
    from digital_contrast.batch_manifest import cases_from_folder_tree, write_manifest
    from digital_contrast.jobs.batch import manifest_header
    from digital_contrast.phantom.case import generate_case
    from digital_contrast.phantom.export import Phase, write_phase_dicom

    root = CACHE / f"n{count}"
    for seed in range(1000, 1000 + count):
        folder = root / "cases" / f"case{seed}"
        if not (folder / ".complete").exists():
            write_phase_dicom(generate_case(seed, "small"), Phase.NCCT, folder)
            (folder / ".complete").touch()
    manifest = root / "cases" / "manifest.jsonl"
    if not manifest.exists():
        write_manifest(manifest, manifest_header(f"bench {count} small phantom cases",
                                                 "aaa-cta", "folder"),
                       cases_from_folder_tree(root / "cases"))
    return manifest


def site(root: Path, database_url: str, executor: str) -> dict[str, str]:
    """A site with a registered tiny model; the environment of its processes."""
    from digital_contrast.model.registry import ModelRegistry
    from tests.support.service import make_settings
    from tests.support.signing import site_key_environment

    os.environ.update(site_key_environment())
    registry = root / "registry.db"
    ModelRegistry(f"sqlite:///{registry}").names()
    settings = make_settings(root / "site", registry, database_url=database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_")}
    return env | site_key_environment() | {
        "DC_DATA_DIR": str(settings.data_dir), "DC_MLFLOW_URI": settings.mlflow_uri,
        "DC_DATABASE_URL": database_url, "DC_RELEASES_DIR": str(settings.releases_dir),
        "DC_EXECUTOR": executor, "DC_BROKER_URL": BROKER, "DC_LOG_LEVEL": "WARNING",
        "DC_INFERENCE_THREADS": "1"}


def run(executor: str, manifest: Path, workers: int, root: Path) -> dict:
    from tests.support.databases import throwaway_postgres_database

    with throwaway_postgres_database() as url:
        env = site(root / executor, url, executor)
        logs = root / executor
        procs = [subprocess.Popen([sys.executable, "-m", "digital_contrast", "worker"], env=env,
                                  cwd=REPO, stdout=(logs / f"worker{i}.log").open("wb"),
                                  stderr=subprocess.STDOUT) for i in range(workers)]
        try:
            time.sleep(3)  # the workers' start is not counted; they wait for work
            started = time.monotonic()
            submitted = subprocess.run(
                [sys.executable, "-m", "digital_contrast", "batch", "submit", str(manifest),
                 "--out", str(logs / "report"), "--poll-s", "0.5"],
                env=env, cwd=REPO, capture_output=True, text=True)
            wall = time.monotonic() - started
            if submitted.returncode != 0:
                raise SystemExit(f"batch submit failed: {submitted.stderr[-2000:]}")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
        summary = json.loads((logs / "report" / "summary.json").read_text())
        job_s = _job_seconds(url)
        if executor == "celery":
            _delete_queue(env)
    return {"executor": executor, "wall_s": wall, "summary": summary, "job_s": job_s}


def _job_seconds(url: str) -> list[float]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT EXTRACT(EPOCH FROM finished_at - started_at) FROM jobs "
            "WHERE finished_at IS NOT NULL")).scalars().all()
    engine.dispose()
    return [float(r) for r in rows]


def _delete_queue(env: dict[str, str]) -> None:
    from kombu import Connection

    from digital_contrast.config import Settings
    from digital_contrast.jobs.celery_executor import queue_name

    settings = Settings(data_dir=Path(env["DC_DATA_DIR"]), database_url=env["DC_DATABASE_URL"])
    with Connection(BROKER) as connection:
        connection.default_channel.queue_delete(queue_name(settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    manifest = cohort(args.cases)
    print(f"{args.cases} small phantom cases, {args.workers} worker processes per executor, "
          f"PostgreSQL, tiny test model, 1 inference thread per worker; cpu count "
          f"{os.cpu_count()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="dc-batch-bench-") as tmp:
        for executor in ("embedded", "celery"):
            result = run(executor, manifest, args.workers, Path(tmp))
            results.append(result)
            s = result["summary"]
            print(f"{executor:9s} {result['wall_s']:7.1f} s  "
                  f"{args.cases / result['wall_s'] * 3600:8.0f} cases/h  "
                  f"median job {statistics.median(result['job_s']):.2f} s  "
                  f"per case {args.workers * result['wall_s'] / args.cases:.2f} worker-s  "
                  f"succeeded {s['succeeded']} refused {s['refused']} failed {s['failed']}  "
                  f"energy {s['energy_kwh']:.5f} kWh over {s['jobs_measured']} jobs")
    embedded, celery = results
    print(f"ratio celery/embedded cases/h: {embedded['wall_s'] / celery['wall_s']:.2f}")


if __name__ == "__main__":
    main()
