"""The DIMSE listener with pynetdicom as the sending modality (a `storescu` in Python): C-ECHO,
C-STORE of a series into the same store as STOW-RS, and every bad association or data set
answered with a DICOM status or a rejection, nothing half-stored."""

import io
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, MRImageStorage
from pynetdicom import AE, evt
from sqlalchemy import select

from digital_contrast.dimse import StorageSCP
from digital_contrast.phantom.export import Phase
from digital_contrast.store import AuditEvent, Instance
from digital_contrast.store.dicom_senders import add_sender, set_sender_enabled
from tests.support.service import make_settings, running_service

CT = "1.2.840.10008.5.1.4.1.1.2"
MODALITY = "CT_SCANNER_1"


@pytest.fixture(scope="module")
def dimse(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("dimse"), empty_registry_db,
                             dimse_ae_title="DC_TEST", dimse_max_associations=2)
    with running_service(settings) as service:
        with service.state.sessions() as db:
            add_sender(db, MODALITY, settings.site, description="test modality")
            add_sender(db, "ELSEWHERE", settings.site, host="10.1.2.3")
            add_sender(db, "RETIRED", settings.site)
            set_sender_enabled(db, "RETIRED", False)
            db.commit()
        scp = StorageSCP(service.state)
        port = scp.start("127.0.0.1", 0)
        try:
            yield service, port
        finally:
            scp.stop()


def _associate(port: int, calling: str = MODALITY, *, syntaxes=(ExplicitVRLittleEndian,),
               sop_classes=(CT,), handlers=None):
    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.1.1")
    for sop_class in sop_classes:
        ae.add_requested_context(sop_class, list(syntaxes))
    return ae.associate("127.0.0.1", port, ae_title="DC_TEST", evt_handlers=handlers or [])


def _stored(service) -> dict[str, Instance]:
    with service.state.sessions() as db:
        return {i.sop_instance_uid: i for i in db.scalars(select(Instance))}


def _audit(service, action: str) -> list[AuditEvent]:
    with service.state.sessions() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.mark.req("SRS-DIMSE-001")
def test_a_known_sender_echoes_and_stores_a_series_retrievable_like_stow(
        dimse, phantom_series) -> None:
    service, port = dimse
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    assoc = _associate(port)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    statuses = [assoc.send_c_store(pydicom.dcmread(path)).Status for path in files]
    assoc.release()
    assert statuses == [0x0000] * len(files)
    stored = _stored(service)
    first = pydicom.dcmread(files[0])
    for path in files:
        sent = pydicom.dcmread(path)
        row = stored[str(sent.SOPInstanceUID)]
        assert row.site == service.settings.site
        kept = pydicom.dcmread(service.state.instances.path(row.file_path))
        assert kept.PixelData == sent.PixelData and kept.SeriesInstanceUID == \
            first.SeriesInstanceUID
    response = service.client.get(
        f"/dicomweb/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}",
        headers=service.headers())
    assert response.status_code == 200 and response.content.count(b"DICM") == len(files)
    audit = _audit(service, "intake.c-store")
    assert audit and all(e.actor == f"dimse:{MODALITY}" for e in audit)


@pytest.mark.req("SRS-DIMSE-002")
@pytest.mark.parametrize("calling", ["UNKNOWN_AE", "ELSEWHERE", "RETIRED"])
def test_associations_from_unknown_disabled_or_misplaced_senders_are_rejected(
        dimse, calling: str) -> None:
    service, port = dimse
    before = len(_audit(service, "dimse.associate"))
    assoc = _associate(port, calling)
    assert assoc.is_rejected and not assoc.is_established
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (1, 1, 3)
    refusals = _audit(service, "dimse.associate")
    assert len(refusals) == before + 1 and refusals[-1].outcome == "refused"
    assert refusals[-1].detail["calling_ae_title"] == calling


@pytest.mark.req("SRS-DIMSE-002")
def test_other_sop_classes_and_lossy_transfer_syntaxes_are_refused_at_negotiation(
        dimse) -> None:
    _, port = dimse
    assoc = _associate(port, sop_classes=(CT, MRImageStorage),
                       syntaxes=(JPEGBaseline8Bit, ExplicitVRLittleEndian))
    try:
        results = {(c.abstract_syntax, c.transfer_syntax[0] if c.transfer_syntax else None):
                   c.result for c in assoc.rejected_contexts + assoc.accepted_contexts}
    finally:
        assoc.release()
    # 0x03: abstract syntax not supported; accepted CT only in a lossless syntax.
    assert {(s, r) for (s, _), r in results.items() if s == MRImageStorage} == \
        {(MRImageStorage, 0x03)}
    accepted = [c for c in assoc.accepted_contexts if c.abstract_syntax == CT]
    assert [c.transfer_syntax[0] for c in accepted] == [ExplicitVRLittleEndian]


def _damaged(path: Path, uid: str, change) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = uid
    change(ds)
    return ds


@pytest.mark.req("SRS-DIMSE-003", "SRS-DCMW-002")
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the bad UID is the point
@pytest.mark.parametrize(("change", "status"), [
    (lambda ds: setattr(ds, "PixelData", ds.PixelData[:100]), 0xA900),  # truncated pixels
    (lambda ds: delattr(ds, "PixelData"), 0xA900),  # an image without pixel data
    (lambda ds: setattr(ds, "SeriesInstanceUID", "not-a-uid"), 0xA900),
    (lambda ds: setattr(ds, "SyntheticData", "YES"), 0xA902),  # our kind of output
    # An MR data set sent in the CT context: its own class is not accepted.
    (lambda ds: setattr(ds, "SOPClassUID", MRImageStorage), 0x0122),
])
def test_bad_data_sets_get_a_failure_status_and_store_nothing(
        dimse, phantom_series, change, status: int) -> None:
    service, port = dimse
    uid = f"1.2.826.0.1.3680043.8.498.7{status}{len(_stored(service))}"
    ds = _damaged(sorted(phantom_series[Phase.NCCT].iterdir())[0], uid, change)
    assoc = _associate(port)
    try:
        context = next(c for c in assoc.accepted_contexts if c.abstract_syntax == CT)
        answer = assoc.send_c_store(ds) if ds.SOPClassUID == CT else \
            _store_in_context(assoc, ds, context.context_id)
    finally:
        assoc.release()
    assert answer.Status == status
    assert uid not in _stored(service)


def _store_in_context(assoc, ds: pydicom.Dataset, context_id: int):
    """A C-STORE whose data set says another SOP class than its presentation context."""
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = CT
    request.AffectedSOPInstanceUID = ds.SOPInstanceUID
    request.Priority = 2
    request.DataSet = io.BytesIO(encode(ds, False, True))  # Explicit VR Little Endian
    # Paused reactor, as pynetdicom's own send_c_*: it would otherwise take the response.
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        assoc.dimse.send_msg(request, context_id)
        _, response = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    return response


@pytest.mark.req("SRS-DIMSE-003")
@pytest.mark.parametrize("how", ["a-abort", "dropped connection"])
def test_an_instance_cut_off_mid_transfer_is_not_stored(dimse, phantom_series, how) -> None:
    service, port = dimse
    ds = pydicom.dcmread(sorted(phantom_series[Phase.NCCT].iterdir())[1])
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.8{len(how)}"
    ds.PixelData = bytes(4 * 1024 * 1024)  # many PDUs: cut after the third
    ds.Rows = ds.Columns = 1024
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    sent = {"pdus": 0}
    cut = threading.Event()

    def on_sent(event) -> None:
        if type(event.pdu).__name__ == "P_DATA_TF":
            sent["pdus"] += 1
            if sent["pdus"] == 3 and not cut.is_set():
                cut.set()
                sock = event.assoc.dul.socket.socket
                if how == "a-abort":  # an A-ABORT PDU between two fragments of the data set
                    sock.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
                sock.shutdown(2)

    assoc = _associate(port, handlers=[(evt.EVT_PDU_SENT, on_sent)])
    try:
        assoc.send_c_store(ds)
    except Exception:  # the SCU sees its own abort or the broken socket
        pass
    finally:
        assoc.abort()
    assert cut.is_set()
    assert ds.SOPInstanceUID not in _stored(service)


@pytest.mark.req("SRS-DIMSE-002")
def test_associations_beyond_the_limit_are_rejected_as_transient(dimse) -> None:
    _, port = dimse
    held = [_associate(port) for _ in range(2)]
    try:
        assert all(a.is_established for a in held)
        extra = _associate(port)
        assert extra.is_rejected
        rejection = extra.acceptor.primitive
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (2, 3, 2)
    finally:
        for assoc in held:
            assoc.release()
    # The acceptor's thread ends just after the release reply, so a modality retrying a
    # transient rejection gets in once it has: poll as it would, never for ever.
    deadline = time.monotonic() + 30
    again = _associate(port)
    while not again.is_established and time.monotonic() < deadline:
        rejection = again.acceptor.primitive
        assert again.is_rejected and rejection.result == 2  # transient, never permanent
        time.sleep(0.05)
        again = _associate(port)
    assert again.is_established
    again.release()


@pytest.mark.req("SRS-DIMSE-003", "SRS-STORE-003")
def test_a_resent_instance_is_harmless_and_other_content_under_its_uid_is_refused(
        dimse, phantom_series) -> None:
    from pydicom.uid import ImplicitVRLittleEndian

    service, port = dimse
    ds = pydicom.dcmread(sorted(phantom_series[Phase.NCCT].iterdir())[2])
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.4242"
    first = _associate(port)
    assert first.send_c_store(ds).Status == 0x0000
    first.release()
    kept = _stored(service)[ds.SOPInstanceUID].sha256
    # The same data set in another transfer syntax: other bytes, the same instance.
    again = _associate(port, syntaxes=(ImplicitVRLittleEndian,))
    assert again.send_c_store(ds).Status == 0x0000
    changed = pydicom.dcmread(sorted(phantom_series[Phase.NCCT].iterdir())[2])
    changed.SOPInstanceUID = ds.SOPInstanceUID
    changed.PixelData = bytes(len(changed.PixelData))  # another image under the same UID
    assert again.send_c_store(changed).Status == 0x0110
    again.release()
    assert _stored(service)[ds.SOPInstanceUID].sha256 == kept


@pytest.mark.req("SRS-DIMSE-005")
def test_the_conformance_statement_lists_what_an_association_negotiates(
        dimse, tmp_path: Path) -> None:
    """Every storage SOP class pynetdicom knows, in every transfer syntax it knows (lossy ones
    included), proposed at once: what is accepted is what the statement's table lists."""
    import re

    from pynetdicom import AE, build_context
    from pynetdicom.presentation import StoragePresentationContexts
    from typer.testing import CliRunner

    from digital_contrast.cli import app

    result = CliRunner().invoke(app, ["qms", "conformance", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "dicom-conformance-statement.md").read_text()
    scp = text.split("### 2.1")[1].split("### 2.2")[0]
    listed = {(row[0], syntax) for row in re.findall(r"^\| [^|]+ \| `([0-9.]+)` \| (.+) \| SCP \|$",
                                                     scp, re.MULTILINE)
              for syntax in re.findall(r"`([0-9.]+)`", row[1])}
    syntaxes = sorted({s for _, s in listed} | {"1.2.840.10008.1.2.4.50",
                                                  "1.2.840.10008.1.2.4.91"})
    _, port = dimse
    accepted: set[tuple[str, str]] = set()
    classes = [c.abstract_syntax for c in StoragePresentationContexts] + \
        ["1.2.840.10008.1.1"]
    for offset in range(0, len(classes), 120):  # at most 128 contexts per association
        for syntax in syntaxes:  # one syntax per context, so each answer is about it
            ae = AE(ae_title=MODALITY)
            ae.requested_contexts = [build_context(c, syntax)
                                     for c in classes[offset:offset + 120]]
            assoc = ae.associate("127.0.0.1", port, ae_title="DC_TEST")
            if assoc.is_established:
                accepted |= {(c.abstract_syntax, syntax) for c in assoc.accepted_contexts}
                assoc.release()
    assert accepted == listed


@pytest.mark.req("SRS-DIMSE-002")
def test_an_association_that_cannot_be_checked_is_rejected_never_accepted(
        dimse, monkeypatch: pytest.MonkeyPatch) -> None:
    from digital_contrast.dimse import scp

    def unreachable(*args: object) -> None:
        raise ConnectionError("database down")

    _, port = dimse
    monkeypatch.setattr(scp, "sender_for", unreachable)
    assoc = _associate(port)
    assert assoc.is_rejected and not assoc.is_established
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (2, 1, 1)
