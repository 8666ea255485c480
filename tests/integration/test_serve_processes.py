"""`digital-contrast serve --processes 2`: requests are shared by two HTTP processes, kept alive
by the supervisor, and the background work (job workers, DIMSE listener...) runs once, in the
parent, which serves no request."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from digital_contrast.phantom.export import Phase
from tests.support.orthanc import free_port
from tests.support.service import make_settings, zip_of

REPO = Path(__file__).resolve().parents[2]
STARTUP_S = 180


def _lines(log: Path) -> list[dict]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def _children(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(c) for c in (task / "children").read_text().split()}
    return children


def _wait_until(predicate, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while not predicate():
        assert process.poll() is None and time.monotonic() < deadline, \
            f"{what}: {log.read_text()[-3000:]}"
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.req("SRS-API-028")
def test_two_http_processes_share_requests_and_the_parent_runs_the_background_once(
        tmp_path: Path, empty_registry_db: Path, phantom_series: dict) -> None:
    settings = make_settings(tmp_path, empty_registry_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_") or k in {
        "DC_KEYS_DIR", "DC_TRUSTED_KEYS"}}
    env |= {"DC_DATA_DIR": str(settings.data_dir), "DC_MLFLOW_URI": settings.mlflow_uri,
            "DC_RELEASES_DIR": str(settings.releases_dir), "DC_WORKERS": "1",
            "DC_DIMSE_PORT": str(free_port()), "DC_LOG_FORMAT": "json"}
    key = subprocess.run([sys.executable, "-m", "digital_contrast", "keys", "create", "--role",
                          "clinician", "--name", "t"], env=env, cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    port, log = free_port(), tmp_path / "service.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        parent = subprocess.Popen([sys.executable, "-m", "digital_contrast", "serve", "--port",
                                   str(port), "--processes", "2"], env=env, cwd=REPO,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: _answers(f"{base}/healthz"), "no answer", parent, log)
        headers = {"X-API-Key": key}
        uploaded = requests.post(f"{base}/v1/uploads", data=zip_of(phantom_series[Phase.NCCT]),
                                 headers=headers | {"Content-Type": "application/zip"},
                                 timeout=120)
        assert uploaded.status_code == 201, uploaded.text
        job = requests.post(f"{base}/v1/jobs", headers=headers, timeout=60, json={
            "series_uid": uploaded.json()["series_uids"][0], "use_case": "aaa-cta"}).json()
        for _ in range(60):
            requests.get(f"{base}/healthz", timeout=10)
        # Kill one HTTP process: the supervisor starts another; requests go on being served.
        children = _children(parent.pid)
        assert len(children) >= 2
        os.kill(min(children), signal.SIGKILL)
        _wait_until(lambda: len(_children(parent.pid) - {min(children)}) >= 2,
                    "no replacement", parent, log)
        _wait_until(lambda: requests.get(f"{base}/v1/jobs/{job['id']}", headers=headers,
                                         timeout=10).json()["state"] == "succeeded",
                    "job not finished", parent, log)
        assert all(_answers(f"{base}/healthz") for _ in range(10))
    finally:
        parent.terminate()
        parent.wait(timeout=60)
    lines = _lines(log)
    served_by = {line["pid"] for line in lines if line.get("event") == "http.request"}
    assert len(served_by) >= 2 and parent.pid not in served_by
    background = [line for line in lines if line["message"].startswith("background work")]
    assert [line["pid"] for line in background] == [parent.pid]
    jobs_run_by = {line["pid"] for line in lines if line["logger"] == "digital_contrast.jobs."
                   "runner" and line["message"].startswith("job ")}
    assert jobs_run_by == {parent.pid}
    dimse = [line for line in lines if line["message"].startswith("DIMSE listener")]
    assert [line["pid"] for line in dimse] == [parent.pid]
