"""The runtime platform as SOUP (IEC 62304 5.3.4, 8.1.2): the Python interpreter with the
OpenSSL and SQLite libraries it runs with, the operating system, the Debian packages the
Makefile installs for the tests, and the database, cache and broker servers of a multi-process
installation, each with the version measured on this machine.

A version is measured, never typed: the interpreter and its libraries from the interpreter
itself (`ssl.OPENSSL_VERSION`, `sqlite3.sqlite_version`), the OS from /etc/os-release, Debian
packages from `dpkg-query -W`, servers by asking them on their default port at
127.0.0.1. What cannot be measured (no dpkg, no server listening, refused login) is recorded as
not measured with the reason, never guessed.
"""

from __future__ import annotations

import hashlib
import platform as stdlib_platform
import re
import shutil
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from digital_contrast.config import REPO_ROOT

MAKEFILE = REPO_ROOT / "Makefile"
OS_RELEASE = Path("/etc/os-release")
DPKG_INFO = Path("/var/lib/dpkg/info")
Kind = Literal["interpreter", "library", "os", "deb", "server"]


@dataclass(frozen=True)
class Measured:
    """One platform component: `version` None when it could not be measured (`source` says why)."""

    name: str
    kind: Kind
    version: str | None
    source: str  # how the version was obtained, or why it was not


def makefile_deb_packages(makefile: Path = MAKEFILE) -> list[str]:
    """TEST_DEB_PACKAGES of the Makefile (backslash continuations followed); none for a tree
    without a Makefile (its Debian entries are then reported as naming nothing)."""
    try:
        text = Path(makefile).read_text(encoding="utf-8").replace("\\\n", " ")
    except FileNotFoundError:
        return []
    match = re.search(r"^TEST_DEB_PACKAGES\s*:?=(.*)$", text, re.MULTILINE)
    return match[1].split() if match else []


def cpython() -> Measured:
    return Measured("cpython", "interpreter", stdlib_platform.python_version(),
                    f"the running interpreter ({sys.executable})")


def runtime_libraries() -> list[Measured]:
    """The OpenSSL (TLS of syslog, DIMSE and DICOMweb) and SQLite (the default store) that the
    interpreter's ssl and sqlite3 modules run with, as they report themselves."""
    openssl = re.match(r"OpenSSL (\S+)", ssl.OPENSSL_VERSION)
    return [Measured("openssl", "library", openssl[1] if openssl else None,
                     f"ssl.OPENSSL_VERSION of the running interpreter ({ssl.OPENSSL_VERSION})"
                     if openssl else f"not measured: ssl.OPENSSL_VERSION is {ssl.OPENSSL_VERSION}"),
            Measured("sqlite", "library", sqlite3.sqlite_version,
                     "sqlite3.sqlite_version of the running interpreter")]


def operating_system(path: Path = OS_RELEASE) -> Measured:
    try:
        fields = dict(line.split("=", 1) for line in Path(path).read_text().splitlines()
                      if "=" in line)
    except OSError as exc:
        return Measured("debian", "os", None, f"not measured: {path} unreadable ({exc})")
    name, version = fields.get("ID", "").strip('"'), fields.get("VERSION_ID", "").strip('"')
    # Only Debian is assessed; another OS is reported under its own name so that the check
    # finds no entry for it rather than comparing it with Debian's version.
    return Measured(name or "unknown-os", "os", version or None, f"{path} (VERSION_ID)")


def deb_packages(names: list[str]) -> dict[str, Measured]:
    """`dpkg-query -W` of each package; not measured where dpkg is absent or it is not installed."""
    if shutil.which("dpkg-query") is None:
        return {n: Measured(n, "deb", None, "not measured: dpkg-query not found") for n in names}
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Status}\t${Version}\n",
                           *names], capture_output=True, text=True, check=False, timeout=30)
    found = {}
    for line in done.stdout.splitlines():
        package, status, version = [*line.split("\t"), "", ""][:3]
        if status.endswith(" installed") and version:
            found[package.split(":")[0]] = version
    return {n: Measured(n, "deb", found.get(n), "dpkg-query -W" if n in found else
                        "not measured: not installed (dpkg-query -W)") for n in names}


def deb_manifest_hash(package: str, info_dir: Path = DPKG_INFO) -> str | None:
    """SHA-256 of dpkg's list of the package's files with their MD5 sums, None without one."""
    # Multi-arch libraries name their files <package>:<arch>.md5sums.
    for path in [Path(info_dir) / f"{package}.md5sums",
                 *sorted(Path(info_dir).glob(f"{package}:*.md5sums"))]:
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def redis_version(host: str, port: int, timeout_s: float) -> str:
    """`INFO server` over RESP; refused when the server asks for a password."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        header = b""
        while not header.endswith(b"\r\n"):
            header += _recv_exactly(sock, 1)
        if not header.startswith(b"$"):
            raise ConnectionError(header.decode(errors="replace").strip())
        body = _recv_exactly(sock, int(header[1:]) + 2).decode()
    match = re.search(r"^redis_version:(\S+)", body, re.MULTILINE)
    if match is None:
        raise ConnectionError("INFO server without redis_version")
    return match[1]


def _field_table(data: bytes) -> dict[str, object]:
    """An AMQP 0-9-1 field table: long strings and nested tables read, other types skipped."""
    sizes = {"t": 1, "b": 1, "B": 1, "s": 2, "u": 2, "I": 4, "i": 4, "l": 8, "L": 8, "f": 4,
             "d": 8, "D": 5, "T": 8, "V": 0}
    table: dict[str, object] = {}
    at = 0
    while at < len(data):
        key = data[at + 1:at + 1 + data[at]].decode()
        at += 1 + data[at]
        kind = chr(data[at])
        at += 1
        if kind in ("S", "F", "x", "A"):
            (length,) = struct.unpack_from(">I", data, at)
            raw = data[at + 4:at + 4 + length]
            at += 4 + length
            table[key] = raw.decode(errors="replace") if kind == "S" else (
                _field_table(raw) if kind == "F" else raw)
        elif kind in sizes:
            at += sizes[kind]
        else:
            raise ConnectionError(f"AMQP field type {kind!r} not understood")
    return table


def rabbitmq_version(host: str, port: int, timeout_s: float) -> str:
    """The `version` server property of AMQP Connection.Start, which the broker sends before
    any login: no credentials needed."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        frame_type, _, size = struct.unpack(">BHI", _recv_exactly(sock, 7))
        payload = _recv_exactly(sock, size)
    class_id, method_id = struct.unpack_from(">HH", payload, 0)
    if (frame_type, class_id, method_id) != (1, 10, 10):
        raise ConnectionError("no AMQP 0-9-1 Connection.Start from the server")
    (length,) = struct.unpack_from(">I", payload, 6)
    version = _field_table(payload[10:10 + length]).get("version")
    if not isinstance(version, str):
        raise ConnectionError("Connection.Start without a version property")
    return version


def postgresql_version(host: str, port: int, timeout_s: float) -> str:
    """`server_version` that the server reports at login (as user postgres, database postgres:
    a server that refuses that login is not measured)."""
    import psycopg  # the store's driver, a runtime dependency; imported only when measuring

    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres",
                         connect_timeout=max(1, round(timeout_s))) as connection:
        reported = connection.info.parameter_status("server_version") or ""
    return reported.split()[0]  # "15.20 (Debian 15.20-0+deb12u1)" -> "15.20"


Probe = Callable[[str, int, float], str]
SERVERS: dict[str, tuple[int, Probe]] = {
    "postgresql-server": (5432, postgresql_version),
    "redis-server": (6379, redis_version),
    "rabbitmq-server": (5672, rabbitmq_version),
}


def server(name: str, *, host: str = "127.0.0.1", timeout_s: float = 2.0) -> Measured:
    port, probe = SERVERS[name]
    try:
        return Measured(name, "server", probe(host, port, timeout_s),
                        f"reported by the server at {host}:{port}")
    except Exception as exc:  # any failure to ask is "not measured", with its reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Measured(name, "server", None, f"not measured: {host}:{port} ({reason})")


def measure_platform(makefile: Path = MAKEFILE, *, timeout_s: float = 2.0) -> dict[str, Measured]:
    """Every platform component of the device, by name, with its measured version."""
    found = [cpython(), *runtime_libraries(), operating_system(),
             *deb_packages(makefile_deb_packages(makefile)).values(),
             *(server(name, timeout_s=timeout_s) for name in SERVERS)]
    return {m.name: m for m in found}
