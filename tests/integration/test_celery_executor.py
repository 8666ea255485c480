"""The Celery executor against the machine's real RabbitMQ and PostgreSQL: real `digital-contrast
worker` processes (no eager mode), a worker killed with SIGKILL mid-job, a broker killed and
restarted mid-run (a RabbitMQ node of the test's own), a broker down at submission."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kombu import Connection
from sqlalchemy import func, select

from digital_contrast.api.app import create_app
from digital_contrast.batch_manifest import (
    cases_from_folder_tree,
    read_manifest,
    write_manifest,
)
from digital_contrast.config import Settings
from digital_contrast.jobs.batch import manifest_header, open_batch, outcomes, submit_cases
from digital_contrast.jobs.celery_executor import make_celery, queue_name
from digital_contrast.jobs.dispatch import celery_publisher, dispatch_pending
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.store import Instance, Job, JobState, Origin, Series
from digital_contrast.store.jobs import job_events
from tests.support.databases import throwaway_postgres_database
from tests.support.orphans import leftovers
from tests.support.rabbitmq import rabbitmq_node
from tests.support.service import Service, make_settings, running_service, upload

REPO = Path(__file__).resolve().parents[2]
SHARED_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small phantom NCCT series (three patients: three jobs)."""
    root = tmp_path_factory.mktemp("celery-cases")
    for seed in (21, 22, 23):
        write_phase_dicom(generate_case(seed, "small"), Phase.NCCT, root / str(seed))
    return sorted(root.iterdir())


@contextmanager
def celery_site(tmp_path: Path, registry_db: Path, broker_url: str) -> Iterator[Service]:
    with throwaway_postgres_database() as url:
        settings = make_settings(tmp_path, registry_db, database_url=url, executor="celery",
                                 broker_url=broker_url, job_lease_s=5.0)
        try:
            with running_service(settings) as service:
                yield service
        finally:
            _delete_queue(settings)


def _delete_queue(settings: Settings) -> None:
    try:  # the shared broker keeps no queue of a test's database
        with Connection(settings.broker_url, connect_timeout=3) as connection:
            connection.default_channel.queue_delete(queue_name(settings))
    except Exception:
        pass


def _submit(service: Service, folders: list[Path]) -> list[str]:
    ids = []
    for folder in folders:
        uid = upload(service, folder)
        response = service.client.post("/v1/jobs", json={"series_uid": uid,
                                                         "use_case": "aaa-cta"},
                                       headers=service.headers())
        assert response.status_code in (201, 202), response.text
        ids.append(response.json()["id"])
    return ids


class CeleryWorker:
    """`digital-contrast worker` under DC_EXECUTOR=celery, in its own process group."""

    def __init__(self, settings: Settings, log: Path) -> None:
        env = os.environ | {
            "DC_DATA_DIR": str(settings.data_dir), "DC_DATABASE_URL": settings.database_url,
            "DC_MLFLOW_URI": settings.mlflow_uri, "DC_RELEASES_DIR": str(settings.releases_dir),
            "DC_EXECUTOR": "celery", "DC_BROKER_URL": settings.broker_url,
            "DC_JOB_LEASE_S": str(settings.job_lease_s), "DC_LOG_FORMAT": "text"}
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digital_contrast", "worker"], cwd=REPO, env=env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while b"Celery worker ready on" not in self.log.read_bytes():
            assert self.process.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def holds(self, pid: int) -> bool:
        try:
            return os.getpgid(pid) == self.process.pid
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def workers(settings: Settings, folder: Path, count: int) -> Iterator[list[CeleryWorker]]:
    started: list[CeleryWorker] = []
    try:
        for index in range(count):
            started.append(CeleryWorker(settings, folder / f"worker{index}.log"))
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.kill()


def _jobs(service: Service, ids: list[str]) -> list[Job]:
    with service.state.sessions() as db:
        return [db.get(Job, job_id) for job_id in ids]


def _wait(service: Service, ids: list[str], until, timeout_s: float, who: list[CeleryWorker]
          ) -> list[Job]:
    deadline = time.monotonic() + timeout_s
    while not until(jobs := _jobs(service, ids)):
        assert time.monotonic() < deadline, [(j.state, j.attempts) for j in jobs] + \
            [w.output() for w in who]
        time.sleep(0.2)
    return jobs


def _all_done(jobs: list[Job]) -> bool:
    return all(job.state.terminal for job in jobs)


def _published_once(service: Service, jobs: list[Job]) -> None:
    """Every job succeeded once, and each synthetic series holds each slice of its input
    exactly once."""
    assert [job.state for job in jobs] == [JobState.SUCCEEDED] * len(jobs)
    with service.state.sessions() as db:
        for job in jobs:
            counts = db.execute(
                select(func.count(Instance.id),
                       func.count(func.distinct(Instance.sop_instance_uid)))
                .join(Series, Instance.series_id == Series.id)
                .where(Series.series_instance_uid == job.output_series_uid)).one()
            inputs = db.scalar(select(func.count(Instance.id))
                               .where(Instance.series_id == job.series_id))
            assert tuple(counts) == (inputs, inputs)
            events = [e.to_state for e in job_events(db, job.id)]
            assert events.count(JobState.SUCCEEDED) == 1
        produced = db.scalar(select(func.count(Series.id))
                             .where(Series.origin == Origin.PRODUCED))
        # Each job publishes the same kinds of series, none twice.
        assert produced % len(jobs) == 0 and len({j.output_series_uid for j in jobs}) == len(jobs)


@pytest.mark.req("SRS-JOB-006", "SRS-JOB-007", "SRS-JOB-001")
def test_a_worker_killed_mid_job_leaves_the_job_to_the_broker_and_it_finishes_once(
        tmp_path: Path, empty_registry_db: Path, cases: list[Path]) -> None:
    with celery_site(tmp_path, empty_registry_db, SHARED_BROKER) as service:
        settings = service.settings
        ids = _submit(service, cases[:2])
        assert dispatch_pending(service.state.sessions,
                                celery_publisher(make_celery(settings))) == len(ids)
        with workers(settings, tmp_path, 2) as pool:
            running = _wait(service, ids, lambda js: any(j.state == JobState.RUNNING
                                                         for j in js), 180, pool)
            victim_job = next(j for j in running if j.state == JobState.RUNNING)
            holder_pid = int(victim_job.lease_owner.split("-")[-2])
            (victim,) = [w for w in pool if w.holds(holder_pid)]
            victim.kill()  # the whole worker, pool process included: a machine gone
            survivors = [w for w in pool if w is not victim]
            jobs = _wait(service, ids, _all_done, 300, survivors)
        _published_once(service, jobs)
        retried = next(j for j in jobs if j.id == victim_job.id)
        assert retried.attempts == 2
        assert all(j.attempts == 1 for j in jobs if j.id != victim_job.id)
        with service.state.sessions() as db:
            events = job_events(db, retried.id)
        assert [e.to_state for e in events] == [JobState.QUEUED, JobState.RUNNING,
                                                JobState.RUNNING, JobState.SUCCEEDED]
        assert events[2].detail["reason"] == "lease expired"
        # What the killed attempt wrote was swept by the worker that retried it.
        assert leftovers(settings.data_dir, service.state.sessions) == []


def _batch(service: Service, folders: list[Path], name: str, after_commit) -> list[str]:
    """The folders as a cohort batch (manifest beside them), submitted through the executor."""
    root = folders[0].parent
    wanted = {folder.name for folder in folders}
    path = root / f"{name}.jsonl"
    write_manifest(path, manifest_header(name, "aaa-cta", "folder"),
                   [c for c in cases_from_folder_tree(root) if c.folder in wanted])
    manifest = read_manifest(path)
    batch = open_batch(service.state, manifest, "test")
    submit_cases(service.state, batch, manifest, "test", after_commit=after_commit)
    return [row["job_id"] for row in outcomes(service.state, batch)]


@pytest.mark.req("SRS-JOB-006", "SRS-JOB-008", "SRS-BATCH-002")
def test_a_broker_killed_and_restarted_mid_run_loses_no_job(
        tmp_path: Path, empty_registry_db: Path, cases: list[Path]) -> None:
    with ExitStack() as stack:
        node = stack.enter_context(rabbitmq_node(tmp_path / "rabbitmq"))
        service = stack.enter_context(celery_site(tmp_path / "site", empty_registry_db,
                                                  node.url))
        settings = service.settings
        publish = celery_publisher(make_celery(settings))

        def dispatch() -> int:
            return dispatch_pending(service.state.sessions, publish)

        ids = _batch(service, cases[:2], f"first-{tmp_path.name}", dispatch)
        pool = stack.enter_context(workers(settings, tmp_path, 1))
        _wait(service, ids, lambda js: any(j.state == JobState.RUNNING for j in js), 180, pool)
        node.kill()  # mid-run: one job running, one waiting in the queue
        # A batch submitted while the broker is down: recorded and queued, not lost.
        late = _batch(service, cases[2:], f"late-{tmp_path.name}", dispatch)
        assert _jobs(service, late)[0].dispatched_at is None
        node.start()
        assert dispatch() == 1
        jobs = _wait(service, ids + late, _all_done, 300, pool)
        _published_once(service, jobs)
        assert all(job.attempts == 1 and job.dispatched_at is not None for job in jobs)


@pytest.mark.req("SRS-JOB-006", "SRS-JOB-007")
def test_the_celery_service_hands_jobs_to_the_broker_and_runs_none_itself(
        tmp_path: Path, empty_registry_db: Path, cases: list[Path]) -> None:
    with celery_site(tmp_path, empty_registry_db, SHARED_BROKER) as service:
        (job_id,) = _submit(service, cases[:1])
        # The same site served with its background threads, as `serve` runs it.
        with TestClient(create_app(service.settings)):
            threads = {thread.name for thread in threading.enumerate()}
            assert "job-dispatcher" in threads
            assert not any(name.startswith("job-worker") for name in threads)
            deadline = time.monotonic() + 30
            while (job := _jobs(service, [job_id])[0]).dispatched_at is None:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert job.state == JobState.QUEUED  # nothing in the service runs it
        with Connection(service.settings.broker_url) as connection:
            _, messages, _ = connection.default_channel.queue_declare(
                queue_name(service.settings), passive=True)
        assert messages == 1
