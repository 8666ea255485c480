"""RFC 5424 syslog messages and their transport to the audit repository.

IHE ATNA: facility 10 (security/authorization), MSGID "IHE+RFC-3881", the DICOM audit XML as
MSG. Over TCP and TLS each message is octet-counted (RFC 5425 / RFC 6587 3.4.1: "LEN SP MSG"),
over UDP one datagram each (RFC 5426). Syslog has no acknowledgement: a connection the
repository closed is noticed before writing, but what the kernel accepted just before the
repository crashed can be lost (docs/operations.md, 'Audit'). The trail's proof rides in
structured data under the example enterprise number 32473 (RFC 5612): no number is
registered for this product.
"""

from __future__ import annotations

import select
import socket
import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from digital_contrast.errors import DigitalContrastError
from digital_contrast.store.tables import AuditEvent

FACILITY_AUTHPRIV = 10
MSGID = "IHE+RFC-3881"
SD_ID = "dc-audit@32473"
APP_NAME = "digital-contrast"
UDP_MAX = 65_000  # a datagram larger than this is refused rather than cut
Transport = Literal["tcp", "tls", "udp"]


class SyslogError(DigitalContrastError):
    """AUDIT_SYSLOG_INVALID (a target that cannot be used) or AUDIT_SYSLOG_UNREACHABLE."""


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, or NILVALUE."""
    token = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return token or "-"


def rfc5424(event: AuditEvent, message: bytes, hostname: str, procid: str) -> bytes:
    """The syslog message of `event` carrying `message` (the audit XML)."""
    severity = 5 if event.outcome == "success" else 4  # notice, or warning
    params = {"seq": str(event.seq), "hash": event.hash, "key": event.key_id or "",
              "mac": event.mac or "", "site": event.site}
    sd = f"[{SD_ID} " + " ".join(f'{k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
    header = (f"<{FACILITY_AUTHPRIV * 8 + severity}>1 "
              f"{event.at.isoformat(timespec='microseconds')} "
              f"{_header_token(hostname, 255)} {APP_NAME} {_header_token(procid, 128)} {MSGID}")
    return f"{header} {sd} ".encode("ascii") + message


@dataclass(frozen=True)
class SyslogTarget:
    transport: Transport
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> SyslogTarget:
        """`tcp://host:port`, `tls://host:port` or `udp://host:port`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            port, parts = None, None
        if parts is None or parts.scheme not in ("tcp", "tls", "udp") or not parts.hostname \
                or port is None or parts.username or parts.path not in ("", "/"):
            raise SyslogError("AUDIT_SYSLOG_INVALID",
                              "DC_AUDIT_SYSLOG must be tcp://, tls:// or udp://host:port")
        return cls(parts.scheme, parts.hostname, port)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return f"{self.transport}://{self.host}:{self.port}"


class SyslogSender:
    """One connection to the target, opened on first use and after a failure."""

    def __init__(self, target: SyslogTarget, tls: ssl.SSLContext | None = None,
                 timeout_s: float = 10.0) -> None:
        if target.transport == "tls" and tls is None:
            raise SyslogError("AUDIT_SYSLOG_INVALID", "a tls:// target needs a TLS context")
        self.target, self.tls, self.timeout_s = target, tls, timeout_s
        self._socket: socket.socket | None = None

    def send(self, messages: list[bytes]) -> None:
        """Send every message, in order; AUDIT_SYSLOG_UNREACHABLE when the target cannot
        take them (the connection is dropped, to be opened again on the next call)."""
        try:
            if self.target.transport == "udp":
                self._send_datagrams(messages)
            else:
                self._connected().sendall(b"".join(b"%d %s" % (len(m), m) for m in messages))
        except OSError as exc:
            self.close()
            raise SyslogError("AUDIT_SYSLOG_UNREACHABLE",
                              f"{self.target.name}: {type(exc).__name__}") from None

    def _send_datagrams(self, messages: list[bytes]) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(
            self.target.host, self.target.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as udp:
            for message in messages:
                if len(message) > UDP_MAX:
                    raise SyslogError("AUDIT_SYSLOG_INVALID",
                                      f"a {len(message)}-byte audit message does not fit a "
                                      "datagram: use tcp:// or tls://")
                udp.sendto(message, address)

    def _connected(self) -> socket.socket:
        if self._socket is not None and _closed_by_peer(self._socket):
            self.close()  # a restarted repository: writing now would vanish into the void
        if self._socket is None:
            raw = socket.create_connection((self.target.host, self.target.port),
                                           timeout=self.timeout_s)
            self._socket = raw if self.tls is None else self.tls.wrap_socket(
                raw, server_hostname=self.target.host)
        return self._socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _closed_by_peer(sock: socket.socket) -> bool:
    """The repository sends nothing back, so anything readable means it closed (or reset)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    if not isinstance(sock, ssl.SSLSocket):
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
    timeout = sock.gettimeout()  # TLS: records such as session tickets are readable too
    sock.setblocking(False)
    try:
        sock.recv(1)  # closed (b""), or data a repository never sends: start afresh
        return True
    except ssl.SSLWantReadError:
        return False  # only TLS housekeeping was there
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)
