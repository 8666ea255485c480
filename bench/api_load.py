"""Benchmark: the service under load on loopback. N concurrent clients each store a 512x512
phantom NCCT series with STOW-RS, then each submits a job; while the jobs run, a reader polls
the jobs and QIDO. The same STOW ingest (the same bytes, the same client code) is also sent to
Orthanc with its DICOMweb plugin, started on loopback by this script, in the same run. Then N
clients each send another series by DIMSE C-STORE (pynetdicom as the SCU, one association
per client, Explicit VR Little Endian, files sent as they are) to our DIMSE listener and to
Orthanc's own DICOM server.

    .venv/bin/python bench/api_load.py [--clients 4] [--slices 100] [--repeats 1]
        [--processes 1] [--profile FILE] [--skip-orthanc] [--skip-jobs] [--job-timeout 1800]

`--processes N` runs `serve --processes N` (N HTTP processes, the background work in their
parent). `--profile FILE` samples our service (every process) with py-spy while it ingests by
STOW-RS, writes the collapsed stacks to FILE and prints the functions holding most samples.
Orthanc's configuration is printed as it is used.

Reports STOW uploads/s (series per second), ingest MB/s (DICOM part bytes, MB = 10^6 bytes),
STOW request latency, C-STORE ingest MB/s and instances/s, p50/p95 latency of reads while jobs
run, jobs/hour, and the ratios of our ingest to Orthanc's (above 1: we are faster; target: at
least 1). Both servers fsync what they
store (Orthanc's default SyncStorageArea). Jobs run the committed reference model when
releases/ has one (registered through the validation gate); without one no job is run, since
only a validated production model may run jobs, and the output says so.
The phantom seed is chosen so that 100 slices pass every aaa-cta conformity check; other
--slices may be rejected (CONF_COVERAGE below about 80), which the per-job lines show.
Orthanc comes from the Debian packages `orthanc` and `orthanc-dicomweb`, installed with apt-get
when missing and running as root. The machine is shared: read the ratio more than the seconds.
"""

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
SEED = 3  # clinical, 1.25 mm slices: 100 slices (125 mm) pass every aaa-cta conformity check
USE_CASE = "aaa-cta"
SCU_AE_TITLE = "BENCH_SCU"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ORTHANC_BIN = Path("/usr/sbin/Orthanc")
ORTHANC_PACKAGES = ("orthanc", "orthanc-dicomweb")
PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
DICOM_JSON = "application/dicom+json"
TERMINAL = {"succeeded", "rejected", "failed"}
MB = 1e6
SUBMIT_ATTEMPTS = 3


class BenchError(Exception):
    """A normal failure: printed as one message, without a traceback."""


# --- input --------------------------------------------------------------------------------

def make_template(folder: Path, slices: int) -> list:
    """The phantom NCCT series, parsed once; its UIDs are rewritten for every upload."""
    import pydicom

    from digital_contrast.phantom.case import generate_case
    from digital_contrast.phantom.export import Phase, write_phase_dicom

    case = generate_case(SEED, "clinical", n_slices=slices)
    write_phase_dicom(case, Phase.NCCT, folder)
    return [pydicom.dcmread(path) for path in sorted(folder.iterdir())]


@dataclass
class Upload:
    """One client's series as one STOW-RS request body, built before any timing."""
    study_uid: str
    series_uid: str
    body: bytes
    content_type: str
    part_bytes: int
    instances: int
    parts: list[bytes] = field(repr=False, default_factory=list)  # the files, for C-STORE


def fresh_upload(template: list) -> Upload:
    """The template with new Study, Series, Frame of Reference and SOP Instance UIDs, so that
    no store can deduplicate it, framed as multipart/related; type="application/dicom"."""
    from pydicom.uid import generate_uid

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    boundary = uuid.uuid4().hex
    chunks, parts, part_bytes = [], [], 0
    for ds in template:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        if "FrameOfReferenceUID" in ds:
            ds.FrameOfReferenceUID = frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        part = buffer.getvalue()
        part_bytes += len(part)
        parts.append(part)
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return Upload(study, series, b"".join(chunks),
                  f'multipart/related; type="application/dicom"; boundary={boundary}',
                  part_bytes, len(template), parts)


# --- processes ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(url: str, process: subprocess.Popen, log: Path, what: str,
               timeout_s: float = 180.0, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with status {process.returncode} while starting; "
                             f"its log ({log}) ends:\n{_tail(log)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, headers=headers, timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    raise BenchError(f"{what} did not answer {url} within {timeout_s:.0f} s; its log ends:\n"
                     f"{_tail(log)}")


@contextlib.contextmanager
def started(command: list[str], log: Path, **kwargs) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def service_env(data_dir: Path, processes: int = 1) -> dict[str, str]:
    """The caller's environment with the service's own data folder, database and registry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_") or k in {
        "DC_RELEASES_DIR", "DC_SITE", "DC_INFERENCE_THREADS"}}
    env.update(DC_DATA_DIR=str(data_dir), DC_WORKERS="1", DC_AUTO_RUN_USE_CASES="[]",
               DC_PURGE_INTERVAL_S="0", DC_SERVICE_PROCESSES=str(processes))
    return env


def job_model(data_dir: Path, env: dict[str, str]) -> str | None:
    """The model jobs will run: the committed reference model when releases/ has one (the
    service registers and promotes it on first use, through the validation gate), else None:
    jobs are then not run, since only a validated production model may run them."""
    from digital_contrast.config import Settings
    from digital_contrast.model.reference import reference_release
    from digital_contrast.usecases import load_use_case

    case = load_use_case(USE_CASE)
    releases = Path(env["DC_RELEASES_DIR"]) if "DC_RELEASES_DIR" in env else \
        Settings(data_dir=data_dir).releases_dir
    release = reference_release(case, releases)
    return None if release is None else f"reference model {case.model_name} {release.name} " \
        f"({release})"


@dataclass
class Server:
    name: str
    stow_url: str
    headers: dict[str, str] = field(default_factory=dict)
    base: str = ""
    log: Path | None = None
    dimse: tuple[str, int] | None = None  # (called AE title, port) of its DICOM listener
    pid: int | None = None  # of its (parent) process: profiler, CPU time

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the server and its child processes."""
        import psutil

        if self.pid is None:
            return float("nan")
        parent = psutil.Process(self.pid)
        total = 0.0
        for process in [parent, *parent.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def log_tail(self, status: int) -> str:
        """The end of the server's log, for a server error (5xx) only."""
        return f"; its log ({self.log}) ends:\n{_tail(self.log, 25)}" \
            if status >= 500 and self.log else ""


@contextlib.contextmanager
def our_service(root: Path, jobs: bool, processes: int = 1
                ) -> Iterator[tuple[Server, str | None]]:
    """The service, and the model its jobs run (None: no jobs, asked for or no model)."""
    data_dir = root / "dc-data"
    data_dir.mkdir(parents=True)
    env = service_env(data_dir, processes)
    model = job_model(data_dir, env) if jobs else None
    created = subprocess.run([sys.executable, "-m", "digital_contrast", "keys", "create",
                              "--role", "clinician", "--name", "bench"], env=env, cwd=REPO,
                             capture_output=True, text=True)
    if created.returncode != 0:
        raise BenchError(f"`digital-contrast keys create` failed: "
                         f"{(created.stderr or created.stdout).strip()[-500:]}")
    key = created.stdout.strip().splitlines()[-1].strip()
    sender = subprocess.run([sys.executable, "-m", "digital_contrast", "senders", "add",
                             SCU_AE_TITLE, "--host", "127.0.0.1"], env=env, cwd=REPO,
                            capture_output=True, text=True)
    if sender.returncode != 0:
        raise BenchError(f"`digital-contrast senders add` failed: "
                         f"{(sender.stderr or sender.stdout).strip()[-500:]}")
    port, dimse_port = free_port(), free_port()
    env |= {"DC_DIMSE_PORT": str(dimse_port), "DC_DIMSE_AE_TITLE": "DIGCONTRAST"}
    log = root / "service.log"
    base = f"http://127.0.0.1:{port}"
    with started([sys.executable, "-m", "digital_contrast", "serve", "--host", "127.0.0.1",
                  "--port", str(port)], log, env=env, cwd=REPO) as process:
        wait_ready(f"{base}/healthz", process, log, "the service")
        yield Server("ours", f"{base}/dicomweb/studies", {"X-API-Key": key}, base, log,
                     ("DIGCONTRAST", dimse_port), process.pid), model


def find_plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        found = sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def ensure_orthanc() -> Path | None:
    """The DICOMweb plugin's path, installing the Debian packages when missing and root;
    None (with the reason printed) when Orthanc cannot be had."""
    plugin = find_plugin()
    if ORTHANC_BIN.exists() and plugin is not None:
        return plugin
    how = f"apt-get install -y {' '.join(ORTHANC_PACKAGES)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"Orthanc part skipped: {ORTHANC_BIN} or its DICOMweb plugin is missing; install "
              f"them with `sudo {how}` (or pass --skip-orthanc)")
        return None
    print(f"installing Orthanc: apt-get update && {how}", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", *ORTHANC_PACKAGES]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"Orthanc part skipped: `{' '.join(command)}` failed: "
                  f"{done.stderr.strip()[-300:]}")
            return None
    plugin = find_plugin()
    if not ORTHANC_BIN.exists() or plugin is None:
        print(f"Orthanc part skipped: installed, but {ORTHANC_BIN} or libOrthancDicomWeb.so "
              f"was not found under {', '.join(map(str, PLUGIN_DIRS))}")
        return None
    return plugin


@contextlib.contextmanager
def orthanc(root: Path, plugin: Path) -> Iterator[Server]:
    folder = root / "orthanc"
    (folder / "storage").mkdir(parents=True)
    port, dimse_port = free_port(), free_port()
    config = {"Name": "bench", "HttpPort": port, "DicomPort": dimse_port, "DicomAet": "ORTHANC",
              "DicomServerEnabled": True, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "StorageDirectory": str(folder / "storage"),
              "IndexDirectory": str(folder / "storage"), "Plugins": [str(plugin)],
              "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    print(f"Orthanc {_orthanc_version()} configuration (defaults otherwise, e.g. "
          f"SyncStorageArea true, ConcurrentJobs 2, HttpThreadsCount 50): "
          f"{json.dumps({k: v for k, v in config.items() if 'Directory' not in k})}",
          flush=True)
    log = folder / "orthanc.log"
    base = f"http://127.0.0.1:{port}"
    with started([str(ORTHANC_BIN), str(folder / "orthanc.json")], log) as process:
        wait_ready(f"{base}/system", process, log, "Orthanc", timeout_s=60)
        if requests.get(f"{base}/dicom-web/studies", timeout=10).status_code != 200:
            raise BenchError(f"Orthanc answers, but not its DICOMweb plugin ({plugin}); "
                             f"its log ends:\n{_tail(log)}")
        yield Server("Orthanc", f"{base}/dicom-web/studies", base=base, log=log,
                     dimse=("ORTHANC", dimse_port), pid=process.pid)


def _orthanc_version() -> str:
    done = subprocess.run([str(ORTHANC_BIN), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0].strip() if done.returncode == 0 else "?"


@contextlib.contextmanager
def profiled(server: Server, out: Path | None) -> Iterator[None]:
    """py-spy sampling our service and its HTTP processes for the duration of the block."""
    if out is None or server.pid is None:
        yield
        return
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                            str(server.pid),
                            "--subprocesses", "--rate", "200", "--format", "raw", "--nonblocking",
                            "--output", str(out)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    print_profile(out)


def print_profile(path: Path, top: int = 15) -> None:
    """The functions with most samples on top of the stack (self) and anywhere in it."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f.split(" (")[0] + " " + f.split("(")[-1].split(":")[0].rsplit("/", 1)[-1]
                  for f in stack.split(";")[1:]]  # the first frame is the process
        total += int(count)
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    print(f"profile: {total} samples ({path})")
    for title, table in (("self", own), ("inclusive", inclusive)):
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {title:9s} {100 * count / max(total, 1):5.1f}%  {frame}")


# --- phases -------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; nan when there is nothing to rank."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q / 100 * len(ranked)) - 1))]


def _stored_count(body: dict) -> tuple[int, int]:
    def count(tag: str) -> int:
        return len((body.get(tag) or {}).get("Value") or [])

    return count("00081199"), count("00081198")  # ReferencedSOPSequence, FailedSOPSequence


def stow(server: Server, uploads: list[Upload]) -> dict:
    """Every client stores its series at once (one request each, own connection)."""
    sessions = [requests.Session() for _ in uploads]
    for session in sessions:  # open the keep-alive connection outside the timing
        session.get(server.stow_url, headers=server.headers | {"Accept": DICOM_JSON},
                    params={"limit": 1}, timeout=60)
    barrier = threading.Barrier(len(uploads))
    spans: list[tuple[float, float] | None] = [None] * len(uploads)
    errors: list[str] = []
    cpu_before = server.cpu_s()

    def client(i: int) -> None:
        upload = uploads[i]
        barrier.wait()
        start = time.perf_counter()
        try:
            response = sessions[i].post(
                server.stow_url, data=upload.body, timeout=900,
                headers=server.headers | {"Content-Type": upload.content_type,
                                          "Accept": DICOM_JSON})
        except requests.RequestException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        spans[i] = (start, time.perf_counter())
        stored, failed = _stored_count(response.json()) if response.headers.get(
            "content-type", "").startswith(("application/dicom+json", "application/json")) \
            else (0, 0)
        if response.status_code != 200 or stored != upload.instances:
            errors.append(f"HTTP {response.status_code}, {stored} of {upload.instances} stored,"
                          f" {failed} failed: {response.text[:300]}"
                          f"{server.log_tail(response.status_code)}")

    _run_concurrently(client, len(uploads))
    cpu = server.cpu_s() - cpu_before
    for session in sessions:
        session.close()
    if errors:
        raise BenchError(f"STOW-RS to {server.name} failed: {errors[0]}")
    done = [s for s in spans if s is not None]
    wall = max(end for _, end in done) - min(start for start, _ in done)
    megabytes = sum(u.part_bytes for u in uploads) / MB
    return {"uploads_per_s": len(uploads) / wall, "mb_per_s": megabytes / wall,
            "cpu_ms_per_mb": cpu * 1000 / megabytes,
            "latencies": [end - start for start, end in done], "wall_s": wall}


def c_store(server: Server, uploads: list[Upload], folder: Path) -> dict:
    """Every client sends its series by C-STORE at once, one association each; every
    instance must be answered 0x0000. The files are written before the timing."""
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    assert server.dimse is not None
    called, port = server.dimse
    paths: list[list[Path]] = []
    for i, upload in enumerate(uploads):
        (folder / f"{server.name}-{i}").mkdir(parents=True)
        paths.append([])
        for n, part in enumerate(upload.parts):
            path = folder / f"{server.name}-{i}" / f"{n:05d}.dcm"
            path.write_bytes(part)
            paths[-1].append(path)
    barrier = threading.Barrier(len(uploads))
    spans: list[tuple[float, float] | None] = [None] * len(uploads)
    errors: list[str] = []
    cpu_before = server.cpu_s()

    def client(i: int) -> None:
        ae = AE(ae_title=SCU_AE_TITLE)
        ae.add_requested_context(CT_IMAGE_STORAGE, ExplicitVRLittleEndian)
        barrier.wait()
        start = time.perf_counter()
        assoc = ae.associate("127.0.0.1", port, ae_title=called)
        if not assoc.is_established:
            errors.append(f"association to {server.name} not established")
            return
        try:
            for path in paths[i]:
                status = assoc.send_c_store(path)
                code = getattr(status, "Status", None)
                if code != 0x0000:
                    errors.append(f"C-STORE status {code!r}{server.log_tail(500)}")
                    return
        finally:
            assoc.release()
        spans[i] = (start, time.perf_counter())

    _run_concurrently(client, len(uploads))
    cpu = server.cpu_s() - cpu_before
    if errors:
        raise BenchError(f"C-STORE to {server.name} failed: {errors[0]}")
    done = [s for s in spans if s is not None]
    wall = max(end for _, end in done) - min(start for start, _ in done)
    megabytes = sum(u.part_bytes for u in uploads) / MB
    return {"mb_per_s": megabytes / wall, "cpu_ms_per_mb": cpu * 1000 / megabytes,
            "instances_per_s": sum(u.instances for u in uploads) / wall, "wall_s": wall}


def _run_concurrently(target, count: int) -> None:
    """target(0..count-1) on one thread each, all started before any is awaited."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _problem(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('code', '?')}: {body.get('detail', '')}"
    except ValueError:
        return response.text[:200]


def run_jobs(server: Server, uploads: list[Upload], timeout_s: float,
             read_interval_s: float) -> dict:
    """Each client submits a job for its series; one reader polls the jobs and QIDO until all
    are terminal. jobs/hour uses the service's own created/finished times."""
    ids: list[str | None] = [None] * len(uploads)
    errors: list[str] = []
    retried: list[str] = []  # server errors: counted, shown, and retried (submission is idempotent)

    def submit(i: int) -> None:
        for attempt in range(SUBMIT_ATTEMPTS):
            try:
                response = requests.post(f"{server.base}/v1/jobs", headers=server.headers,
                                         timeout=60, json={"series_uid": uploads[i].series_uid,
                                                           "use_case": USE_CASE})
            except requests.RequestException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            if response.status_code == 202:
                ids[i] = response.json()["id"]
                return
            if response.status_code < 500 or attempt == SUBMIT_ATTEMPTS - 1:
                errors.append(f"HTTP {response.status_code} {_problem(response)}"
                              f"{server.log_tail(response.status_code)}")
                return
            retried.append(f"HTTP {response.status_code} {_problem(response)}")
            time.sleep(0.5)

    _run_concurrently(submit, len(uploads))
    if errors:
        raise BenchError(f"job submission failed: {errors[0]}")
    jobs = [i for i in ids if i is not None]
    views: dict[str, dict] = {}
    reads: dict[str, list[float]] = {"job": [], "qido": []}
    deadline = time.monotonic() + timeout_s
    with requests.Session() as session:
        session.headers.update(server.headers)
        turn = 0
        while time.monotonic() < deadline:
            pending = [j for j in jobs if views.get(j, {}).get("state") not in TERMINAL]
            if not pending:
                break
            job = pending[turn % len(pending)]
            turn += 1
            start = time.perf_counter()
            response = session.get(f"{server.base}/v1/jobs/{job}", timeout=60)
            reads["job"].append(time.perf_counter() - start)
            if response.status_code != 200:
                raise BenchError(f"GET /v1/jobs/{job}: HTTP {response.status_code} "
                                 f"{_problem(response)}{server.log_tail(response.status_code)}")
            views[job] = response.json()
            start = time.perf_counter()
            response = session.get(f"{server.base}/dicomweb/studies",
                                   headers={"Accept": DICOM_JSON}, timeout=60)
            reads["qido"].append(time.perf_counter() - start)
            if response.status_code != 200:
                raise BenchError(f"QIDO GET /dicomweb/studies: HTTP {response.status_code} "
                                 f"{_problem(response)}{server.log_tail(response.status_code)}")
            time.sleep(read_interval_s)
    done = [views[j] for j in jobs if views.get(j, {}).get("state") in TERMINAL]
    wall_h = float("nan")
    if done:
        first = min(datetime.fromisoformat(v["created_at"]) for v in views.values())
        last = max(datetime.fromisoformat(v["finished_at"]) for v in done)
        wall_h = (last - first).total_seconds() / 3600
    return {"jobs_per_h": len(done) / wall_h if done and wall_h > 0 else float("nan"),
            "reads": reads, "views": [views.get(j, {"id": j, "state": "?"}) for j in jobs],
            "timed_out": len(done) < len(jobs), "submit_errors": retried}


def _job_line(view: dict) -> str:
    error = view.get("error") or {}
    line = f"  job {view.get('id', '?')[:12]}: {view.get('state')}"
    if error:
        line += f" {error.get('code')} ({(error.get('detail') or '')[:80]})"
    if view.get("started_at") and view.get("finished_at"):
        ran = (datetime.fromisoformat(view["finished_at"])
               - datetime.fromisoformat(view["started_at"])).total_seconds()
        line += f", ran {ran:.1f} s"
    return line


# --- report -------------------------------------------------------------------------------

def _fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"  # nan -> "-"


def report(results: dict, dimse: dict, jobs: list[dict]) -> None:
    ours, peer = results.get("ours", []), results.get("Orthanc", [])
    ours_dimse, peer_dimse = dimse.get("ours", []), dimse.get("Orthanc", [])

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs) if runs else float("nan")

    def lat(runs: list[dict], q: float) -> float:
        return percentile([x for r in runs for x in r["latencies"]], q)

    rows = [("STOW uploads/s (series/s)", med(ours, "uploads_per_s"),
             med(peer, "uploads_per_s"), 3),
            ("STOW ingest MB/s", med(ours, "mb_per_s"), med(peer, "mb_per_s"), 1),
            ("STOW request latency p50 s", lat(ours, 50), lat(peer, 50), 2),
            ("STOW request latency p95 s", lat(ours, 95), lat(peer, 95), 2),
            ("STOW server CPU ms per MB", med(ours, "cpu_ms_per_mb"),
             med(peer, "cpu_ms_per_mb"), 2),
            ("C-STORE ingest MB/s", med(ours_dimse, "mb_per_s"), med(peer_dimse, "mb_per_s"), 1),
            ("C-STORE instances/s", med(ours_dimse, "instances_per_s"),
             med(peer_dimse, "instances_per_s"), 1),
            ("C-STORE server CPU ms per MB", med(ours_dimse, "cpu_ms_per_mb"),
             med(peer_dimse, "cpu_ms_per_mb"), 2)]
    print(f"{'figure':<34}{'ours':>10}{'Orthanc':>10}{'ours/Orthanc':>14}"
          "  (rates: above 1 ours faster; latencies and CPU: below 1)")
    for name, a, b, digits in rows:
        ratio = a / b if b == b and b else float("nan")
        print(f"{name:<34}{_fmt(a, digits):>10}{_fmt(b, digits):>10}{_fmt(ratio):>14}")
    if jobs:
        reads = {k: [x for j in jobs for x in j["reads"][k]] for k in ("job", "qido")}
        for key, name in (("job", "GET /v1/jobs/{id}"), ("qido", "QIDO GET /dicomweb/studies")):
            for q in (50, 95):
                print(f"{f'{name} p{q} ms':<34}{_fmt(percentile(reads[key], q) * 1000, 1):>10}")
        print(f"{'reads while jobs ran (count)':<34}{len(reads['job']) + len(reads['qido']):>10}")
        print(f"{'jobs/hour':<34}{_fmt(med(jobs, 'jobs_per_h'), 1):>10}")
    for what, a, b in (("STOW", ours, peer), ("C-STORE", ours_dimse, peer_dimse)):
        if a and b:
            ratio = med(a, "mb_per_s") / med(b, "mb_per_s")
            print(f"target, {what} ingest at least Orthanc's: "
                  f"{'met' if ratio >= 1 else 'NOT met'} (ingest MB/s ours/Orthanc {ratio:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1,
                        help="HTTP processes of our service (serve --processes)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="sample our service with py-spy during STOW; collapsed stacks here")
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--job-timeout", type=float, default=1800.0,
                        help="seconds to wait for all jobs of a repeat to finish")
    parser.add_argument("--read-interval", type=float, default=0.1,
                        help="pause of the reader between two polls, seconds")
    args = parser.parse_args()
    if args.clients < 1 or args.slices < 1 or args.repeats < 1:
        parser.error("--clients, --slices and --repeats must be at least 1")

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        plugin = None if args.skip_orthanc else ensure_orthanc()
        print(f"generating the phantom series (512x512x{args.slices}) ...", flush=True)
        template = make_template(root / "template", args.slices)
        server, model = stack.enter_context(our_service(root, not args.skip_jobs,
                                                        args.processes))
        run_job_load = model is not None
        if not args.skip_jobs and not run_job_load:
            print("jobs not run: no validated reference model under releases/ (the service "
                  "would answer 409 USECASE_NO_MODEL); STOW ingest is still measured",
                  flush=True)
        servers = [server]
        if plugin is not None:
            servers.append(stack.enter_context(orthanc(root, plugin)))
        for target in servers:  # first-request costs (imports, caches) outside the timing
            stow(target, [fresh_upload(template[:1])])
        sample = fresh_upload(template)
        print(f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), load "
              f"{os.getloadavg()[0]:.1f}; series {template[0].Rows}x{template[0].Columns}x"
              f"{len(template)} ({sample.part_bytes / MB:.1f} MB); {args.clients} clients; "
              f"our service: {args.processes} HTTP process(es); "
              f"{args.repeats} repeat(s){', medians' if args.repeats > 1 else ''}; "
              f"model: {model or 'none, no jobs'}", flush=True)
        del sample
        results: dict[str, list[dict]] = {s.name: [] for s in servers}
        dimse: dict[str, list[dict]] = {s.name: [] for s in servers}
        jobs: list[dict] = []
        for repeat in range(args.repeats):
            uploads = [fresh_upload(template) for _ in range(args.clients)]
            order = servers if repeat % 2 == 0 else servers[::-1]  # drift hits both alike
            for target in order:
                with profiled(server, args.profile if target is server and repeat == 0
                              else None):
                    results[target.name].append(stow(target, uploads))
                print(f"  repeat {repeat + 1}: {target.name} stored {args.clients} series in "
                      f"{results[target.name][-1]['wall_s']:.2f} s", flush=True)
            dimse_uploads = [fresh_upload(template) for _ in range(args.clients)]
            for target in order:  # new UIDs: nothing already stored by STOW-RS
                dimse[target.name].append(c_store(target, dimse_uploads,
                                                  root / f"c-store-{repeat}"))
                print(f"  repeat {repeat + 1}: {target.name} received {args.clients} series by "
                      f"C-STORE in {dimse[target.name][-1]['wall_s']:.2f} s", flush=True)
            if run_job_load:
                run = run_jobs(server, uploads, args.job_timeout, args.read_interval)
                jobs.append(run)
                for view in run["views"]:
                    print(_job_line(view))
                if run["submit_errors"]:
                    print(f"  {len(run['submit_errors'])} job submission(s) answered a server "
                          f"error and were retried; first: {run['submit_errors'][0]}")
                if run["timed_out"]:
                    print(f"  not all jobs finished within {args.job_timeout:.0f} s "
                          f"(--job-timeout); jobs/hour counts the finished ones")
        report(results, dimse, jobs)
    print(f"total run time {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        print(f"api_load: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("api_load: interrupted", file=sys.stderr)
        sys.exit(130)
