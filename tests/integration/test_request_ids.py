"""Request ids and the unhandled-error path through real uvicorn, as `serve` configures it
(log_config=None: uvicorn's and Starlette's records reach the scrubbing handler)."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from digital_contrast.api.app import create_app
from digital_contrast.api.routers import health
from digital_contrast.config import Settings
from tests.support.logs import configured_logging, json_lines
from tests.support.service import live_server

NAME, PATIENT_ID = "ZZQPHI^ALPHA", "PHI-ID-93817"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """The app on a free port, logging JSON lines into a buffer."""
    with configured_logging() as stream:
        app = create_app(Settings(data_dir=tmp_path / "data", workers=0), background=False)
        with live_server(app, log_config=None, log_level=None, access_log=False,
                         lifespan="on") as url:
            yield url, stream


@pytest.mark.req("SRS-LOG-004")
def test_a_well_formed_client_id_is_kept_and_carried_into_the_access_line(served) -> None:
    url, stream = served
    answer = requests.get(f"{url}/healthz", headers={"X-Request-ID": "client-req-0001"},
                          timeout=10)
    assert answer.headers["X-Request-ID"] == "client-req-0001"
    (access,) = [line for line in json_lines(stream) if line.get("event") == "http.request"]
    assert access["request_id"] == "client-req-0001"
    assert (access["method"], access["route"], access["status"]) == ("GET", "/healthz", 200)


@pytest.mark.req("SRS-LOG-004")
@pytest.mark.req("SRS-LOG-002")
@pytest.mark.parametrize("incoming", [f"{NAME} {PATIENT_ID}", "a" * 65, "short", "ab\u00e9cdefgh"])
def test_an_ill_formed_client_id_is_replaced(served, incoming: str) -> None:
    url, stream = served
    answer = requests.get(f"{url}/dicomweb/studies", params={"PatientName": NAME},
                          headers={"X-Request-ID": incoming.encode("utf-8")}, timeout=10)
    assert answer.status_code == 401
    minted = answer.headers["X-Request-ID"]
    assert minted != incoming and len(minted) == 32 and int(minted, 16) >= 0
    assert answer.json()["request_id"] == minted  # the problem names it too
    output = stream.getvalue()
    assert minted in output and NAME not in output and "ZZQPHI" not in output
    assert PATIENT_ID not in output and "PatientName" not in output  # no query string


@pytest.mark.req("SRS-LOG-002")
@pytest.mark.req("SRS-LOG-004")
def test_an_unhandled_error_is_logged_by_type_and_frames_with_its_request_id(
        served, monkeypatch: pytest.MonkeyPatch) -> None:
    url, stream = served

    def broken_check(uri: str) -> dict:
        raise ValueError(f"cannot read {NAME} ({PATIENT_ID})")

    monkeypatch.setattr(health, "_model_check", broken_check)
    answer = requests.get(f"{url}/readyz", headers={"X-Request-ID": "probe-000042"}, timeout=10)
    assert answer.status_code == 500 and answer.headers["X-Request-ID"] == "probe-000042"
    problem = answer.json()
    assert problem["code"] == "INTERNAL_ERROR" and problem["request_id"] == "probe-000042"
    trace_message = "Exception in ASGI application"
    for _ in range(200):  # uvicorn logs it once the response is sent: wait for the line
        if trace_message in stream.getvalue():
            break
        time.sleep(0.05)
    lines = json_lines(stream)
    (trace,) = [line for line in lines if line["message"] == trace_message]
    assert trace["logger"] == "uvicorn.error" and trace["request_id"] == "probe-000042"
    assert trace["exc_type"] == "ValueError"
    assert any(frame.endswith(" broken_check") for frame in trace["frames"])
    assert any(line.get("event") == "http.unexpected" and line["request_id"] == "probe-000042"
               for line in lines)
    output = stream.getvalue()
    assert NAME not in output and PATIENT_ID not in output and "Traceback" not in output
    assert NAME not in answer.text
