"""Ingest (study/series/instance rows for a stored file) and the QIDO-RS queries over them.

Every query is filtered by site. Functions flush but never commit: the caller owns the unit
of work (one STOW request = one transaction).
"""

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydicom import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digital_contrast import MANUFACTURER
from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.enums import Origin
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.instance_store import StoredFile
from digital_contrast.store.tables import Base, Instance, Series, Study

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DA = re.compile(r"^\d{8}$")
M = TypeVar("M", bound=Base)


# --- reading the header ---------------------------------------------------------------------

def _uid(header: Dataset, keyword: str, *, required: bool = True) -> str | None:
    value = str(header.get(keyword, "") or "").strip()
    if not value and not required:
        return None
    if len(value) > 64 or not _UID.match(value):
        # The value itself stays out of the message: UIDs can identify a patient's study.
        raise StoreError(StoreErrorCode.INSTANCE_INVALID, f"{keyword} is missing or not a UID")
    return value


def _text(header: Dataset, keyword: str) -> str | None:
    value = header.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)  # multi-valued, e.g. ImageType
    return str(value).strip() or None


def _int(header: Dataset, keyword: str) -> int | None:
    try:
        return int(str(header.get(keyword, "")).strip())
    except ValueError:
        return None


def is_synthetic(header: Dataset) -> bool:
    """SyntheticData YES, or a DERIVED image of our own Manufacturer: output of this (or a
    similar) device. (Our phantom's ORIGINAL series are test inputs, not our output.)"""
    image_type = header.get("ImageType") or []
    derived = "DERIVED" in ([image_type] if isinstance(image_type, str) else list(image_type))
    return (str(header.get("SyntheticData", "")).upper() == "YES"
            or (str(header.get("Manufacturer", "")) == MANUFACTURER and derived))


# --- ingest ---------------------------------------------------------------------------------

def _get_or_create(session: Session, model: type[M], keys: dict[str, Any],
                   values: dict[str, Any]) -> M:
    """One row per natural key, also when two transactions insert it at the same moment."""
    query = select(model).filter_by(**keys)
    row = session.scalars(query).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = model(**keys, **values)
            session.add(row)
        return row
    except IntegrityError:  # another transaction won the race: use its row
        return session.scalars(query).one()


# Whether a stored row and a new file hold the same instance although their bytes differ.
SameContent = Callable[[Instance, StoredFile], bool]


def record_instance(session: Session, site: str, dataset_header: Dataset,
                    stored: StoredFile | tuple[str, str, int],
                    origin: Origin | str = Origin.RECEIVED) -> Instance:
    """Upsert the study and series of a stored file and add its instance row.

    The same SOP Instance UID with the same content is a no-op returning the existing row;
    with other content it is refused (INSTANCE_CONFLICT), as is a header without valid
    Study/Series/SOP Instance UIDs (INSTANCE_INVALID).
    """
    (outcome,) = record_instances(session, site, [(dataset_header, stored)], origin)
    if isinstance(outcome, StoreError):
        raise outcome
    return outcome


def _study_values(header: Dataset) -> dict[str, Any]:
    return {
        "patient_id": _text(header, "PatientID"),
        "patient_name": _text(header, "PatientName"),
        "study_date": d if (d := _text(header, "StudyDate")) and _DA.match(d) else None,
        "accession_number": _text(header, "AccessionNumber"),
        "study_description": _text(header, "StudyDescription"),
    }


def _series_values(header: Dataset, study: Study, origin: Origin) -> dict[str, Any]:
    return {
        "study_id": study.id,
        "modality": _text(header, "Modality"),
        "series_description": _text(header, "SeriesDescription"),
        "series_number": _int(header, "SeriesNumber"),
        "body_part_examined": _text(header, "BodyPartExamined"),
        "image_type": _text(header, "ImageType"),
        "origin": origin,
        "synthetic": is_synthetic(header),
    }


def _instance_values(header: Dataset, series: Series, stored: StoredFile) -> dict[str, Any]:
    file_meta = getattr(header, "file_meta", None)
    return {
        "series_id": series.id,
        "sop_class_uid": _uid(header, "SOPClassUID", required=False),
        "instance_number": _int(header, "InstanceNumber"),
        "transfer_syntax_uid": _uid(file_meta, "TransferSyntaxUID", required=False)
        if file_meta is not None else None,
        "file_path": stored.path, "sha256": stored.sha256, "size_bytes": stored.size,
    }


def record_instances(session: Session, site: str,
                     items: Sequence[tuple[Dataset, StoredFile | tuple[str, str, int]]],
                     origin: Origin | str = Origin.RECEIVED, *,
                     same_content: SameContent | None = None) -> list[Instance | StoreError]:
    """`record_instance` for many files in one unit of work (one STOW request, one result
    series): each study and series is resolved once and the instance rows are inserted
    together. The outcome of each item is its row or the StoreError that refused it alone.

    A known SOP Instance UID in a file with other bytes is the same instance when
    `same_content(row, file)` says so (the same data set sent by another channel or peer,
    with its own File Meta or transfer syntax): the row is kept and returned."""
    origin = Origin(origin)
    begin_write(session)
    outcomes: list[Instance | StoreError | None] = [None] * len(items)
    parsed: list[tuple[int, Dataset, StoredFile, str, str, str]] = []
    for index, (header, stored) in enumerate(items):
        try:
            uids = [_uid(header, k) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                               "SOPInstanceUID")]
        except StoreError as exc:
            outcomes[index] = exc
            continue
        study_uid, series_uid, sop_uid = (str(u) for u in uids)
        parsed.append((index, header, StoredFile(*stored), study_uid, series_uid, sop_uid))

    existing: dict[str, Instance] = {}
    sop_uids = [entry[5] for entry in parsed]
    for chunk in range(0, len(sop_uids), 500):
        existing |= {i.sop_instance_uid: i for i in session.scalars(select(Instance).where(
            Instance.site == site, Instance.sop_instance_uid.in_(sop_uids[chunk:chunk + 500])))}
    studies: dict[str, Study] = {}
    series_by_uid: dict[str, Series] = {}
    new: list[tuple[int, Instance]] = []
    for index, header, stored, study_uid, series_uid, sop_uid in parsed:
        known = existing.get(sop_uid)
        if known is not None:
            try:
                outcomes[index] = _same_or_conflict(known, stored, same_content)
            except StoreError as exc:
                outcomes[index] = exc
            continue
        study = studies.get(study_uid) or _get_or_create(
            session, Study, {"site": site, "study_instance_uid": study_uid},
            _study_values(header))
        studies[study_uid] = study
        series = series_by_uid.get(series_uid) or _get_or_create(
            session, Series, {"site": site, "series_instance_uid": series_uid},
            _series_values(header, study, origin))
        series_by_uid[series_uid] = series
        if series.study_id != study.id:
            outcomes[index] = StoreError(StoreErrorCode.INSTANCE_CONFLICT,
                                         "the series is already recorded under another study")
            continue
        instance = Instance(site=site, sop_instance_uid=sop_uid,
                            **_instance_values(header, series, stored))
        existing[sop_uid] = instance  # a repeat within the batch is then a no-op or conflict
        new.append((index, instance))
    now = utcnow()
    for series in series_by_uid.values():
        series.updated_at = now
    try:
        with session.begin_nested():
            session.add_all([instance for _, instance in new])
    except IntegrityError:  # a concurrent writer stored some of them: one by one instead
        for index, instance in new:
            outcomes[index] = _insert_one(session, instance, same_content)
    else:
        for index, instance in new:
            outcomes[index] = instance
    assert all(o is not None for o in outcomes)  # every item got its outcome above
    return outcomes  # type: ignore[return-value]


def _insert_one(session: Session, instance: Instance,
                same_content: SameContent | None) -> Instance | StoreError:
    stored = StoredFile(instance.file_path, instance.sha256, instance.size_bytes)
    row = _get_or_create(session, Instance, {"site": instance.site,
                                             "sop_instance_uid": instance.sop_instance_uid},
                         {k: getattr(instance, k) for k in (
                             "series_id", "sop_class_uid", "instance_number",
                             "transfer_syntax_uid", "file_path", "sha256", "size_bytes")})
    try:
        return _same_or_conflict(row, stored, same_content)
    except StoreError as exc:
        return exc


def _instance_by_uid(session: Session, site: str, sop_uid: str) -> Instance | None:
    return session.scalars(select(Instance).where(
        Instance.site == site, Instance.sop_instance_uid == sop_uid)).first()


def _same_or_conflict(instance: Instance, stored: StoredFile,
                      same_content: SameContent | None = None) -> Instance:
    if instance.sha256 != stored.sha256 and not (same_content and
                                                 same_content(instance, stored)):
        raise StoreError(StoreErrorCode.INSTANCE_CONFLICT,
                         "an instance with this SOP Instance UID is stored with other content")
    return instance


def instance_set_sha256(instances: Iterable[Instance | tuple[str, str]]) -> str:
    """SHA-256 over the sorted (SOP Instance UID, file SHA-256) pairs of a series' instances:
    the identity of exactly what a job read, independent of arrival order."""
    pairs = sorted((i.sop_instance_uid, i.sha256) if isinstance(i, Instance) else tuple(i)
                   for i in instances)
    return hashlib.sha256("".join(f"{uid}\t{sha}\n" for uid, sha in pairs).encode()).hexdigest()


# --- QIDO-RS queries ------------------------------------------------------------------------

def _like(column: Any, pattern: str) -> Any:
    """DICOM wildcard matching (* and ?) or exact match."""
    if "*" not in pattern and "?" not in pattern:
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")


def _date_range(column: Any, value: str) -> Any:
    """DICOM DA matching: a date, or a range `from-`, `-to`, `from-to` (inclusive)."""
    start, dash, end = value.partition("-")
    if not all(_DA.match(part) for part in (start, end) if part) or not (start or end):
        raise StoreError(StoreErrorCode.QUERY_INVALID, "StudyDate must be YYYYMMDD or a range")
    if not dash:
        return column == start
    if start and end:
        return column.between(start, end)
    return column >= start if start else column <= end


def _uids(value: str | Sequence[str]) -> list[str]:
    items = value.replace("\\", ",").split(",") if isinstance(value, str) else list(value)
    return [uid.strip() for uid in items if uid.strip()]


def list_studies(session: Session, site: str, *, patient_id: str | None = None,
                 study_instance_uid: str | Sequence[str] | None = None,
                 study_date: str | None = None, accession_number: str | None = None,
                 modality: str | Sequence[str] | None = None,
                 limit: int = 100, offset: int = 0) -> list[Study]:
    """Studies of a site matching the QIDO-RS study-level filters, oldest record first."""
    query: Select[tuple[Study]] = select(Study).where(Study.site == site)
    if patient_id:
        query = query.where(_like(Study.patient_id, patient_id))
    if study_instance_uid:
        query = query.where(Study.study_instance_uid.in_(_uids(study_instance_uid)))
    if study_date:
        query = query.where(_date_range(Study.study_date, study_date))
    if accession_number:
        query = query.where(_like(Study.accession_number, accession_number))
    if modality:
        query = query.where(select(Series.id).where(
            Series.study_id == Study.id, Series.modality.in_(_uids(modality))).exists())
    return list(session.scalars(query.order_by(Study.id).limit(limit).offset(offset)))


def get_study(session: Session, site: str, study_instance_uid: str) -> Study | None:
    return session.scalars(select(Study).where(
        Study.site == site, Study.study_instance_uid == study_instance_uid)).first()


def get_series(session: Session, site: str, series_instance_uid: str) -> Series | None:
    return session.scalars(select(Series).where(
        Series.site == site, Series.series_instance_uid == series_instance_uid)).first()


def series_uids(session: Session, series_ids: Collection[int]) -> dict[int, str]:
    """Series Instance UIDs by series id, in one query (for a page of jobs)."""
    if not series_ids:
        return {}
    return dict(session.execute(select(Series.id, Series.series_instance_uid)
                                .where(Series.id.in_(series_ids))).all())


def list_series(session: Session, site: str, study_instance_uid: str | Sequence[str] | None, *,
                series_instance_uid: str | Sequence[str] | None = None,
                modality: str | Sequence[str] | None = None,
                patient_id: str | None = None) -> list[Series]:
    """Series of one study (or of the studies given, or of every study: None), by study and
    series number."""
    query = select(Series).join(Study).where(Series.site == site)
    if study_instance_uid:
        query = query.where(Study.study_instance_uid.in_(_uids(study_instance_uid)))
    if patient_id:
        query = query.where(_like(Study.patient_id, patient_id))
    if series_instance_uid:
        query = query.where(Series.series_instance_uid.in_(_uids(series_instance_uid)))
    if modality:
        query = query.where(Series.modality.in_(_uids(modality)))
    return list(session.scalars(query.order_by(Study.id, Series.series_number, Series.id)))


def list_instances(session: Session, site: str, study_instance_uid: str,
                   series_instance_uid: str, *,
                   sop_instance_uid: str | Sequence[str] | None = None) -> list[Instance]:
    """Instances of one series, by instance number."""
    query = (select(Instance).join(Series).join(Study)
             .where(Instance.site == site, Study.study_instance_uid == study_instance_uid,
                    Series.series_instance_uid == series_instance_uid))
    if sop_instance_uid:
        query = query.where(Instance.sop_instance_uid.in_(_uids(sop_instance_uid)))
    return list(session.scalars(query.order_by(Instance.instance_number, Instance.id)))


def first_instance(session: Session, *, study_id: int | None = None,
                   series_id: int | None = None) -> Instance | None:
    """The earliest stored instance of a study or a series: where attributes beyond the
    indexed ones are read from (QIDO-RS includefield)."""
    query = select(Instance).join(Series)
    query = query.where(Series.study_id == study_id) if study_id is not None else \
        query.where(Instance.series_id == series_id)
    return session.scalars(query.order_by(Instance.id).limit(1)).first()


@dataclass(frozen=True)
class StudyStats:
    """What QIDO-RS reports beside a study: ModalitiesInStudy and the related counts."""

    modalities: tuple[str, ...]
    series_count: int
    instance_count: int


def study_stats(session: Session, study_ids: Iterable[int]) -> dict[int, StudyStats]:
    ids = list(study_ids)
    if not ids:
        return {}
    modalities: dict[int, set[str]] = {i: set() for i in ids}
    series_counts: dict[int, int] = dict.fromkeys(ids, 0)
    for study_id, modality, n in session.execute(
            select(Series.study_id, Series.modality, func.count(Series.id))
            .where(Series.study_id.in_(ids)).group_by(Series.study_id, Series.modality)):
        series_counts[study_id] += n
        if modality:
            modalities[study_id].add(modality)
    instance_counts = dict(session.execute(
        select(Series.study_id, func.count(Instance.id)).join(Instance)
        .where(Series.study_id.in_(ids)).group_by(Series.study_id)).all())
    return {i: StudyStats(tuple(sorted(modalities[i])), series_counts[i],
                          instance_counts.get(i, 0)) for i in ids}


def series_instance_counts(session: Session, series_ids: Iterable[int]) -> dict[int, int]:
    ids = list(series_ids)
    counts = dict(session.execute(
        select(Instance.series_id, func.count(Instance.id))
        .where(Instance.series_id.in_(ids)).group_by(Instance.series_id)).all())
    return {i: counts.get(i, 0) for i in ids}
