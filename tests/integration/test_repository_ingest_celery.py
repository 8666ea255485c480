"""`repository ingest` through the Celery executor against the machine's real RabbitMQ and
PostgreSQL: real `digital-contrast worker` processes (no eager mode), the broker unreachable at
submission, a resume, a worker killed mid-series, and the files byte for byte those of the
in-process ingest, with nothing identifying in any log or output."""

import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery.exceptions import Reject
from sqlalchemy import func, select
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import Settings, get_settings
from digital_contrast.jobs import celery_executor
from digital_contrast.jobs.celery_executor import make_celery
from digital_contrast.jobs.repository_ingest import INGEST_TASK
from digital_contrast.keys.folder import keys_folder
from digital_contrast.repository.deid.deidentify import Deidentifier
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.index.database import open_index, sessions
from digital_contrast.repository.index.tables import IngestItem, Series
from digital_contrast.repository.ingest import ingest
from digital_contrast.repository.ingest_runs import DONE, REFUSED, progress
from tests.integration.test_celery_executor import SHARED_BROKER, CeleryWorker, _delete_queue
from tests.support.databases import throwaway_postgres_database
from tests.support.ingest_source import identifying_values, ingest_source, tree

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DA")


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A site whose series index is a throwaway PostgreSQL database and whose queue (named by
    its own clinical database) is deleted from the shared broker afterwards."""
    with throwaway_postgres_database() as url:
        for name, value in (("DC_DATA_DIR", str(tmp_path / "data")),
                            ("DC_REPOSITORY_DATABASE_URL", url),
                            ("DC_BROKER_URL", SHARED_BROKER), ("DC_LOG_FORMAT", "text"),
                            ("COLUMNS", "200")):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DC_EXECUTOR", raising=False)
        get_settings.cache_clear()
        settings = get_settings()
        try:
            yield settings
        finally:
            _delete_queue(settings)
            get_settings.cache_clear()


def _command(*args: str, **env: str) -> subprocess.CompletedProcess:
    """A repository command in its own process, as a site runs it."""
    return subprocess.run([sys.executable, "-m", "digital_contrast", "repository", *args],
                          cwd=REPO, env=os.environ | env, capture_output=True, text=True,
                          timeout=300, check=False)


def _until(condition: Callable[[], bool], timeout_s: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, why()
        time.sleep(0.05)


@pytest.mark.req("SRS-REPO-012", "SRS-REPO-005", "SRS-REPO-003")
def test_ingest_through_celery_workers_resumes_to_the_bytes_of_the_in_process_ingest(
        site: Settings, tmp_path: Path, phantom_series: dict,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    source = ingest_source(phantom_series, tmp_path / "source")
    out = tmp_path / "repository"
    runner = CliRunner()
    said: list[str] = []

    # DC_EXECUTOR=celery makes the Celery executor the default; the broker is down
    down = _command("ingest", str(source), "--site", "site-a", "--out", str(out),
                    DC_EXECUTOR="celery",
                    DC_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{_closed_port()}//")
    said += [down.stdout, down.stderr]
    assert down.returncode == 2, down.stdout + down.stderr
    assert "INGEST_BROKER_UNREACHABLE" in down.stderr
    run = int(re.search(r"ingest run (\d+):", down.stdout).group(1))
    status = runner.invoke(app, ["repository", "ingest-status", str(run)])
    said.append(status.output)
    assert status.exit_code == 0, status.output
    assert "3 series: 0 done, 2 pending, 1 refused, 0 failed" in status.output
    assert "2 pending series not handed to the broker yet" in status.output
    assert "refused 1 series: DEID_BURNED_IN" in status.output
    assert "skipped 1 files that are not DICOM" in status.output

    # the broker back: the run resumed; a worker killed in the middle of a series
    resumed = runner.invoke(app, ["repository", "ingest-resume", str(run)])
    said.append(resumed.output)
    assert resumed.exit_code == 0 and "2 series handed to the Celery workers" in resumed.output
    engine = open_index(site.repository_database_url)
    make = sessions(engine)

    def done() -> int:
        with make() as session:
            return progress(session, run).items[DONE]

    first = CeleryWorker(site, tmp_path / "first.log")
    try:
        first.wait_ready()
        _until(lambda: f"{INGEST_TASK}[" in first.output(), 60, first.output)
        time.sleep(0.3)  # into its first series: opening the index, writing files
    finally:
        first.kill()
    assert done() < 2  # the rest is the broker's redelivery: no resume from here on
    killed = re.findall(rf"{INGEST_TASK}\[([0-9a-f-]+)\] received",  # the one in flight
                        first.log.read_text(errors="replace"))[-1]

    second = CeleryWorker(site, tmp_path / "second.log")
    try:
        second.wait_ready()
        waited = _command("ingest-status", str(run), "--wait", "--interval", "0.5")
    finally:
        second.kill()
    said += [waited.stdout, waited.stderr]
    assert waited.returncode == 0, waited.stdout + waited.stderr + second.output()
    assert f"ingest run {run} at site-a, created " in waited.stdout
    assert f"into {out}: complete" in waited.stdout
    assert "3 series: 2 done, 0 pending, 1 refused, 0 failed" in waited.stdout
    # the killed worker's message, delivered again by RabbitMQ (acknowledged late)
    assert f"{INGEST_TASK}[{killed}] received" in second.log.read_text(errors="replace")
    assert "refused 1 series: DEID_BURNED_IN" in waited.stdout
    again = runner.invoke(app, ["repository", "ingest-resume", str(run)])
    assert "nothing to resume" in again.output

    with make() as session:
        items = list(session.scalars(select(IngestItem).where(IngestItem.run_id == run)))
        rows = session.scalar(select(func.count()).select_from(Series))
        indexed = set(session.scalars(select(Series.series_uid)))
        written = progress(session, run).written
    engine.dispose()
    assert sorted(i.state for i in items) == [DONE, DONE, REFUSED]
    assert rows == 2 and indexed == {i.series_uid for i in items if i.state == DONE}
    assert not list(out.rglob("*.part"))
    # the same files, byte for byte, as the in-process ingest with the site's key
    # this process's lines too, but for pydicom's here: the test wrote the invalid date
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("pydicom")]
    logs = "\n".join([*said, *ours, (tmp_path / "first.log").read_text(errors="replace"),
                      (tmp_path / "second.log").read_text(errors="replace")])
    secret = keys_folder().secret("deid-site-site-a")
    ingest(source, tmp_path / "in-process", Deidentifier(SiteKey("site-a", secret)))
    mine = tree(out)
    assert mine == tree(tmp_path / "in-process") and written == len(mine)
    assert f"ingest run {run} item" in logs  # the workers' lines are there
    assert not [value for value in identifying_values(source) if value in logs]


@pytest.mark.req("SRS-REPO-012")
def test_an_index_out_of_reach_puts_the_message_back_after_a_pause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(celery_executor, "INFRASTRUCTURE_BACKOFF_S", 0.2)
    settings = Settings(data_dir=tmp_path / "data", repository_database_url=(
        f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/index"))
    task = make_celery(settings).tasks[INGEST_TASK]  # the worker's task, run in this process
    started = time.monotonic()
    with pytest.raises(Reject) as raised:
        task(1, 2)
    assert raised.value.requeue is True and time.monotonic() - started >= 0.2
    assert "ingest run 1 item 2 put back on the queue (OperationalError)" in caplog.text
