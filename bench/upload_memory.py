"""Peak memory of the service while it receives one 2 GB upload, beside Orthanc receiving the
same bytes in the same run.

One STOW-RS request of phantom CT slices (512 x 512, every part with new fixed-length UIDs,
so its size is known up front and sent with Content-Length), streamed by the client from a
generator so that the client holds one part at a time; then the same size as one zip upload
(ours only: Orthanc has no zip upload route). The resident set of the server process is sampled
every 100 ms; printed: idle RSS, peak RSS, growth, and the throughput. The target (issue 18):
bounded memory per request, far below the upload's size.

    .venv/bin/python bench/upload_memory.py [--gigabytes 2] [--no-orthanc]
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import (
    BenchError,
    Server,
    ensure_orthanc,
    make_template,
    orthanc,
    our_service,
)

SLICES = 40  # distinct phantom slices cycled through; every part gets new UIDs
_uid_counter = itertools.count(10**38)


def _uid() -> str:
    return f"2.25.{next(_uid_counter):039d}"  # always 44 characters: parts of equal size


def _part(template: list, index: int, study: str, series: str) -> bytes:
    ds = template[index % len(template)]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class Body:
    """A multipart/related body of `count` parts, generated while it is sent."""

    boundary = "b0undary-of-the-memory-bench"

    def __init__(self, template: list, total_bytes: int) -> None:
        self.template = template
        self.study, self.series = _uid(), _uid()
        self.part_bytes = len(_part(template, 0, self.study, self.series))
        self.head = f"--{self.boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        self.count = max(1, total_bytes // (self.part_bytes + len(self.head) + 2))
        self.length = self.count * (len(self.head) + self.part_bytes + 2) + \
            len(f"--{self.boundary}--\r\n")

    def __iter__(self) -> Iterator[bytes]:
        for index in range(self.count):
            part = _part(self.template, index, self.study, self.series)
            if len(part) != self.part_bytes:
                raise BenchError("a part changed size: UIDs must have a fixed length")
            yield self.head + part + b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()

    def __len__(self) -> int:  # requests then sends Content-Length, not chunks
        return self.length

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="application/dicom"; boundary={self.boundary}'


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """The largest resident set of a process while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.idle = rss_bytes(pid)

    def __enter__(self) -> PeakRss:
        def sample() -> None:
            while not self._stop.wait(0.1):
                self.peak = max(self.peak, rss_bytes(self.pid))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def upload(server: Server, pid: int, body: Body) -> dict:
    with PeakRss(pid) as rss:
        started = time.perf_counter()
        response = requests.post(server.stow_url, data=body, timeout=3600, headers={
            **server.headers, "Content-Type": body.content_type})
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchError(f"{server.name} answered {response.status_code} to the STOW-RS "
                         f"upload: {response.text[:300]}{server.log_tail(response.status_code)}")
    return {"bytes": body.length, "seconds": seconds, "idle": rss.idle, "peak": rss.peak}


def zip_upload(server: Server, pid: int, template: list, total_bytes: int,
               folder: Path) -> dict:
    archive = folder / "upload.zip"
    body = Body(template, total_bytes)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as out:
        for index in range(body.count):
            out.writestr(f"{index:06d}.dcm", _part(template, index, body.study, body.series))
    size = archive.stat().st_size
    with PeakRss(pid) as rss, archive.open("rb") as handle:  # a file: streamed, with its size
        started = time.perf_counter()
        response = requests.post(f"{server.base}/v1/uploads", data=handle, timeout=3600,
                                 headers={**server.headers, "Content-Type": "application/zip"})
        seconds = time.perf_counter() - started
    archive.unlink()
    if response.status_code != 201:
        raise BenchError(f"the zip upload was answered {response.status_code}: "
                         f"{response.text[:300]}{server.log_tail(response.status_code)}")
    return {"bytes": size, "seconds": seconds, "idle": rss.idle, "peak": rss.peak}


def _pid(server: Server) -> int:
    """The process listening on the server's port (ours: python; Orthanc: Orthanc)."""
    port = int(server.base.rsplit(":", 1)[1])
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
            inode = fields[9]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(Path(f"/proc/{proc.name}/fd/{fd}").readlink().name == f"socket:[{inode}]"
                   for fd in (p.name for p in (proc / "fd").iterdir())):
                return int(proc.name)
        except OSError:
            continue
    raise BenchError(f"no process listens on port {port}")


def line(name: str, what: str, result: dict) -> str:
    mib = 1024**2
    return (f"| {name} | {what} | {result['bytes'] / 1e9:.2f} GB | {result['idle'] / mib:.0f} "
            f"| {result['peak'] / mib:.0f} | {(result['peak'] - result['idle']) / mib:.0f} | "
            f"{result['bytes'] / 1e6 / result['seconds']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args()
    total = int(args.gigabytes * 1e9)
    rows = []
    with tempfile.TemporaryDirectory(prefix="upload-memory-") as tmp:
        root = Path(tmp)
        template = make_template(root / "template", SLICES)
        print(f"input: {total / 1e9:.2f} GB per upload of phantom CT slices "
              f"({len(template)} distinct, 512x512, new UIDs per part)", flush=True)
        with our_service(root / "ours", jobs=False) as (server, _):
            pid = _pid(server)
            rows.append(line("ours", "STOW-RS", upload(server, pid, Body(template, total))))
            rows.append(line("ours", "zip", zip_upload(server, pid, template, total, root)))
        plugin = None if args.no_orthanc else ensure_orthanc()
        if plugin is not None:
            with orthanc(root, plugin) as server:
                rows.append(line("Orthanc", "STOW-RS",
                                 upload(server, _pid(server), Body(template, total))))
        else:
            print("Orthanc: not measured (--no-orthanc, or its packages are missing)")
    print("| server | upload | size | idle RSS MiB | peak RSS MiB | growth MiB | MB/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"upload_memory: {exc}")
