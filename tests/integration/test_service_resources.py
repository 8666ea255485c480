"""Planned resource allocation (DC-SDP §13 c): the in-service job workers (DC_WORKERS), the
inference threads (DC_INFERENCE_THREADS) and the fixed intake thread pools."""

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from digital_contrast.api.app import create_app
from digital_contrast.api.dicomweb.multipart import build_multipart_related
from digital_contrast.api.routers import dicomweb
from digital_contrast.config import get_settings
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.phantom.export import Phase
from digital_contrast.store import JobState, Role, StoredFile
from digital_contrast.store.api_keys import create_api_key
from digital_contrast.store.instance_store import InstanceStore
from digital_contrast.store.jobs import job_events
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle
from tests.support.service import Service, live_server, make_settings, running_service, upload

DEADLINE_S = 300.0  # a hang guard only: nothing here is judged by how long it takes
WORKER_PREFIX = "job-worker-"  # digital_contrast.jobs.worker.start_worker_threads
POOLS = {"stow-reader": 32}  # the bound SRS-PKG-006 states


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@contextmanager
def _env_settings(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Iterator[None]:
    """DC_ variables set as an operator would, read through get_settings(); restored after."""
    with monkeypatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()


# --- DC_WORKERS -----------------------------------------------------------------------------

@pytest.mark.req("SRS-PKG-004", "SRS-JOB-001")
@pytest.mark.parametrize("workers", [1, 3])
def test_the_service_runs_exactly_dc_workers_workers_and_they_finish_jobs(
        tmp_path: Path, empty_registry_db: Path, phantom_series, monkeypatch: pytest.MonkeyPatch,
        workers: int) -> None:
    assert _threads(WORKER_PREFIX) == []  # nothing left over from another test
    settings = make_settings(tmp_path, empty_registry_db)  # the data folder and its registry
    with _env_settings(monkeypatch, DC_DATA_DIR=str(settings.data_dir),
                       DC_RELEASES_DIR=str(settings.releases_dir), DC_WORKERS=str(workers)):
        app = create_app(background=True)  # the settings of the environment, as `serve` does
        with TestClient(app, raise_server_exceptions=False) as client:
            service = Service(app, client, app.state.service.settings)
            assert service.settings.workers == workers
            with service.state.sessions() as db:
                service.keys[Role.CLINICIAN] = create_api_key(db, service.settings.site, "test",
                                                              Role.CLINICIAN)[1]
                db.commit()
            running = _threads(WORKER_PREFIX)
            assert sorted(t.name for t in running) == \
                [f"{WORKER_PREFIX}{k}" for k in range(workers)]
            assert all(t.is_alive() and t.daemon for t in running)

            uid = upload(service, phantom_series[Phase.NCCT])
            submitted = client.post("/v1/jobs", json={"series_uid": uid, "use_case": "aaa-cta"},
                                    headers=service.headers())
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["id"]

            def finished() -> bool:
                job = client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
                return job["state"] in ("succeeded", "rejected", "failed")

            _wait_for(finished, "the in-service workers to finish the job")  # no run_jobs()
            job = client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
            assert job["state"] == "succeeded", job["error"]
            with service.state.sessions() as db:
                events = job_events(db, job_id)
            assert [e.to_state for e in events] == [JobState.QUEUED, JobState.RUNNING,
                                                    JobState.SUCCEEDED]
            # Claimed and finished by one of this process's in-service workers.
            owners = {e.detail["worker"] for e in events[1:]}
            assert len(owners) == 1
            (owner,) = owners
            assert owner.startswith("service") and f"-{os.getpid()}-" in owner
            assert int(owner.split("-")[0].removeprefix("service")) < workers
            assert len(_threads(WORKER_PREFIX)) == workers  # still all there, none added
        # The lifespan has ended: its workers were stopped and joined.
        assert _threads(WORKER_PREFIX) == []


# --- DC_INFERENCE_THREADS --------------------------------------------------------------------

@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path) -> LockedModel:
    folder = tmp_path_factory.mktemp("threads")
    shutil.copy(empty_registry_db, folder / "mlflow.db")
    registry = ModelRegistry(f"sqlite:///{folder / 'mlflow.db'}")
    bundle = tiny_bundle(folder / "bundle", load_use_case("aaa-cta"), seed=3)
    registered = registry.attach_validation(registry.register(bundle), record_for(bundle))
    registry.promote(registered.name, registered.version)
    return LockedModel.load("aaa-cta", registry=registry)


@pytest.mark.req("SRS-PKG-005", "SRS-INF-006")
@pytest.mark.parametrize("threads", [1, 3])
def test_inference_runs_on_dc_inference_threads(model: LockedModel, phantom_series,
                                                monkeypatch: pytest.MonkeyPatch,
                                                threads: int) -> None:
    """Two values, neither the process's own count: a setting that were ignored, or a fixed
    count, fails at least one of them."""
    ambient = torch.get_num_threads()
    if ambient == threads:  # then an ignored setting could not be told apart
        torch.set_num_threads(threads + 1)
    seen: list[int] = []
    # Read inside the network's own forward, on the thread that runs it.
    hook = model.network.register_forward_pre_hook(
        lambda module, args: seen.append(torch.get_num_threads()))
    volume = read_series(phantom_series[Phase.NCCT])
    before = torch.get_num_threads()
    try:
        with _env_settings(monkeypatch, DC_INFERENCE_THREADS=str(threads)):
            result = synthesize(volume, "aaa-cta", model)
    finally:
        hook.remove()
        after = torch.get_num_threads()
        torch.set_num_threads(ambient)
    assert seen and set(seen) == {threads}
    assert before != threads and after == before  # the process's own count is put back
    assert result.platform["threads"] == str(threads)  # and the record says what ran


# --- Intake pools ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("pools"), empty_registry_db)
    with running_service(settings) as running:
        yield running


class _Sampler:
    """Samples the live threads of each pool until stopped: the most alive at once and every
    distinct thread seen (a pool per request would show more threads than its bound)."""

    def __init__(self) -> None:
        self.most = dict.fromkeys(POOLS, 0)
        self.seen: dict[str, set[threading.Thread]] = {p: set() for p in POOLS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pool-sampler")

    def sample(self) -> None:
        alive = threading.enumerate()
        for prefix in POOLS:
            mine = [t for t in alive if t.name.startswith(prefix)]
            self.most[prefix] = max(self.most[prefix], len(mine))
            self.seen[prefix].update(mine)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.sample()

    def __enter__(self) -> "_Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@pytest.mark.req("SRS-PKG-006", "SRS-API-003")
def test_intake_pools_stay_within_their_bounds_under_more_requests_than_threads(
        service, phantom_series, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 STOW-RS requests at once, each held with its file write blocked (writes run in the
    request's reader thread): more requests than reader threads."""
    requests = 40
    assert requests > max(POOLS.values())
    files = sorted(phantom_series[Phase.NCCT].iterdir())[:requests]
    release = threading.Event()
    lock = threading.Lock()
    counts = {"bodies read": 0, "writes running": 0}

    def count(key: str) -> None:
        with lock:
            counts[key] += 1

    real_put = InstanceStore.put

    def held_put(self: InstanceStore, data: bytes, **kwargs: object) -> StoredFile:
        assert threading.current_thread().name.startswith("stow-reader")
        count("writes running")
        assert release.wait(DEADLINE_S)
        return real_put(self, data, **kwargs)

    class CountingParser(dicomweb.MultipartRelatedParser):
        def __init__(self, *args: object, **kwargs: object) -> None:
            count("bodies read")  # in the route, before its reader is handed to the pool
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(InstanceStore, "put", held_put)
    monkeypatch.setattr(dicomweb, "MultipartRelatedParser", CountingParser)

    def stow(base: str, path: Path) -> httpx.Response:
        chunks, content_type = build_multipart_related([path.read_bytes()])
        return httpx.post(f"{base}/dicomweb/studies", content=b"".join(chunks),
                          headers=service.headers() | {"Content-Type": content_type},
                          timeout=DEADLINE_S)

    with live_server(service.app) as base, _Sampler() as sampler, \
            ThreadPoolExecutor(max_workers=requests, thread_name_prefix="client") as clients:
        try:
            responses = [clients.submit(stow, base, f) for f in files]
            # Every request has started; the reader pool is full of held writes and the
            # other requests wait for a reader.
            _wait_for(lambda: counts["bodies read"] == requests, "every request to start")
            _wait_for(lambda: counts["writes running"] >= POOLS["stow-reader"],
                      "the pool to fill")
            sampler.sample()
            for prefix, bound in POOLS.items():
                assert len(_threads(prefix)) <= bound, prefix
            assert counts["writes running"] == POOLS["stow-reader"]
        finally:
            release.set()
        results = [r.result() for r in responses]
    # Every request waiting for a thread was served, none refused.
    assert [r.status_code for r in results] == [200] * requests, results[0].text
    assert counts["writes running"] == requests
    for prefix, bound in POOLS.items():
        assert 0 < sampler.most[prefix] <= bound, (prefix, sampler.most[prefix])
        assert len(sampler.seen[prefix]) <= bound, prefix  # the same threads served everyone


@pytest.mark.req("SRS-INTAKE-004")
def test_a_stow_body_is_not_read_ahead_of_its_reader(service, phantom_series,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """While the reader is held on the first file, the service stops reading the body: the
    client cannot send more than the batches queued plus what the sockets buffer (a few MB of
    a 64 MB body), and everything is served once the reader goes on."""
    release, writing = threading.Event(), threading.Event()
    real_put = InstanceStore.put

    def held_put(self: InstanceStore, data: bytes, **kwargs: object) -> StoredFile:
        writing.set()
        assert release.wait(DEADLINE_S)
        return real_put(self, data, **kwargs)

    monkeypatch.setattr(InstanceStore, "put", held_put)
    first = sorted(phantom_series[Phase.NCCT].iterdir())[0].read_bytes()
    filler = bytes(64 * 10**6)  # a second part, never reached while the reader is held
    chunks, content_type = build_multipart_related([first, filler])
    body = b"".join(chunks)
    sent = 0

    def stream() -> Iterator[bytes]:
        nonlocal sent
        for start in range(0, len(body), 1 << 16):
            sent = start
            yield body[start:start + (1 << 16)]
        sent = len(body)

    with live_server(service.app) as base, ThreadPoolExecutor(max_workers=1) as client:
        response = client.submit(httpx.post, f"{base}/dicomweb/studies", content=stream(),
                                 headers=service.headers() | {"Content-Type": content_type},
                                 timeout=DEADLINE_S)
        try:
            assert writing.wait(DEADLINE_S)
            time.sleep(1.0)  # long enough for an unbounded reader to take the whole body
            held_at = sent
        finally:
            release.set()
        result = response.result()
    # 4 batches of 1 MB, the one being filled, and the kernel's socket buffers on loopback.
    assert held_at < 24 * 10**6, held_at
    assert sent == len(body)
    assert result.status_code == 202, result.text  # the filler is refused, the CT stored
