"""One audit event as a DICOM Audit Message (PS3.15 A.5, the IHE ATNA schema).

The event's action decides the DICOM event (EventID and action code); the requesting user is
the event's actor, the device is the second participant, the site is the audit enterprise
site, and the event's object is a system object named `<type>/<id>` (it is a job, key, model
or delivery id, never a patient identifier). The trail's own proof (sequence, hash, seal)
travels in the syslog structured data, beside the message.
"""

import base64
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

from digital_contrast.store.tables import AuditEvent


@dataclass(frozen=True)
class DicomEvent:
    code: str  # DCM code of EventID
    meaning: str
    action: str  # EventActionCode: C(reate), R(ead), U(pdate), D(elete), E(xecute)
    type_code: tuple[str, str] | None = None  # EventTypeCode (DCM), where one applies


APPLICATION_ACTIVITY = DicomEvent("110100", "Application Activity", "E")
SECURITY_ALERT = DicomEvent("110113", "Security Alert", "E", ("110137", "User Security "
                                                              "Attributes Changed"))
# By the action's first word; anything else is application activity.
_EVENTS = {
    "upload": DicomEvent("110107", "Import", "C"),
    "intake": DicomEvent("110107", "Import", "C"),
    "result": DicomEvent("110103", "DICOM Instances Accessed", "R"),
    "delivery": DicomEvent("110106", "Export", "R"),
    "purge": DicomEvent("110105", "DICOM Study Deleted", "D"),
    # a researcher's search or cohort read of the series index: identifiers, not images
    "repository": DicomEvent("110112", "Query", "E"),
    "dashboard": DicomEvent("110114", "User Authentication", "E"),
    "key": SECURITY_ALERT, "signing": SECURITY_ALERT, "audit": SECURITY_ALERT,
    "sender": SECURITY_ALERT, "destination": SECURITY_ALERT,
    "registry": DicomEvent("110113", "Security Alert", "E", ("110129", "Software "
                                                                "Configuration")),
}
_LOGIN = {"dashboard.login": ("110122", "Login"), "dashboard.logout": ("110123", "Logout")}
_OUTCOMES = {"success": "0", "refused": "4", "failure": "4"}  # otherwise 8: serious failure


def dicom_event(action: str) -> DicomEvent:
    event = _EVENTS.get(action.split(".", 1)[0], APPLICATION_ACTIVITY)
    if action in _LOGIN:
        event = DicomEvent(event.code, event.meaning, event.action, _LOGIN[action])
    return event


def _code(parent: Element, tag: str, code: str, system: str, meaning: str) -> None:
    SubElement(parent, tag, {"csd-code": code, "codeSystemName": system,
                             "originalText": meaning})


def audit_message(event: AuditEvent, source_id: str) -> bytes:
    """The XML of `event` (UTF-8, no declaration), `source_id` naming this installation."""
    kind = dicom_event(event.action)
    root = Element("AuditMessage")
    identification = SubElement(root, "EventIdentification", {
        "EventActionCode": kind.action,
        "EventDateTime": event.at.isoformat(timespec="milliseconds"),
        "EventOutcomeIndicator": _OUTCOMES.get(event.outcome, "8")})
    _code(identification, "EventID", kind.code, "DCM", kind.meaning)
    if kind.type_code:
        code, meaning = kind.type_code
        _code(identification, "EventTypeCode", code, "DCM", meaning)
    SubElement(root, "ActiveParticipant", {"UserID": event.actor, "UserIsRequestor": "true"})
    device = SubElement(root, "ActiveParticipant", {"UserID": source_id,
                                                    "UserIsRequestor": "false"})
    _code(device, "RoleIDCode", "110150", "DCM", "Application")
    source = SubElement(root, "AuditSourceIdentification", {
        "AuditEnterpriseSiteID": event.site, "AuditSourceID": source_id})
    _code(source, "AuditSourceTypeCode", "4", "DCM", "Application Server Process")
    target = SubElement(root, "ParticipantObjectIdentification", {
        "ParticipantObjectID": f"{event.object_type}/{event.object_id or ''}",
        "ParticipantObjectTypeCode": "2"})  # system object
    _code(target, "ParticipantObjectIDTypeCode", "12", "RFC-3881", "URI")
    SubElement(target, "ParticipantObjectDetail", {
        "type": "action", "value": base64.b64encode(event.action.encode()).decode("ascii")})
    return tostring(root, encoding="utf-8", xml_declaration=False)
