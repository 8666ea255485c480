"""Instance files (content addressed, checked on read) and ingest rows with the QIDO queries."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from digital_contrast import MANUFACTURER
from digital_contrast.store import InstanceStore, Origin, StoreError
from digital_contrast.store.studies import (
    get_series,
    instance_set_sha256,
    list_instances,
    list_series,
    list_studies,
    record_instance,
    series_instance_counts,
    study_stats,
)
from digital_contrast.store.tables import Instance, Series, Study
from tests.support.databases import dicom_header, run_concurrently


def _ingest(session, store: InstanceStore, site: str = "site-a", data: bytes | None = None,
            **header):
    ds = dicom_header(**header)
    return record_instance(session, site, ds, store.put(data or ds.SOPInstanceUID.encode()))


# --- content-addressed files ----------------------------------------------------------------

@pytest.mark.req("SRS-STORE-002")
def test_put_is_content_addressed_atomic_and_idempotent(instance_store: InstanceStore) -> None:
    stored = instance_store.put(b"DICM-bytes")
    sha = stored.sha256
    assert stored.path == f"{sha[:2]}/{sha[2:4]}/{sha}.dcm" and stored.size == 10
    assert instance_store.put(b"DICM-bytes") == stored
    assert instance_store.read(stored.path, sha) == b"DICM-bytes"
    with instance_store.open(stored.path, sha) as handle:
        assert handle.read() == b"DICM-bytes"
    leftovers = [p for p in instance_store.root.rglob("*") if p.name.startswith(".tmp")]
    assert leftovers == []
    assert instance_store.delete(stored.path) and not instance_store.delete(stored.path)


@pytest.mark.req("SRS-STORE-002")
def test_a_batch_is_made_durable_by_one_sync(instance_store: InstanceStore, monkeypatch) -> None:
    from digital_contrast.store import instance_store as module

    fsyncs: list[int] = []
    real_fsync = module.os.fsync
    monkeypatch.setattr(module.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    batch = [instance_store.put(f"instance {k}".encode(), sync=False) for k in range(3)]
    assert fsyncs == []  # durability is left to the batch's sync
    instance_store.sync()  # syncfs(2) of the store's filesystem on Linux
    assert [instance_store.read(s.path, s.sha256) for s in batch] == \
        [f"instance {k}".encode() for k in range(3)]
    synced: list[bool] = []
    monkeypatch.setattr(module, "_LIBC", object())  # a platform without syncfs
    monkeypatch.setattr(module.os, "sync", lambda: synced.append(True))
    instance_store.sync()
    assert synced == [True]
    instance_store.put(b"single", sync=True)
    assert len(fsyncs) == 2  # a lone put fsyncs its file and its folder


@pytest.mark.req("SRS-STORE-002")
def test_a_changed_or_missing_file_is_refused(instance_store: InstanceStore) -> None:
    stored = instance_store.put(b"original")
    (instance_store.root / stored.path).write_bytes(b"tampered")
    for read in (instance_store.read, instance_store.open):
        with pytest.raises(StoreError) as info:
            read(stored.path, stored.sha256)
        assert info.value.code == "INSTANCE_CORRUPT"
    assert instance_store.put(b"original") == stored  # a damaged file is healed by a new put
    assert instance_store.read(stored.path, stored.sha256) == b"original"
    instance_store.delete(stored.path)
    with pytest.raises(StoreError) as info:
        instance_store.read(stored.path, stored.sha256)
    assert info.value.code == "INSTANCE_MISSING"
    with pytest.raises(StoreError):
        instance_store.read("../../etc/passwd", stored.sha256)


@pytest.mark.req("SRS-STORE-002")
def test_a_failed_write_leaves_no_partial_file(instance_store: InstanceStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("digital_contrast.store.instance_store.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        instance_store.put(b"never stored")
    assert [p for p in instance_store.root.rglob("*") if p.is_file()] == []


# --- ingest rows ----------------------------------------------------------------------------

@pytest.mark.req("SRS-STORE-003")
def test_ingest_upserts_study_and_series_and_adds_instances(store_sessions,
                                                            instance_store: InstanceStore,
                                                            ) -> None:
    with store_sessions() as session:
        first = _ingest(session, instance_store, sop="1.2.3.1.1.1", InstanceNumber=1)
        second = _ingest(session, instance_store, sop="1.2.3.1.1.2", InstanceNumber=2)
        session.commit()
        assert first.series_id == second.series_id
        series = session.get(Series, first.series_id)
        study = series.study
        assert (study.patient_id, study.patient_name, study.study_date,
                study.accession_number) == ("PAT-1", "Doe^Jane", "20260101", "ACC-1")
        assert (series.modality, series.series_number, series.image_type, series.origin,
                series.synthetic) == ("CT", 3, "ORIGINAL\\PRIMARY\\AXIAL", Origin.RECEIVED,
                                      False)
        assert series.updated_at >= series.created_at
        assert instance_store.read(first.file_path, first.sha256) == b"1.2.3.1.1.1"
        assert session.scalar(select(func.count()).select_from(Study)) == 1


@pytest.mark.req("SRS-STORE-003")
def test_duplicate_is_a_no_op_and_other_content_a_conflict(store_sessions,
                                                          instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        first = _ingest(session, instance_store)
        session.commit()
    with store_sessions() as session:
        again = _ingest(session, instance_store)
        assert again.id == first.id
        with pytest.raises(StoreError) as info:
            _ingest(session, instance_store, data=b"other pixels, same UID")
        assert info.value.code == "INSTANCE_CONFLICT"
        # The same UID at another site is another site's instance, not a conflict.
        other_site = _ingest(session, instance_store, site="site-b")
        session.commit()
        assert other_site.id != first.id and other_site.file_path == first.file_path
        assert session.scalar(select(func.count()).select_from(Instance)) == 2


@pytest.mark.req("SRS-STORE-003")
@pytest.mark.filterwarnings("ignore:.*VR UI:UserWarning")  # pydicom on the bad values we set
def test_headers_without_valid_uids_are_refused(store_sessions,
                                                instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        for bad in ({"sop": ""}, {"series": "1.2.x"}, {"study": "1." + "2" * 70}):
            with pytest.raises(StoreError) as info:
                _ingest(session, instance_store, **bad)
            assert info.value.code == "INSTANCE_INVALID"
            assert "x" not in info.value.detail and "222" not in info.value.detail


@pytest.mark.req("SRS-STORE-003")
def test_synthetic_series_are_flagged(store_sessions, instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        ours = _ingest(session, instance_store, series="1.2.3.1.2", sop="1.2.3.1.2.1",
                       Manufacturer=MANUFACTURER, ImageType=["DERIVED", "SECONDARY", "AXIAL"])
        phantom = _ingest(session, instance_store, series="1.2.3.1.5", sop="1.2.3.1.5.1",
                          Manufacturer=MANUFACTURER)  # our phantom's ORIGINAL test input
        labelled = _ingest(session, instance_store, series="1.2.3.1.3", sop="1.2.3.1.3.1",
                           SyntheticData="YES")
        produced = record_instance(session, "site-a", dicom_header(
            series="1.2.3.1.4", sop="1.2.3.1.4.1", SyntheticData="YES"),
            instance_store.put(b"produced"), Origin.PRODUCED)
        session.flush()
        assert ours.series.synthetic and labelled.series.synthetic
        assert not phantom.series.synthetic
        assert produced.series.origin is Origin.PRODUCED


@pytest.mark.req("SRS-STORE-003")
def test_concurrent_ingest_of_one_new_series_makes_one_study_and_series(
        store_sessions, instance_store: InstanceStore) -> None:
    def ingest(k: int) -> None:
        with store_sessions() as session:
            _ingest(session, instance_store, sop=f"1.2.3.1.1.{k + 1}")
            session.commit()

    assert run_concurrently(ingest, 4) == []
    with store_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 1
        assert session.scalar(select(func.count()).select_from(Series)) == 1
        assert session.scalar(select(func.count()).select_from(Instance)) == 4


@pytest.mark.req("SRS-STORE-005")
def test_instance_set_hash_is_order_independent(store_sessions,
                                                instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        rows = [_ingest(session, instance_store, sop=f"1.2.3.1.1.{k}") for k in (3, 1, 2)]
        digest = instance_set_sha256(rows)
        assert digest == instance_set_sha256(reversed(rows))
        assert digest == instance_set_sha256([(r.sop_instance_uid, r.sha256) for r in rows])
        assert digest != instance_set_sha256(rows[:2]) and len(digest) == 64


# --- queries --------------------------------------------------------------------------------

@pytest.fixture
def three_studies(store_sessions, instance_store: InstanceStore) -> None:
    with store_sessions() as session:
        _ingest(session, instance_store, study="1.9.1", series="1.9.1.1", sop="1.9.1.1.1",
                PatientID="PAT-1", StudyDate="20250105", AccessionNumber="ACC-100")
        _ingest(session, instance_store, study="1.9.1", series="1.9.1.2", sop="1.9.1.2.1",
                Modality="SR", SeriesNumber=9)
        _ingest(session, instance_store, study="1.9.1", series="1.9.1.1", sop="1.9.1.1.2",
                InstanceNumber=2)
        _ingest(session, instance_store, study="1.9.2", series="1.9.2.1", sop="1.9.2.1.1",
                PatientID="PAT-2", StudyDate="20250301", AccessionNumber="ACC-200",
                Modality="MR")
        _ingest(session, instance_store, study="1.9.3", series="1.9.3.1", sop="1.9.3.1.1",
                PatientID="pat-1", StudyDate="20260101")
        _ingest(session, instance_store, site="site-b", study="1.9.4", series="1.9.4.1",
                sop="1.9.4.1.1", PatientID="PAT-1")
        session.commit()


def _uids(studies: list[Study]) -> list[str]:
    return [s.study_instance_uid for s in studies]


QUERIES = [
    ({}, ["1.9.1", "1.9.2", "1.9.3"]),
    ({"patient_id": "PAT-1"}, ["1.9.1"]),
    ({"patient_id": "PAT-*"}, ["1.9.1", "1.9.2"]),
    ({"patient_id": "?AT-?"}, ["1.9.1", "1.9.2"]),
    ({"study_instance_uid": "1.9.2\\1.9.3"}, ["1.9.2", "1.9.3"]),
    ({"study_instance_uid": ["1.9.4"]}, []),
    ({"study_date": "20250301"}, ["1.9.2"]),
    ({"study_date": "20250101-20251231"}, ["1.9.1", "1.9.2"]),
    ({"study_date": "20250201-"}, ["1.9.2", "1.9.3"]),
    ({"study_date": "-20250201"}, ["1.9.1"]),
    ({"accession_number": "ACC-2*"}, ["1.9.2"]),
    ({"modality": "SR"}, ["1.9.1"]),
    ({"modality": ["MR", "SR"]}, ["1.9.1", "1.9.2"]),
    ({"limit": 1, "offset": 1}, ["1.9.2"]),
]


@pytest.mark.req("SRS-STORE-004")
@pytest.mark.usefixtures("three_studies")
def test_study_queries_filter_within_the_site(store_sessions) -> None:
    with store_sessions() as session:
        for filters, expected in QUERIES:
            assert _uids(list_studies(session, "site-a", **filters)) == expected, filters


@pytest.mark.req("SRS-STORE-004")
@pytest.mark.usefixtures("three_studies")
def test_series_instances_and_counts(store_sessions) -> None:
    with store_sessions() as session:
        series = list_series(session, "site-a", "1.9.1")
        assert [s.series_instance_uid for s in series] == ["1.9.1.1", "1.9.1.2"]
        assert list_series(session, "site-b", "1.9.1") == []
        assert [s.series_instance_uid for s in list_series(session, "site-a", "1.9.1",
                                                           modality="SR")] == ["1.9.1.2"]
        instances = list_instances(session, "site-a", "1.9.1", "1.9.1.1")
        assert [i.instance_number for i in instances] == [1, 2]
        assert list_instances(session, "site-a", "1.9.2", "1.9.1.1") == []
        assert list_instances(session, "site-b", "1.9.1", "1.9.1.1") == []
        assert get_series(session, "site-b", "1.9.1.1") is None
        study = list_studies(session, "site-a", study_instance_uid="1.9.1")[0]
        stats = study_stats(session, [study.id])[study.id]
        assert (stats.modalities, stats.series_count, stats.instance_count) == (
            ("CT", "SR"), 2, 3)
        assert series_instance_counts(session, [s.id for s in series]) == {
            series[0].id: 2, series[1].id: 1}


@pytest.mark.req("SRS-STORE-004")
def test_malformed_date_filters_are_refused(store_sessions) -> None:
    with store_sessions() as session:
        for bad in ("2025-01-01", "-", "2025010"):
            with pytest.raises(StoreError) as info:
                list_studies(session, "site-a", study_date=bad)
            assert info.value.code == "QUERY_INVALID"


@pytest.mark.req("SRS-STORE-002")
def test_store_root_for_data_dir(tmp_path: Path) -> None:
    assert InstanceStore.for_data_dir(tmp_path).root == tmp_path / "instances"
