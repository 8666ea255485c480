"""Audit export (software item SI-ATNA): the audit trail sent to the site's audit repository as
IHE ATNA audit messages (DICOM PS3.15 A.5 XML) in RFC 5424 syslog over TCP, TLS (RFC 5425) or
UDP (RFC 5426), at least once and in order, resuming where it stopped."""

from digital_contrast.atna.exporter import AuditExporter, audit_sender, start_audit_export
from digital_contrast.atna.message import audit_message
from digital_contrast.atna.syslog import SyslogTarget, rfc5424

__all__ = ["AuditExporter", "SyslogTarget", "audit_message", "audit_sender", "rfc5424",
           "start_audit_export"]
