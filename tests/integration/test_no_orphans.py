"""No orphan ever: a service process killed with SIGKILL at several points of ingest and of a
job's publication leaves files that nothing claims; the next start sweeps every one of them
and keeps every file a committed row claims. The journal's own rules (whose intents are dead,
what an intent may name) are checked directly."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from digital_contrast.phantom.export import Phase
from digital_contrast.service import open_state
from digital_contrast.store import Instance
from digital_contrast.store.file_journal import FileJournal, Owner
from tests.support.orphans import leftovers
from tests.support.service import make_settings, running_service, upload

REPO = Path(__file__).resolve().parents[2]


def _killed_at(settings, point: str, *files: Path) -> str:
    """Run the crash child until it reports POINT, then SIGKILL it; its output."""
    env = os.environ | {"DC_DATA_DIR": str(settings.data_dir),
                        "DC_DATABASE_URL": settings.database_url,
                        "DC_MLFLOW_URI": settings.mlflow_uri,
                        "DC_RELEASES_DIR": str(settings.releases_dir)}
    child = subprocess.Popen([sys.executable, "-m", "tests.support.crash_child", point,
                              *map(str, files)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "BLOCKED", f"the child ended before {point}: {line!r}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    return line


def _series_with_a_conflict(phantom_series, tmp_path: Path) -> list[Path]:
    """Six slices, and a seventh: the first one again with one changed tag (refused)."""
    files = sorted(phantom_series[Phase.NCCT].iterdir())[:6]
    changed = pydicom.dcmread(files[0])
    changed.ImageComments = "edited after sending"
    conflict = tmp_path / "conflict.dcm"
    changed.save_as(conflict, enforce_file_format=True)
    return [*files, conflict]


@pytest.mark.req("SRS-STORE-007")
@pytest.mark.parametrize("point", ["ingest-drawing", "ingest-before-rows", "ingest-committed"])
def test_a_process_killed_during_ingest_leaves_nothing_after_the_next_start(
        tmp_path: Path, empty_registry_db: Path, phantom_series, point: str) -> None:
    settings = make_settings(tmp_path, empty_registry_db)
    _killed_at(settings, point, *_series_with_a_conflict(phantom_series, tmp_path))
    # What the kill left: the intent of a dead process and the files it named.
    assert len(FileJournal(settings.data_dir).dead_intents()) == 1
    on_disk = list((settings.data_dir / "instances").glob("*/*/*.dcm"))
    assert len(on_disk) == (3 if point == "ingest-drawing" else 7)
    state = open_state(settings)  # the next start: sweeps what the killed process left
    try:
        assert leftovers(settings.data_dir, state.sessions) == []
        with state.sessions() as db:
            rows = db.query(Instance).all()
        assert len(rows) == (6 if point == "ingest-committed" else 0)
        for row in rows:  # what a committed row claims is kept, intact
            assert state.instances.read(row.file_path, row.sha256)
    finally:
        state.engine.dispose()


@pytest.mark.req("SRS-STORE-007", "SRS-JOB-004")
@pytest.mark.parametrize("point", ["job-scratch", "job-publishing"])
def test_a_worker_killed_mid_job_leaves_nothing_after_the_next_start(
        tmp_path: Path, empty_registry_db: Path, phantom_series, point: str) -> None:
    settings = make_settings(tmp_path, empty_registry_db)
    with running_service(settings) as service:
        uid = upload(service, phantom_series[Phase.NCCT])
        response = service.client.post("/v1/jobs", json={"series_uid": uid,
                                                         "use_case": "aaa-cta"},
                                       headers=service.headers())
        assert response.status_code == 202, response.text
        received = len(leftovers(settings.data_dir, service.state.sessions))
    assert received == 0
    _killed_at(settings, point)
    folders = {"job-scratch": "work", "job-publishing": "jobs"}[point]
    assert any((settings.data_dir / folders).iterdir())  # the kill left something behind
    state = open_state(settings)
    try:
        assert leftovers(settings.data_dir, state.sessions) == []
        with state.sessions() as db:  # the received series is untouched
            assert db.query(Instance).count() == len(list(phantom_series[Phase.NCCT].iterdir()))
    finally:
        state.engine.dispose()


@pytest.mark.req("SRS-STORE-007")
def test_whose_intents_are_dead_and_what_an_intent_may_name(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    with journal.intent() as mine:
        mine.add(tmp_path / "instances" / "ab" / "cd" / "x.dcm")
        assert journal.dead_intents() == []  # this process is running
        assert journal.live_paths() == {tmp_path / "instances" / "ab" / "cd" / "x.dcm"}
        assert journal.live_paths(excluding=mine) == set()
    assert not mine.path.exists()  # retired when the work ended
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    me = Owner.this_process()
    ghosts = {  # a finished process; this pid started at another time (a reused pid)
        Owner(me.host, int(finished.stdout), "1"), Owner(me.host, me.pid, "1")}
    for ghost in ghosts:
        folder = journal.root / ghost.name
        folder.mkdir(parents=True)
        (folder / "w.log").write_text("instances/ab/cd/y.dcm\n/etc/passwd\n../../outside\n")
    dead = journal.dead_intents()
    assert len(dead) == 2
    assert dead[0].paths() == [tmp_path / "instances/ab/cd/y.dcm"]  # nothing outside
    remote = journal.root / Owner("another-host", 1, "1").name
    remote.mkdir()
    (remote / "r.log").write_text("instances/ab/cd/z.dcm\n")
    assert len(journal.dead_intents()) == 2  # another host's recent intent: presumed alive
    os.utime(remote / "r.log", (0, 0))
    os.utime(remote, (0, 0))
    assert len(journal.dead_intents()) == 3  # silent for longer than the grace period
    with journal.intent() as abandoned:
        abandoned.add(tmp_path / "work" / "job-x")
        abandoned.abandon()
    assert len(journal.dead_intents()) == 4  # over, though its process still runs
