"""Soak: mixed load on the real service for a long time, with the service and a worker killed
with SIGKILL in the middle; what survives, what is lost, what grows.

Processes: `digital-contrast serve` (no job threads) and one `digital-contrast worker`, on one
SQLite data folder. Load: client threads that, in turn, upload a small phantom series by
STOW-RS (new UIDs each time), query it back (QIDO-RS), retrieve an instance (WADO-RS), submit a
job on it, poll jobs, and read the sustainability dashboard. At a third of the run the service
is killed (SIGKILL) and started again; at half the run the worker. At the end: requests and
answers by class (connection refusals while the service was down are counted apart), jobs
finished exactly once (one terminal event each, one output series per succeeded job), files no
record claims, and the service's resident memory from warm-up to the kill and after restart.

Jobs run a tiny test model registered with a test signing key (tests/support): this bench
measures robustness, not image quality, and no validated reference model exists yet.

    .venv/bin/python bench/soak.py [--minutes 30] [--clients 3]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import BenchError, free_port, wait_ready  # noqa: E402

TERMINAL = {"succeeded", "failed", "rejected"}  # JobState.terminal


def _prepare(root: Path) -> tuple[dict[str, str], list]:
    """Settings with a registered tiny model (test key trusted), and the series template."""
    import pydicom

    from digital_contrast.phantom.case import generate_case
    from digital_contrast.phantom.export import Phase, write_phase_dicom
    from tests.support.service import make_settings
    from tests.support.signing import site_key_environment

    os.environ.update(site_key_environment())
    registry = root / "registry.db"
    from digital_contrast.model.registry import ModelRegistry

    ModelRegistry(f"sqlite:///{registry}").names()
    settings = make_settings(root / "site", registry)
    case = generate_case(7, "small")
    folder = root / "series"
    write_phase_dicom(case, Phase.NCCT, folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_")}
    env |= site_key_environment() | {
        "DC_DATA_DIR": str(settings.data_dir), "DC_MLFLOW_URI": settings.mlflow_uri,
        "DC_RELEASES_DIR": str(settings.releases_dir), "DC_WORKERS": "0",
        "DC_PURGE_INTERVAL_S": "0", "DC_LOG_LEVEL": "WARNING",
        "DC_RATE_LIMIT_ADDRESS": "100000/minute", "DC_RATE_LIMIT_KEY": "100000/minute"}
    return env, [pydicom.dcmread(p) for p in sorted(folder.iterdir())]


def _stow_body(template: list) -> tuple[bytes, str, str]:
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    chunks = []
    for ds in template:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        chunks += [b"--soak\r\nContent-Type: application/dicom\r\n\r\n", buffer.getvalue(),
                   b"\r\n"]
    return b"".join(chunks) + b"--soak--\r\n", study, series


class Processes:
    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.env, self.root = env, root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.service: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def _run(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "digital_contrast", *args],
                                env=self.env, cwd=REPO, stdout=log, stderr=log)

    def start_service(self) -> None:
        self.service = self._run("service", "serve", "--port", str(self.port))
        wait_ready(f"{self.base}/healthz", self.service, self.root / "service.log",
                   "the service", timeout_s=120)

    def start_worker(self) -> None:
        self.worker = self._run("worker", "worker")

    def kill(self, process: subprocess.Popen | None) -> None:
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for process in (self.service, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    def __init__(self, base: str, keys: dict[str, str], template: list,
                 job_share: float) -> None:
        self.base, self.keys, self.template = base, keys, template
        self.job_share = job_share
        self.answers: Counter[str] = Counter()
        self.jobs: list[str] = []
        self.lock = threading.Lock()

    def _count(self, what: str, response: requests.Response | None) -> requests.Response | None:
        label = "refused connection" if response is None else \
            f"{response.status_code // 100}xx" if response.status_code < 400 else \
            f"{response.status_code} {self._code(response)}"
        with self.lock:
            self.answers[(what, label)] += 1
        return response

    @staticmethod
    def _code(response: requests.Response) -> str:
        try:
            return str(response.json().get("code", ""))
        except ValueError:
            return ""

    def call(self, what: str, method: str, path: str, role: str = "clinician",
             **kwargs) -> requests.Response | None:
        headers = {"X-API-Key": self.keys[role], **kwargs.pop("headers", {})}
        try:
            response = requests.request(method, f"{self.base}{path}", headers=headers,
                                        timeout=120, **kwargs)
        except requests.ConnectionError:
            response = None
        return self._count(what, response)

    def one_round(self) -> None:
        with self.lock:  # the template's data sets are shared: one client rewrites at a time
            body, study, series = _stow_body(self.template)
        stored = self.call("STOW-RS", "POST", "/dicomweb/studies", data=body, headers={
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=soak'})
        if stored is None or stored.status_code != 200:
            return
        found = self.call("QIDO-RS", "GET", f"/dicomweb/studies/{study}/series")
        if found is not None and found.status_code == 200:
            instances = self.call("QIDO-RS", "GET",
                                  f"/dicomweb/studies/{study}/series/{series}/instances")
            if instances is not None and instances.status_code == 200 and instances.json():
                sop = instances.json()[0]["00080018"]["Value"][0]
                self.call("WADO-RS", "GET",
                          f"/dicomweb/studies/{study}/series/{series}/instances/{sop}",
                          headers={"Accept": 'multipart/related; type="application/dicom"'})
        if random.random() < self.job_share:  # the worker keeps up: the queue stays short
            job = self.call("job submit", "POST", "/v1/jobs",
                            json={"series_uid": series, "use_case": "aaa-cta"})
            if job is not None and job.status_code == 202:
                with self.lock:
                    self.jobs.append(job.json()["id"])
        self.call("job list", "GET", "/v1/jobs")
        self.call("dashboard", "GET", "/v1/sustainability/summary", role="admin")

    def run_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.one_round()
            time.sleep(random.uniform(0.0, 0.5))


def _keys(env: dict[str, str]) -> dict[str, str]:
    keys = {}
    for role in ("clinician", "admin"):
        made = subprocess.run([sys.executable, "-m", "digital_contrast", "keys", "create",
                               "--role", role, "--name", f"soak-{role}"], env=env, cwd=REPO,
                              capture_output=True, text=True, check=True)
        keys[role] = made.stdout.strip().splitlines()[-1]
    return keys


def _job_outcomes(env: dict[str, str], job_ids: list[str]) -> dict[str, object]:
    """From the database: terminal events per job, output series per succeeded job."""
    from sqlalchemy import func, select

    from digital_contrast.config import Settings
    from digital_contrast.service import opened_state
    from digital_contrast.store import Job, JobEvent, Origin, Series
    from tests.support.orphans import leftovers

    settings = Settings(data_dir=Path(env["DC_DATA_DIR"]), mlflow_uri=env["DC_MLFLOW_URI"])
    with opened_state(settings) as state, state.sessions() as db:  # opening sweeps
        states = Counter(str(s.value) for s in db.scalars(
            select(Job.state).where(Job.id.in_(job_ids))))
        codes = Counter(db.scalars(select(Job.error_code).where(
            Job.id.in_(job_ids), Job.error_code.is_not(None))))
        terminal = Counter(db.scalars(
            select(func.count()).select_from(JobEvent).where(
                JobEvent.job_id.in_(job_ids), JobEvent.to_state.in_(TERMINAL))
            .group_by(JobEvent.job_id)))
        produced = db.scalar(select(func.count()).select_from(Series).where(
            Series.origin == Origin.PRODUCED))
        return {"states": dict(states), "codes": dict(codes),
                "terminal events per job": dict(terminal),
                "produced series": produced,
                "orphans": leftovers(settings.data_dir, state.sessions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--job-share", type=float, default=0.1,
                        help="share of uploaded series a job is submitted for")
    args = parser.parse_args()
    duration = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        root = Path(tmp)
        env, template = _prepare(root)
        keys = _keys(env)
        processes = Processes(env, root)
        processes.start_service()
        processes.start_worker()
        load = Load(processes.base, keys, template, args.job_share)
        stop = threading.Event()
        clients = [threading.Thread(target=load.run_until, args=(stop,), daemon=True)
                   for _ in range(args.clients)]
        started = time.monotonic()
        for client in clients:
            client.start()
        time.sleep(min(60, duration / 10))
        rss = {"first process, warm": rss_mib(processes.service.pid)}
        print(f"load: {args.clients} clients for {args.minutes:g} min; "
              f"{len(template)}-slice phantom series per round", flush=True)
        time.sleep(max(0.0, started + duration / 3 - time.monotonic()))
        rss["first process, before SIGKILL"] = rss_mib(processes.service.pid)
        processes.kill(processes.service)
        print(f"{time.monotonic() - started:.0f} s: service killed (SIGKILL)", flush=True)
        time.sleep(3)
        processes.start_service()
        rss["second process, started"] = rss_mib(processes.service.pid)
        time.sleep(max(0.0, started + duration / 2 - time.monotonic()))
        processes.kill(processes.worker)
        print(f"{time.monotonic() - started:.0f} s: worker killed (SIGKILL)", flush=True)
        time.sleep(3)
        processes.start_worker()
        time.sleep(max(0.0, started + duration - time.monotonic()))
        stop.set()
        for client in clients:
            client.join(timeout=180)
        rss["second process, end"] = rss_mib(processes.service.pid)
        deadline = time.monotonic() + 600  # the queue drains after the load stops
        while time.monotonic() < deadline:
            listed = requests.get(f"{processes.base}/v1/jobs?limit=1000", timeout=60,
                                  headers={"X-API-Key": keys["clinician"]}).json()
            if all(j["state"] in TERMINAL for j in listed):
                break
            time.sleep(5)
        processes.stop()
        outcome = _job_outcomes(env, load.jobs)
    print("\n| operation | answer | count |\n| --- | --- | --- |")
    for (what, label), count in sorted(load.answers.items()):
        print(f"| {what} | {label} | {count} |")
    print(f"\nrequests: {sum(load.answers.values())}; jobs submitted: {len(load.jobs)}; "
          f"job states: {outcome['states']}; refusal and failure codes: {outcome['codes']}")
    print(f"terminal events per job (count of jobs by number of terminal events): "
          f"{outcome['terminal events per job']} (exactly once: every job has 1)")
    succeeded = outcome["states"].get("succeeded", 0)
    print(f"output series produced: {outcome['produced series']} for {succeeded} succeeded "
          f"jobs ({outcome['produced series'] / max(succeeded, 1):g} per job: the synthetic "
          "series and its map series, none twice)")
    print(f"files no record claims after the final restart: {len(outcome['orphans'])} "
          f"{outcome['orphans'][:5]}")
    print("service RSS MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    failures = [k for k in load.answers if k[1].startswith("5")]
    if failures or outcome["orphans"] or set(outcome["terminal events per job"]) - {1}:
        sys.exit("soak: server errors, orphans or jobs not finished exactly once (above)")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"soak: {exc}")
