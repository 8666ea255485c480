"""The README's example session (`make demo`): it stops at the first refusal with the service's
message and what to do next, and ends with the result once a validated model is in production."""

import os
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.jobs.worker import Worker
from tests.support.service import live_server, make_settings, running_service

SCRIPT = REPO_ROOT / "scripts" / "demo_session.sh"


@pytest.mark.req("SRS-API-011")
def test_the_session_stops_at_a_refusal_and_ends_with_the_result(
        tmp_path: Path, empty_registry_db: Path) -> None:
    settings = make_settings(tmp_path / "site", empty_registry_db)  # aaa-cta: a tiny model
    with running_service(settings) as service, live_server(service.app) as base:
        env = os.environ | {"DC_DATA_DIR": str(settings.data_dir),
                            "DC_RELEASES_DIR": str(settings.releases_dir), "DC_URL": base,
                            "DEMO_TIMEOUT_S": "240"}
        refused = subprocess.run(
            ["bash", str(SCRIPT)], env=env | {"DEMO_DIR": str(tmp_path / "refused"),
                                             "DEMO_USE_CASE": "abdomen-pv"},
            capture_output=True, text=True, timeout=300)
        assert refused.returncode == 1
        assert "demo: stopped:" in refused.stderr and "USECASE_NO_MODEL" in refused.stderr
        assert "digital-contrast model promote" in refused.stderr
        assert "submitted" not in refused.stdout  # nothing polled after the refusal

        stop = threading.Event()
        worker = threading.Thread(target=Worker(service.state, lease_seconds=60,
                                                poll_seconds=0.2).run_until, args=(stop,))
        worker.start()
        try:
            done = subprocess.run(["bash", str(SCRIPT)],
                                  env=env | {"DEMO_DIR": str(tmp_path / "done")},
                                  capture_output=True, text=True, timeout=300)
        finally:
            stop.set()
            worker.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{tmp_path / 'done' / 'result.zip'}" in done.stdout
    names = zipfile.ZipFile(tmp_path / "done" / "result.zip").namelist()
    assert "result.json" in names and any(n.endswith(".dcm") for n in names)
