"""De-identification rules one by one: keyed pseudonyms, refusals, what is recorded in the
instance, cleaning of descriptions, the private safe-list file."""

import copy
import re

import numpy as np
import pytest
from pydicom.dataset import Dataset

from digital_contrast.repository.deid.clean import clean_text, identifier_words
from digital_contrast.repository.deid.deidentify import Deidentifier, refusal
from digital_contrast.repository.deid.profile import Option
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.deid.safe_private import load_safe_private
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.ingest import site_secret_name

KEY_A = SiteKey("site-a", bytes(range(32)))
KEY_B = SiteKey("site-b", bytes(range(1, 33)))


def _ct() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.PatientName = "Doe^John"
    ds.PatientID = "MRN123456"
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "M"
    ds.PatientAge = "074Y"
    ds.StudyDate = "20240315"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC998877"
    ds.InstitutionName = "St Elsewhere Hospital"
    ds.StationName = "CT01"
    ds.SeriesDescription = "Abdomen PV 70s Doe John"
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelData = np.zeros((4, 4), dtype=np.int16).tobytes()
    return ds


@pytest.mark.req("SRS-REPO-002")
def test_pseudonyms_are_keyed_stable_and_unlinkable() -> None:
    assert KEY_A.uid("1.2.3") == KEY_A.uid("1.2.3") != KEY_A.uid("1.2.4")
    assert KEY_A.uid("1.2.3") != KEY_B.uid("1.2.3")
    assert re.fullmatch(r"2\.25\.[1-9]\d*", KEY_A.uid("1.2.3")) and len(KEY_A.uid("1.2.3")) <= 64
    assert KEY_A.patient("MRN1") == KEY_A.patient("MRN1") != KEY_B.patient("MRN1")
    assert KEY_A.patient("MRN1") != KEY_A.patient("MRN1", issuer="OTHER")
    offsets = {KEY_A.date_offset_days(f"MRN{i}") for i in range(200)}
    assert min(offsets) >= 365 and max(offsets) <= 3652 and len(offsets) > 150
    assert "\\x00\\x01" not in repr(KEY_A) and str(bytes(range(32))) not in repr(KEY_A)
    with pytest.raises(ValueError):
        SiteKey("site-a", b"short")


@pytest.mark.req("SRS-REPO-001", "SRS-REPO-002")
def test_one_instance_deidentified_and_what_was_done_recorded() -> None:
    original = _ct()
    before = copy.deepcopy(original)
    out = Deidentifier(KEY_A).deidentify(original)
    assert original == before  # the input is never changed
    assert out.PatientID == out.PatientName == KEY_A.patient("MRN123456")
    assert out.StudyInstanceUID == KEY_A.uid("1.2.3.4")
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID == KEY_A.uid(
        "1.2.3.4.5.6.7")
    offset = KEY_A.date_offset_days("MRN123456")
    import datetime as dt

    assert out.StudyDate == (dt.date(2024, 3, 15) - dt.timedelta(days=offset)).strftime("%Y%m%d")
    assert out.StudyTime == "101500"  # whole days: the time of day stays
    assert (out.PatientSex, out.PatientAge, out.StationName) == ("M", "074Y", "CT01")
    assert "AccessionNumber" not in out or not out.AccessionNumber
    assert "InstitutionName" not in out or not out.InstitutionName
    assert out.SeriesDescription == "ABDOMEN PV 70S"
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", *sorted(str(o) for o in Option)]
    assert all(i.CodingSchemeDesignator == "DCM" for i in out.DeidentificationMethodCodeSequence)
    text = str(out)
    for identifying in ("Doe", "MRN123456", "ACC998877", "Elsewhere", "19500101", "20240315"):
        assert identifying not in text


@pytest.mark.req("SRS-REPO-003")
@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # 'yes ' is planted on purpose
@pytest.mark.parametrize(("change", "code"), [
    (lambda ds: setattr(ds, "BurnedInAnnotation", "YES"), "DEID_BURNED_IN"),
    (lambda ds: setattr(ds, "BurnedInAnnotation", "yes "), "DEID_BURNED_IN"),
    (lambda ds: setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7"),
     "DEID_SECONDARY_CAPTURE"),
    (lambda ds: setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7.4"),
     "DEID_SECONDARY_CAPTURE"),
    (lambda ds: setattr(ds, "ImageType", ["DERIVED", "SECONDARY", "SCREEN SAVE"]),
     "DEID_SECONDARY_CAPTURE"),
    (lambda ds: delattr(ds, "PixelData"), "DEID_NOT_IMAGE"),
])
def test_what_cannot_be_deidentified_safely_is_refused(change, code) -> None:
    ds = _ct()
    change(ds)
    assert refusal(ds).code == code
    with pytest.raises(RepositoryError) as raised:
        Deidentifier(KEY_A).deidentify(ds)
    assert raised.value.code == code
    assert "Doe" not in str(raised.value) and "MRN" not in str(raised.value)


@pytest.mark.req("SRS-REPO-001")
def test_descriptions_keep_acquisition_words_only() -> None:
    ids = identifier_words(["DOE^JOHN", "MRN123456", "St Elsewhere Hospital"])
    assert clean_text("CT Abdomen PV 1.0 B30f", ids) == "CT ABDOMEN PV 1.0 B30F"
    assert clean_text("Portal venous - Dr Smith 0171 555 1234", ids) == "PORTAL VENOUS"
    assert clean_text("JOHN DOE 19500101 abdomen", ids) == "ABDOMEN"
    assert clean_text("ABDOMEN 5MM 120KV", ids, max_length=10) == "ABDOMEN 5M"[:10].strip()
    assert clean_text("MRN123456", ids) == ""


@pytest.mark.req("SRS-REPO-001")
def test_safe_private_list_file(tmp_path) -> None:
    good = tmp_path / "safe.yaml"
    good.write_text("- {creator: GEMS_PARM_01, group: 0x0043, element: 0x27}\n")
    assert {(e.creator, e.group, e.element) for e in load_safe_private(good)} == {
        ("GEMS_PARM_01", 0x43, 0x27)}
    for text in ("- {creator: X, group: 0x0010, element: 1}\n", "just text\n",
                 "- {creator: X, group: 9}\n"):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(RepositoryError) as raised:
            load_safe_private(bad)
        assert raised.value.code == "DEID_SAFE_LIST_INVALID"


@pytest.mark.req("SRS-REPO-002")
@pytest.mark.parametrize("site", ["", "A", "Site_A", "../keys", "-a", "a" * 41])
def test_a_site_id_must_name_a_key_file_safely(site) -> None:
    with pytest.raises(RepositoryError) as raised:
        site_secret_name(site)
    assert raised.value.code == "DEID_SITE_INVALID"
    assert site_secret_name("site-a") == "deid-site-site-a"


@pytest.mark.req("SRS-REPO-002")
def test_without_a_patient_id_each_study_is_its_own_patient() -> None:
    first, second = _ct(), _ct()
    for ds, study in ((first, "1.2.3.4"), (second, "1.2.3.99")):
        ds.PatientID = ""
        ds.StudyInstanceUID = study
    one, two = (Deidentifier(KEY_A).deidentify(ds) for ds in (first, second))
    assert one.PatientID != two.PatientID  # strangers are not linked
    assert one.PatientID == Deidentifier(KEY_A).deidentify(first).PatientID


@pytest.mark.req("SRS-REPO-001")
@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_a_date_that_cannot_be_read_is_removed_not_kept() -> None:
    ds = _ct()
    ds.AcquisitionDate = "15.03.2024"
    out = Deidentifier(KEY_A).deidentify(ds)
    assert "AcquisitionDate" not in out and "StudyDate" in out
