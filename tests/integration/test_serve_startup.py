"""`digital-contrast serve` as an operator starts it: DC_HOST/DC_PORT, a taken port refused
before anything is created, the first admin key made only once the port is bound and never
written to the output when no terminal shows it, the data folder named as an absolute path."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.orthanc import free_port

STARTUP_S = 120


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_") or k in {
        "DC_KEYS_DIR", "DC_TRUSTED_KEYS"}}
    return env | {"DC_DATA_DIR": "data", "DC_WORKERS": "0", **extra}


def _key_rows(data: Path) -> int:
    import sqlite3

    if not (data / "digital_contrast.db").exists():
        return 0
    with sqlite3.connect(data / "digital_contrast.db") as db:
        return db.execute("SELECT count(*) FROM api_keys").fetchone()[0]


@pytest.mark.req("SRS-API-021")
def test_a_taken_port_is_refused_before_any_key_is_made(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "digital_contrast", "serve"],
                              env=_env(tmp_path, DC_PORT=str(port)), cwd=tmp_path,
                              capture_output=True, text=True, timeout=STARTUP_S)
    assert done.returncode == 2 and "SERVE_PORT_IN_USE" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert _key_rows(tmp_path / "data") == 0


@pytest.mark.req("SRS-API-021")
def test_first_start_binds_then_keeps_the_admin_key_out_of_its_output(tmp_path: Path) -> None:
    port = free_port()
    keys = Path(os.environ["DC_KEYS_DIR"])
    (keys / "first-admin-key").unlink(missing_ok=True)
    log = tmp_path / "service.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "digital_contrast", "serve"],
                                   env=_env(tmp_path, DC_HOST="127.0.0.1", DC_PORT=str(port)),
                                   cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the service did not start:\n{log.read_text()[-2000:]}")
        key = (keys / "first-admin-key").read_text().strip()
        assert (keys / "first-admin-key").stat().st_mode & 0o077 == 0
        answer = requests.get(f"http://127.0.0.1:{port}/v1/keys",
                              headers={"X-API-Key": key}, timeout=10)
        assert answer.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
        (keys / "first-admin-key").unlink(missing_ok=True)
    output = log.read_text()
    assert key not in output and "dc_" not in output
    assert f"data {tmp_path / 'data'}" in output  # absolute, though DC_DATA_DIR was relative
