"""Results to a DIMSE destination: a C-STORE SCU association (pynetdicom) proposing, for each
SOP class to send, the destination's transfer syntaxes in its order of preference (default
Explicit then Implicit VR Little Endian). An instance goes in the syntax the peer accepted:
native syntaxes are re-encoded by pynetdicom, a compressed one is encoded with pydicom (RLE,
JPEG-LS, JPEG 2000 lossless); float pixel data (Parametric Map) is only offered native.
Success and warning statuses count as accepted (PS3.4 B.2.3)."""

import ssl
from pathlib import Path

import pydicom
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE

from digital_contrast.delivery.outcome import SendOutcome

DEFAULT_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# What a result can be sent as: native, or compressed losslessly by pydicom's encoders here.
SENDABLE_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless,
                     JPEGLSLossless, JPEG2000Lossless)
# The SOP classes of a result: the synthetic series, Parametric Maps, Secondary Captures.
RESULT_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.30",
                      "1.2.840.10008.5.1.4.1.1.7")
_NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_ACCEPTED_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}
_FLOAT_CLASSES = {RESULT_SOP_CLASSES[1]}  # Parametric Map Storage


def _offered(sop_class: str, preferred: list[UID]) -> list[UID]:
    if sop_class in _FLOAT_CLASSES:
        native = [s for s in preferred if s in _NATIVE]
        return native or [ExplicitVRLittleEndian]
    return preferred


def send_by_c_store(files: list[Path], *, our_ae_title: str, ae_title: str, host: str,
                    port: int, transfer_syntaxes: list[str], timeout_s: float,
                    tls: ssl.SSLContext | None = None) -> SendOutcome:
    outcome = SendOutcome()
    preferred = [UID(s) for s in transfer_syntaxes] or list(DEFAULT_SYNTAXES)
    headers = [(path, pydicom.dcmread(path, stop_before_pixels=True)) for path in files]
    ae = AE(ae_title=our_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class in sorted({str(h.SOPClassUID) for _, h in headers}):
        ae.add_requested_context(sop_class, _offered(sop_class, preferred))
    assoc = ae.associate(host, port, ae_title=ae_title,
                         tls_args=(tls, host) if tls is not None else None)
    if not assoc.is_established:
        if assoc.is_rejected:
            rj = assoc.acceptor.primitive
            outcome.problems.append(f"association rejected (result {rj.result}, source "
                                    f"{rj.result_source}, reason {rj.diagnostic})")
        else:
            outcome.problems.append("no association (peer unreachable or aborted)")
        return outcome
    try:
        accepted = {c.abstract_syntax: UID(c.transfer_syntax[0]) for c in assoc.accepted_contexts}
        for path, header in headers:
            sop_class = str(header.SOPClassUID)
            syntax = accepted.get(sop_class)
            if syntax is None:
                outcome.problems.append(f"{UID(sop_class).name or sop_class} refused by the "
                                        "peer at negotiation")
                outcome.retryable = False
                continue
            if not assoc.is_established:
                outcome.problems.append("association lost during the transfer")
                break
            status = assoc.send_c_store(_encoded_for(path, syntax))
            code = int(getattr(status, "Status", -1)) if status else -1
            if code in _ACCEPTED_STATUSES:
                outcome.sent += 1
            else:
                outcome.problems.append("no response (timeout or abort)" if code < 0
                                        else f"status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return outcome


def _encoded_for(path: Path, syntax: UID) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    if syntax.is_compressed and ds.file_meta.TransferSyntaxUID != syntax:
        # Lossless: the same instance in another encoding keeps its SOP Instance UID
        # (pydicom would otherwise make a new one).
        ds.compress(syntax, generate_instance_uid=False)
    return ds
