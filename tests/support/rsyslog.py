"""Debian's rsyslog as the site's audit repository, on loopback: TCP, UDP and TLS (gtls,
client certificates required) inputs, every message it parsed written as its RFC 5424 fields
(protocol version, facility, severity, app name, procid, msgid, structured data, msg)."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.tls import ThrowawayCA

FIELDS = ("version", "facility", "severity", "app", "procid", "msgid", "sd", "msg")


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rsyslog:
    def __init__(self, folder: Path, ca: ThrowawayCA) -> None:
        if shutil.which("rsyslogd") is None:
            pytest.fail("rsyslogd is missing: the audit export tests need Debian's rsyslog and "
                        "rsyslog-gnutls (`make test` installs them)")
        self.folder, self.out = folder, folder / "received.log"
        (folder / "work").mkdir(parents=True, exist_ok=True)
        self.tcp, self.tls, self.udp = _free_port(), _free_port(), _free_port(socket.SOCK_DGRAM)
        cert, key = ca.issue("127.0.0.1", server=True)
        for name, data in (("ca.pem", ca.pem()), ("cert.pem", cert), ("key.pem", key)):
            (folder / name).write_bytes(data)
        template = "|".join(f"%{p}%" for p in (
            "protocol-version", "syslogfacility", "syslogseverity", "app-name", "procid",
            "msgid", "structured-data", "msg"))
        (folder / "rsyslog.conf").write_text(f"""
global(workDirectory="{folder / 'work'}" maxMessageSize="64k"
       DefaultNetstreamDriverCAFile="{folder / 'ca.pem'}"
       DefaultNetstreamDriverCertFile="{folder / 'cert.pem'}"
       DefaultNetstreamDriverKeyFile="{folder / 'key.pem'}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp}")
input(type="imtcp" address="127.0.0.1" port="{self.tls}" streamDriver.name="gtls"
      streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
input(type="imudp" address="127.0.0.1" port="{self.udp}")
template(name="fields" type="string" string="{template}\\n")
action(type="omfile" file="{self.out}" template="fields")
""")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Rsyslog":
        self.process = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(self.folder / "rsyslog.conf"),
             "-i", str(self.folder / "rsyslogd.pid")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.tcp), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    output = self.process.communicate()[0].decode(errors="replace")
                    pytest.fail(f"rsyslogd did not start: {output[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def received(self, count: int, timeout_s: float = 20) -> list[dict[str, str]]:
        """The first `count` messages rsyslog wrote, parsed into their fields."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.out.read_text().splitlines() if self.out.exists() else []
            if len(lines) >= count or time.monotonic() > deadline:
                return [dict(zip(FIELDS, line.split("|", len(FIELDS) - 1), strict=True))
                        for line in lines]
            time.sleep(0.1)
