"""The scrubbing log handler (digital_contrast.logs): JSON lines, patient data and secrets kept
out of every record, exceptions by type and frames only, warnings and DICOM libraries routed."""

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from digital_contrast.logs import REDACTED, REQUEST_ID, scrub_secrets, scrub_untrusted
from tests.support.ct_series import ct_slices, to_bytes
from tests.support.logs import configured_logging, json_lines

NAME, PATIENT_ID, BIRTH = "ZZQPHI^ALPHA", "PHI-ID-93817", "19710413"
API_KEY = "dc_0123456789ab_ZZQsecretZZQsecretZZQsecret0123"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with configured_logging() as stream:
        yield stream


def _lines(stream: io.StringIO) -> list[dict]:
    return json_lines(stream)


@pytest.mark.req("SRS-LOG-002")
@pytest.mark.parametrize("message", [
    f"Invalid value for VR PN: '{NAME}'",
    f"Invalid value for VR DA: {BIRTH}",  # unquoted, after the VR
    f'Unable to convert "{BIRTH}" to a date',
    f"(0010,0010) Patient's Name                      PN: '{NAME}'",
    f"(0010,0020) LO [{PATIENT_ID}]  # 1 PatientID",
    f"Value of (0010,0020) PatientID is wrong: {PATIENT_ID}",
    f"exception=ValueError('{NAME} O\\'Brien')",
    f'exception=ValueError("{NAME} O\'Brien")',
])
def test_dicom_library_messages_keep_the_problem_and_lose_the_value(message: str) -> None:
    scrubbed = scrub_untrusted(message, dicom=True)
    assert NAME not in scrubbed and PATIENT_ID not in scrubbed and BIRTH not in scrubbed
    assert "ZZQ" not in scrubbed and "Brien" not in scrubbed
    assert REDACTED in scrubbed
    for kept in ("(0010,0010)", "(0010,0020)", "Invalid value for VR", "PatientID"):
        if kept in message:
            assert kept in scrubbed


@pytest.mark.req("SRS-LOG-002")
def test_other_libraries_lose_quoted_values_and_query_strings() -> None:
    access = f'127.0.0.1:5000 - "GET /dicomweb/studies?PatientName={NAME} HTTP/1.1" 200'
    assert NAME not in scrub_untrusted(access, dicom=False)
    bare = f"GET /dicomweb/studies?PatientID={PATIENT_ID}&limit=5"
    assert scrub_untrusted(bare, dicom=False) == f"GET /dicomweb/studies?{REDACTED}"
    # What carries no value is left as it is.
    assert scrub_untrusted("Uvicorn running on socket (Press CTRL+C to quit)", dicom=False) == \
        "Uvicorn running on socket (Press CTRL+C to quit)"


@pytest.mark.req("SRS-LOG-003")
@pytest.mark.parametrize("text, secret", [
    (f"key {API_KEY} used", API_KEY.split("_", 2)[2]),
    ("Authorization: Bearer ZZQtoken-abc.def", "ZZQtoken-abc.def"),
    ("Authorization: Basic dXNlcjpaWlFwdw==", "dXNlcjpaWlFwdw=="),
    ("X-API-Key: ZZQrawkey123", "ZZQrawkey123"),
    ("database postgresql+psycopg://dc:ZZQpw%40x@db.internal:5432/dc", "ZZQpw"),
    ("broker amqp://guest:ZZQbroker@mq:5672//", "ZZQbroker"),
    ("connect password=ZZQpass host=db", "ZZQpass"),
])
def test_secrets_are_redacted(text: str, secret: str) -> None:
    scrubbed = scrub_secrets(text)
    assert secret not in scrubbed and REDACTED in scrubbed


@pytest.mark.req("SRS-LOG-001")
@pytest.mark.req("SRS-LOG-004")
def test_json_lines_carry_time_level_logger_message_request_id_and_event_fields(
        log_stream: io.StringIO) -> None:
    token = REQUEST_ID.set("req-12345678")
    try:
        logging.getLogger("digital_contrast.jobs.worker").info(
            "job %s succeeded", "j-1", extra={"event": "job.done", "status": 3,
                                              "color_message": f"{NAME}"})
    finally:
        REQUEST_ID.reset(token)
    logging.getLogger("digital_contrast.jobs.worker").warning("outside a request")
    first, second = _lines(log_stream)
    assert first["time"].endswith("Z") and first["time"][:2] == "20"
    assert {k: first[k] for k in ("level", "logger", "message", "request_id", "event",
                                  "status")} == {
        "level": "INFO", "logger": "digital_contrast.jobs.worker", "message": "job j-1 succeeded",
        "request_id": "req-12345678", "event": "job.done", "status": 3}
    assert "color_message" not in first  # only the named fields, never a record's extras
    assert "request_id" not in second and second["level"] == "WARNING"


@pytest.mark.req("SRS-LOG-002")
def test_exceptions_are_logged_by_type_and_frames_never_their_message(
        log_stream: io.StringIO) -> None:
    def read_header() -> None:
        try:
            raise KeyError(PATIENT_ID)
        except KeyError as exc:
            raise ValueError(f"bad name {NAME}") from exc

    try:
        read_header()
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application\n")
    (line,) = _lines(log_stream)
    text = json.dumps(line)
    assert NAME not in text and PATIENT_ID not in text
    assert line["exc_type"] == "ValueError" and line["exc_chain"] == ["KeyError"]
    assert any(frame.endswith(" read_header") for frame in line["frames"])
    assert "Traceback" not in log_stream.getvalue()


@pytest.mark.req("SRS-LOG-001")
@pytest.mark.req("SRS-LOG-002")
def test_pydicom_and_warnings_on_a_damaged_element_go_through_the_scrubber(
        log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    from digital_contrast.intake.instance import validate_instance

    ds = ct_slices(1, patient_name=NAME)[0][0]
    ds.PatientID, ds.PatientBirthDate = PATIENT_ID, BIRTH
    damaged = to_bytes(ds).replace(BIRTH.encode(), b"19ZZ0413").replace(
        NAME.encode(), b"ZZQPHI^ALPH\xff")
    header = validate_instance(damaged).header
    str(header.PatientBirthDate), str(header.PatientName)  # values decoded: pydicom warns
    header.PatientAge = NAME  # pydicom's value validation quotes the value it refuses
    output = log_stream.getvalue() + "".join(capsys.readouterr())
    lines = _lines(log_stream)
    assert {"pydicom", "py.warnings"} <= {line["logger"] for line in lines}
    messages = [line["message"] for line in lines]
    assert any("Failed to decode byte string" in m for m in messages)
    assert any("Invalid value for VR AS" in m and REDACTED in m for m in messages)
    assert "19ZZ0413" not in output and "ZZQPHI" not in output


@pytest.mark.req("SRS-LOG-001")
def test_an_uncaught_exception_of_a_thread_is_logged_without_its_message(
        log_stream: io.StringIO) -> None:
    def crash() -> None:
        raise RuntimeError(NAME)

    thread = threading.Thread(target=crash, name="crashing")
    thread.start()
    thread.join()
    (line,) = _lines(log_stream)
    assert line["logger"] == "digital_contrast.uncaught" and line["exc_type"] == "RuntimeError"
    assert "crashing" in line["message"] and NAME not in json.dumps(line)


@pytest.mark.req("SRS-LOG-001")
def test_text_format_for_a_terminal() -> None:
    from digital_contrast.logs import make_handler

    stream = io.StringIO()
    logger = logging.getLogger("digital_contrast.test_text")
    logger.addHandler(make_handler("text", stream))
    logger.propagate = False
    try:
        logger.warning("listener on %s", "0.0.0.0", extra={"event": "dimse.start"})
    finally:
        logger.handlers.clear()
        logger.propagate = True
    text = stream.getvalue()
    assert "WARNING" in text and "digital_contrast.test_text listener on 0.0.0.0" in text
    assert "event=dimse.start" in text and not text.lstrip().startswith("{")
