"""A real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) on loopback, as the hospital PACS
peer of the integration tests: its own storage, DICOM port and configuration. A missing binary
or plugin fails the test that needs it (`make test` installs both); it never skips."""

import json
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
AE_TITLE = "ORTHANC"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Orthanc:
    rest: str  # REST API root
    dicom_port: int
    ae_title: str
    log: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.rest}/dicom-web"

    def get(self, path: str) -> Any:
        response = requests.get(f"{self.rest}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any, timeout: float = 120) -> Any:
        response = requests.post(f"{self.rest}{path}", json=body, timeout=timeout)
        assert response.status_code == 200, f"Orthanc {path}: {response.status_code} " \
            f"{response.text[:500]}\n{self.log_tail()}"
        return response.json()

    def upload(self, files: Iterable[Path]) -> list[str]:
        """Store files through Orthanc's REST API; returns their Orthanc study ids."""
        studies = set()
        for path in files:
            response = requests.post(f"{self.rest}/instances", data=path.read_bytes(), timeout=30)
            response.raise_for_status()
            studies.add(response.json()["ParentStudy"])
        return sorted(studies)

    def sop_instance_uids(self, series_instance_uid: str | None = None) -> set[str]:
        """SOP Instance UIDs Orthanc holds (of one series when given)."""
        return set(self._instances(series_instance_uid))

    def files(self, series_instance_uid: str | None = None) -> dict[str, bytes]:
        """The files Orthanc holds (of one series when given), by SOP Instance UID."""
        return {uid: requests.get(f"{self.rest}/instances/{orthanc_id}/file", timeout=30).content
                for uid, orthanc_id in self._instances(series_instance_uid).items()}

    def _instances(self, series_instance_uid: str | None) -> dict[str, str]:
        query = {"SeriesInstanceUID": series_instance_uid} if series_instance_uid else {}
        found = self.post("/tools/find", {"Level": "Instance", "Expand": True,
                                          "Query": query})
        return {item["MainDicomTags"]["SOPInstanceUID"]: item["ID"] for item in found}

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextmanager
def running_orthanc(folder: Path, *, dicomweb_servers: dict[str, dict] | None = None,
                    modalities: dict[str, list] | None = None,
                    ae_title: str = AE_TITLE) -> Iterator[Orthanc]:
    """Orthanc with its DICOMweb plugin and DICOM server on free loopback ports.

    `dicomweb_servers` and `modalities` are Orthanc's own `DicomWeb.Servers` and
    `DicomModalities` settings: the peers Orthanc pushes to.
    """
    for needed in (ORTHANC_BIN, DICOMWEB_PLUGIN):
        if not needed.exists():
            raise RuntimeError(f"{needed} is missing: the integration peer is Debian's "
                               "orthanc and orthanc-dicomweb (`make test` installs them)")
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "digital-contrast-test-peer", "HttpPort": http_port, "DicomPort": dicom_port,
        "DicomAet": ae_title, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "storage"),
        "Plugins": [str(DICOMWEB_PLUGIN)], "DicomModalities": modalities or {},
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/",
                     "Servers": dicomweb_servers or {}},
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = folder / "orthanc.log"
    rest = f"http://127.0.0.1:{http_port}"
    with log.open("w") as out:
        process = subprocess.Popen([str(ORTHANC_BIN), "--verbose", str(folder / "orthanc.json")],
                                   stdout=out, stderr=subprocess.STDOUT)
    peer = Orthanc(rest, dicom_port, ae_title, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {process.returncode}:\n{peer.log_tail()}")
            try:
                if requests.get(f"{rest}/system", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not answer within 60 s:\n{peer.log_tail()}")
            time.sleep(0.2)
        yield peer
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
