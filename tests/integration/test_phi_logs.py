"""A real `digital-contrast serve` (with its DIMSE listener) fed distinctive patient data and
secrets through every route and failure path it offers: none of them may appear in anything it
writes (standard output, standard error, log files), and the files it makes are private.

The database and the data folder are made beforehand with open modes (0644 file, 0755 folder),
as an older installation left them: the service restricts them when it opens them."""

import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from pydicom.dataset import Dataset

from digital_contrast.store import Role
from digital_contrast.store.api_keys import create_api_key
from digital_contrast.store.database import make_engine, session_factory, upgrade_to_head
from digital_contrast.store.dicom_senders import add_sender
from tests.support.ct_series import ct_slices, to_bytes
from tests.support.orthanc import free_port

STARTUP_S = 120
NAME, PATIENT_ID, BIRTH, ACCESSION = "ZZQPHI^ALPHA", "PHI-ID-93817", "19710413", "ACCZQ7731"
OTHER_NAME, OTHER_ID = "ZZQOTHER^BRAVO", "PHI-ID-55102"  # the damaged instances'
FAKE_KEY = "dc_0123456789ab_ZZQfakeSecretZZQfakeSecretZZQfake01"
SCU = "PHITESTSCU"
STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b0undary'


@dataclass
class Running:
    url: str
    dimse_port: int
    keys: dict[Role, str]
    data: Path
    out: Path
    err: Path


def _multipart(parts: list[bytes]) -> bytes:
    body = b"".join(b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                    for p in parts)
    return body + b"--b0undary--\r\n"


def _patient(ds: Dataset, name: str, patient_id: str) -> Dataset:
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, patient_id, BIRTH
    ds.AccessionNumber, ds.OtherPatientIDs = ACCESSION, patient_id + "-B"
    return ds


def _good_series(seed_name: str, name: str = NAME, patient_id: str = PATIENT_ID,
                 n: int = 3) -> list[Dataset]:
    return [_patient(ds, name, patient_id) for ds in ct_slices(n, name=seed_name)[0]]


def _damaged_instances() -> list[bytes]:
    """A PN of invalid UTF-8 and a DA outside the calendar; an unknown VR for PatientName; a
    truncated file."""
    first, second, third = (to_bytes(ds) for ds in _good_series("damaged", OTHER_NAME, OTHER_ID))
    bad_text = first.replace(OTHER_NAME.encode(), b"ZZQOTHER^BRAV\xff").replace(
        BIRTH.encode(), b"19ZZ0413")
    bad_vr = second.replace(b"\x10\x00\x10\x00PN", b"\x10\x00\x10\x00QQ")
    assert bad_text != first and bad_vr != second
    return [bad_text, bad_vr, third[:-100]]  # cut in the pixel data: refused as truncated


def _env(port: int, dimse_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_") or k in {
        "DC_KEYS_DIR", "DC_TRUSTED_KEYS"}}
    return env | {"DC_DATA_DIR": "data", "DC_WORKERS": "0", "DC_HOST": "127.0.0.1",
                  "DC_PORT": str(port), "DC_DIMSE_PORT": str(dimse_port),
                  "DC_LOG_FORMAT": "json", "DC_LOG_LEVEL": "INFO"}


def _prepare(data: Path, registry_db: Path) -> dict[Role, str]:
    """An older installation's data folder: 0755, database 0644, keys and a DIMSE sender."""
    previous = os.umask(0o022)
    try:
        data.mkdir(mode=0o755)
        shutil.copy(registry_db, data / "mlflow.db")
        database = data / "digital_contrast.db"
        engine = make_engine(f"sqlite:///{database}")
        upgrade_to_head(engine)
        with session_factory(engine)() as db:
            keys = {role: create_api_key(db, "default-site", f"phi-{role}", role)[1]
                    for role in (Role.CLINICIAN, Role.ADMIN)}
            add_sender(db, SCU, "default-site")
            db.commit()
        engine.dispose()
        for path in data.iterdir():
            path.chmod(0o644)
        data.chmod(0o755)
    finally:
        os.umask(previous)
    return keys


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory,
            empty_registry_db: Path) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("phi-logs")
    keys = _prepare(root / "data", empty_registry_db)
    port, dimse_port = free_port(), free_port()
    out, err = root / "stdout.txt", root / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "digital_contrast", "serve"],
                                   env=_env(port, dimse_port), cwd=root, stdout=stdout,
                                   stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the service did not start:\n{err.read_text()[-3000:]}")
        yield Running(url, dimse_port, keys, root / "data", out, err)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _exercise_http(running: Running) -> None:
    url, clinician = running.url, {"X-API-Key": running.keys[Role.CLINICIAN]}
    good = _good_series("good")
    stored = requests.post(f"{url}/dicomweb/studies", data=_multipart([to_bytes(d) for d in good]),
                           headers=clinician | {"Content-Type": STOW_TYPE}, timeout=60)
    assert stored.status_code == 200, stored.text
    damaged = requests.post(f"{url}/dicomweb/studies", data=_multipart(_damaged_instances()),
                            headers=clinician | {"Content-Type": STOW_TYPE}, timeout=60)
    assert damaged.status_code in (200, 202, 409), damaged.text
    broken_framing = requests.post(f"{url}/dicomweb/studies", data=f"--x\r\n{NAME}\r\n".encode(),
                                   headers=clinician | {"Content-Type": STOW_TYPE}, timeout=60)
    assert broken_framing.status_code >= 400
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as members:
        for index, data in enumerate([to_bytes(d) for d in _good_series("zip")]
                                     + _damaged_instances()):
            members.writestr(f"{index}.dcm", data)
        members.writestr(f"{NAME}.txt", f"{NAME} {PATIENT_ID}")
    uploaded = requests.post(f"{url}/v1/uploads", data=archive.getvalue(),
                             headers=clinician | {"Content-Type": "application/zip"}, timeout=60)
    assert uploaded.status_code < 500, uploaded.text
    study, series, sop = (good[0].StudyInstanceUID, good[0].SeriesInstanceUID,
                          good[0].SOPInstanceUID)
    for path, params in [
            ("/dicomweb/studies", {"PatientName": NAME, "PatientID": PATIENT_ID}),
            ("/dicomweb/studies", {"PatientName": "ZZQ*", "fuzzymatching": "true"}),
            ("/dicomweb/series", {"PatientBirthDate": BIRTH, "AccessionNumber": ACCESSION}),
            ("/dicomweb/studies", {"PatientName": NAME, "limit": NAME}),
            (f"/dicomweb/studies/{study}/metadata", {}),
            (f"/dicomweb/studies/{study}/series/{series}/instances", {"PatientID": PATIENT_ID}),
            (f"/dicomweb/studies/{study}/series/{series}/instances/{sop}", {}),
            (f"/dicomweb/studies/{study}/series/{series}/instances/{NAME}", {}),
            (f"/v1/jobs/{PATIENT_ID}", {})]:
        answer = requests.get(f"{url}{path}", params=params, headers=clinician, timeout=60)
        assert answer.status_code < 500, (path, answer.text)
    # The instance with an unknown VR is refused at intake (it once made this read a 500);
    # what was kept of its study reads back. The unhandled-error path is logged by type and
    # frames only (tests/integration/test_request_ids.py provokes one through uvicorn).
    damaged_study = _good_series("damaged", OTHER_NAME, OTHER_ID)[0].StudyInstanceUID
    unread = requests.get(f"{url}/dicomweb/studies/{damaged_study}/metadata",
                          headers=clinician, timeout=60)
    assert unread.status_code == 200, unread.text
    for headers in ({"Authorization": f"Bearer {FAKE_KEY}"}, {"X-API-Key": FAKE_KEY},
                    {"Authorization": f"Bearer {NAME}"},
                    {"X-API-Key": running.keys[Role.ADMIN]}):  # an admin: no image access
        answer = requests.get(f"{url}/dicomweb/studies", params={"PatientName": NAME},
                              headers=headers, timeout=60)
        assert answer.status_code in (401, 403)
    created = requests.post(f"{url}/v1/keys", json={"name": NAME, "role": "clinician"},
                            headers={"X-API-Key": running.keys[Role.ADMIN]}, timeout=60)
    assert created.status_code < 500


def _exercise_dimse(running: Running) -> None:
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
    from pynetdicom import AE

    def associate(calling: str):
        ae = AE(ae_title=calling)
        ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
        return ae.associate("127.0.0.1", running.dimse_port, ae_title="DIGCONTRAST")

    assoc = associate(SCU)
    assert assoc.is_established
    good, no_pixels = _good_series("dimse", n=2)
    del no_pixels.PixelData
    assert assoc.send_c_store(good).Status == 0x0000
    assert assoc.send_c_store(no_pixels).Status != 0x0000
    assoc.release()
    assert not associate("UNKNOWNSCU").is_established


def _file_modes(data: Path) -> None:
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # (mlflow.db, copied in beforehand, holds no patient data and is left as it was.)
    for name in ("digital_contrast.db", "digital_contrast.db-wal", "digital_contrast.db-shm"):
        path = data / name
        assert not path.exists() or stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert (data / "digital_contrast.db-wal").exists()  # open: the -wal was checked too
    files = [p for p in (data / "instances").rglob("*")]
    assert any(p.is_file() for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


@pytest.mark.req("SRS-LOG-002")
@pytest.mark.req("SRS-LOG-003")
@pytest.mark.req("SRS-LOG-001")
@pytest.mark.req("SRS-LOG-005")
def test_no_patient_data_or_secret_in_anything_the_service_writes(running: Running) -> None:
    _exercise_http(running)
    _exercise_dimse(running)
    _file_modes(running.data)
    with sqlite3.connect(running.data / "digital_contrast.db") as db:  # it did store them
        assert db.execute("SELECT count(*) FROM studies WHERE patient_name = ?",
                          (NAME,)).fetchone()[0] == 3  # STOW, zip and C-STORE
    time.sleep(0.5)  # let the service finish writing what it logs after answering
    outputs = {"stdout": running.out.read_text(), "stderr": running.err.read_text()}
    outputs |= {str(p): p.read_text(errors="replace")
                for p in running.data.parent.rglob("*.log")}
    forbidden = [NAME, "ZZQPHI", OTHER_NAME, "ZZQOTHER", PATIENT_ID, OTHER_ID, BIRTH,
                 "19ZZ0413", ACCESSION, FAKE_KEY.split("_", 2)[2], "ZZQfake",
                 *[key.split("_", 2)[2] for key in running.keys.values()], "Traceback"]
    for where, text in outputs.items():
        found = [value for value in forbidden if value in text]
        assert not found, f"{found} in {where}:\n{text[-3000:]}"
    lines = [json.loads(line) for line in outputs["stderr"].splitlines()
             if line.startswith("{")]
    loggers = {line["logger"] for line in lines}
    # The damaged instances made pydicom speak: the scrubber, not silence, kept them out.
    assert loggers & {"pydicom", "py.warnings"}, loggers
    assert any(line.get("event") == "http.request" and line.get("request_id")
               for line in lines)
    assert all(line.get("request_id") for line in lines  # the STOW reader thread's too
               if line["message"].startswith(("intake via stow-rs", "intake via zip")))
    assert any(line["logger"].startswith("digital_contrast.dimse") for line in lines)
