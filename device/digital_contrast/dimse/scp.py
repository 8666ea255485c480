"""The C-STORE / C-ECHO SCP (pynetdicom).

An association is accepted only from an enabled sender (calling AE title, and its address when
one is set), which names the site its images belong to; the others are rejected (permanent,
calling AE title not recognised). Presentation contexts are offered for the SOP classes the
intake accepts, in the transfer syntaxes the series reader decodes losslessly; any other SOP
class or transfer syntax is refused at negotiation. Each C-STORE runs the intake's checks on
the data set exactly as received and is stored in its own transaction before its status is
returned; a data set cut off by an abort or a dropped connection never reaches the handler,
so nothing of it is stored. Statuses are those of the intake (PS3.4 Table B.2-1, PS3.7 C.4).
"""

import errno
import logging
import threading
from weakref import WeakKeyDictionary

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from digital_contrast.intake import (
    DEFAULT_ACCEPTED_SOP_CLASSES,
    FailedInstance,
    FailureReason,
    ingest,
    validate_instance,
)
from digital_contrast.keys.folder import keys_folder
from digital_contrast.keys.tls import server_context
from digital_contrast.service import ServiceState
from digital_contrast.store.audit import append_audit
from digital_contrast.store.dicom_senders import sender_for

log = logging.getLogger(__name__)
SUCCESS = 0x0000
CHANNEL = "c-store"
# Lossless only: a synthesis from lossy-compressed input would inherit its artefacts.
ACCEPTED_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEG2000Lossless, RLELossless)
def supported_contexts() -> list[tuple[UID, tuple[UID, ...]]]:
    """What the listener accepts: Verification, and the intake's SOP classes in the lossless
    transfer syntaxes (the conformance statement is generated from this)."""
    return [(UID(Verification), (ImplicitVRLittleEndian,)), *(
        (UID(sop_class), ACCEPTED_TRANSFER_SYNTAXES)
        for sop_class in sorted(DEFAULT_ACCEPTED_SOP_CLASSES))]


# A-ASSOCIATE-RJ: rejected-permanent, by the service user, calling AE title not recognised;
# rejected-transient, by the service user, no reason given (e.g. the database is down).
_REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)
_REJECT_TRANSIENT = (0x02, 0x01, 0x01)


class StorageSCP:
    """The listener of one service process; `start()` binds it, `stop()` ends every association."""

    def __init__(self, state: ServiceState) -> None:
        settings = state.settings
        self.state = state
        self.ae_title = settings.dimse_ae_title
        self.max_instance_bytes = settings.max_upload_bytes
        ae = AE(ae_title=settings.dimse_ae_title)
        ae.maximum_associations = settings.dimse_max_associations
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.dimse_timeout_s
        for sop_class, syntaxes in supported_contexts():
            ae.add_supported_context(sop_class, list(syntaxes))
        self._ae = ae
        self._server: ThreadedAssociationServer | None = None
        self._sites: WeakKeyDictionary[Association, tuple[str, str]] = WeakKeyDictionary()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the DIMSE listener is not started")
        return int(self._server.server_address[1])

    def start(self, host: str | None = None, port: int | None = None) -> int:
        """Bind (port 0: any free port) and serve in background threads; returns the port."""
        settings = self.state.settings
        address = (host or settings.dimse_host,
                   settings.dimse_port if port is None else port)
        if address[1] is None:
            raise ValueError("no DIMSE port: set DC_DIMSE_PORT")
        handlers = [(evt.EVT_REQUESTED, self._on_requested), (evt.EVT_C_ECHO, self._on_echo),
                    (evt.EVT_C_STORE, self._on_store)]
        tls = server_context(keys_folder(settings)) if settings.dimse_tls else None
        self._server = self._ae.start_server(address, block=False, evt_handlers=handlers,
                                             ssl_context=tls)
        log.info("DIMSE listener %s on %s:%d%s", self.ae_title, address[0], self.port,
                 " (TLS)" if tls else "")
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # --- handlers (each runs in the association's own thread) ---------------------------

    def _on_requested(self, event: Event) -> None:
        assoc = event.assoc
        calling = assoc.requestor.primitive.calling_ae_title
        address = assoc.requestor.address
        try:
            self._accept_or_reject(assoc, calling, address)
        except Exception as exc:  # fail closed: an unchecked association is never accepted
            log.error("DIMSE association from AE %r rejected: %s while checking it",
                      calling.strip(), type(exc).__name__)
            assoc.acse.send_reject(*_REJECT_TRANSIENT)
            assoc.kill()

    def _accept_or_reject(self, assoc: Association, calling: str, address: str) -> None:
        with self.state.sessions() as db:
            sender = sender_for(db, calling, address)
            if sender is None:
                append_audit(db, self.state.settings.site, f"dimse:{calling.strip()}",
                             "dimse.associate", "association", None, "refused",
                             {"calling_ae_title": calling.strip(), "address": address,
                              "reason": "not an enabled sender from this address"})
                db.commit()
                log.warning("DIMSE association from AE %r at %s rejected: not an enabled "
                            "sender from this address", calling.strip(), address)
                assoc.acse.send_reject(*_REJECT_UNKNOWN_CALLER)
                assoc.kill()  # as pynetdicom's own rejections: waits until the PDU is sent
                return
            with self._lock:
                self._sites[assoc] = (sender.site, sender.ae_title)

    def _on_echo(self, event: Event) -> int:
        return SUCCESS

    def _on_store(self, event: Event) -> int | Dataset:
        with self._lock:
            known = self._sites.get(event.assoc)
        if known is None:  # only if the acceptance itself failed: never store unattributed
            return int(FailureReason.PROCESSING_FAILURE)
        site, ae_title = known
        data = event.encoded_dataset(include_meta=True)
        if len(data) > self.max_instance_bytes:
            return self._refused(ae_title, FailureReason.OUT_OF_RESOURCES,
                                 "larger than DC_MAX_UPLOAD_BYTES")
        checked = validate_instance(data)
        if isinstance(checked, FailedInstance):
            refused = self._refused(ae_title, FailureReason(checked.failure_reason),
                                    f"{checked.code}: {checked.detail}")
            return _with_comment(refused, checked.code)
        try:
            with self.state.sessions() as db:
                outcome = ingest(self.state.instances, db, site, f"dimse:{ae_title}",
                                 [checked], CHANNEL)
        except OSError as exc:
            status = (FailureReason.OUT_OF_RESOURCES if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                      else FailureReason.PROCESSING_FAILURE)
            return self._refused(ae_title, status, f"storage failed ({type(exc).__name__})")
        except Exception as exc:  # any failure is a DICOM status, never a dropped association
            return self._refused(ae_title, FailureReason.PROCESSING_FAILURE,
                                 f"storage failed ({type(exc).__name__})")
        if outcome.failed:
            _, reason, detail = outcome.failed[0]
            return self._refused(ae_title, reason, detail)
        return SUCCESS

    @staticmethod
    def _refused(ae_title: str, reason: FailureReason, detail: str) -> int:
        # `detail` is written by the intake for people and names no patient data.
        log.warning("C-STORE from AE %r refused with 0x%04X %s: %s", ae_title, int(reason),
                    reason.name, detail)
        return int(reason)


def _with_comment(status: int, code: str) -> Dataset:
    """The C-STORE response with the intake's code as its Error Comment (0000,0902; LO, at
    most 64 characters): the sender's log shows why, not only the status."""
    response = Dataset()
    response.Status = status
    response.ErrorComment = code[:64]
    return response
