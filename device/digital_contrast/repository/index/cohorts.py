"""Saved cohorts: a search saved under a name, versioned, its members frozen per version.

Saving again with the same query and the same members changes nothing (the version stays);
a changed query, or an index that now answers the query with other series, makes a new
version. A version's hash (`cohort_sha256`) names exactly its members (and, in a cohort of
native + contrast pairs, the native series each pairs with), so a validation protocol can name
the cohort it was evaluated on and nothing else will match it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.kanonymity import ExportRow
from digital_contrast.repository.index.search import SeriesQuery, conditions
from digital_contrast.repository.index.tables import Cohort, CohortMember, Series

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class SavedCohort:
    name: str
    version: int
    series_count: int
    cohort_sha256: str
    created: bool  # False: the newest version already had this query and these members


def cohort_sha256(members: list[tuple[str, str, str | None]],
                  natives: list[tuple[str, str | None] | None] | None = None) -> str:
    """SHA-256 over the sorted "site<TAB>series UID<TAB>instance-set hash" lines; a member of
    a pair cohort adds "<TAB>native series UID<TAB>its instance-set hash" to its line."""
    pairs = natives or [None] * len(members)
    lines = sorted(f"{site}\t{uid}\t{digest or ''}"
                   + (f"\t{native[0]}\t{native[1] or ''}" if native else "") + "\n"
                   for (site, uid, digest), native in zip(members, pairs, strict=True))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def native_partners(session: Session, rows: list[Any]) -> list[tuple[str, str | None] | None]:
    """For each contrast series, the native series of its study it pairs with: of several,
    the one whose slice thickness is nearest, then the lowest UID (the same pick every time)."""
    studies = {(r.site, r.study_uid) for r in rows}
    found: dict[tuple[str, str], list[Any]] = {}
    if studies:
        for native in session.execute(select(
                Series.site, Series.study_uid, Series.series_uid, Series.thickness_mm,
                Series.instance_set_sha256).where(
                Series.phase == "native",
                tuple_(Series.site, Series.study_uid).in_(sorted(studies)))):
            found.setdefault((native.site, native.study_uid), []).append(native)

    def pick(row: Any) -> tuple[str, str | None] | None:
        candidates = found.get((row.site, row.study_uid))
        if not candidates:
            return None
        best = min(candidates, key=lambda n: (
            abs((n.thickness_mm or 0.0) - (row.thickness_mm or 0.0)), n.series_uid))
        return best.series_uid, best.instance_set_sha256

    return [pick(row) for row in rows]


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise RepositoryError("COHORT_INVALID", "a cohort name is 2-64 lower-case letters, "
                                                "digits, '.', '_' or '-'")


def save_cohort(session: Session, name: str, query: SeriesQuery, purpose: str) -> SavedCohort:
    """Resolve `query` now and save it as `name`'s next version, unless the newest version
    has the same query and members."""
    _check_name(name)
    if not purpose.strip():
        raise RepositoryError("COHORT_INVALID", "say what the cohort is for (--purpose)")
    definition = query.model_dump(mode="json", exclude={"limit"})
    rows = session.execute(select(Series.site, Series.series_uid, Series.study_uid,
                                  Series.patient, Series.instance_set_sha256,
                                  Series.thickness_mm).where(*conditions(query))).all()
    natives = native_partners(session, rows) if query.with_native_pair else [None] * len(rows)
    digest = cohort_sha256([(r.site, r.series_uid, r.instance_set_sha256) for r in rows],
                           natives)
    newest = session.scalars(select(Cohort).where(Cohort.name == name)
                             .order_by(Cohort.version.desc()).limit(1)).first()
    if newest is not None and newest.query == definition and newest.cohort_sha256 == digest:
        return SavedCohort(name, newest.version, newest.series_count, digest, created=False)
    cohort = Cohort(name=name, version=(newest.version + 1) if newest else 1, query=definition,
                    purpose=purpose.strip()[:256], created_at=dt.datetime.now(dt.UTC),
                    series_count=len(rows), cohort_sha256=digest)
    session.add(cohort)
    session.flush()
    session.bulk_insert_mappings(CohortMember, [  # type: ignore[arg-type]
        {"cohort_id": cohort.id, "site": r.site, "series_uid": r.series_uid,
         "study_uid": r.study_uid, "patient": r.patient,
         "instance_set_sha256": r.instance_set_sha256,
         "native_series_uid": native[0] if native else None,
         "native_instance_set_sha256": native[1] if native else None}
        for r, native in zip(rows, natives, strict=True)])
    return SavedCohort(name, cohort.version, len(rows), digest, created=True)


def cohort_version(session: Session, name: str, version: int | None = None
                   ) -> tuple[Cohort, list[CohortMember]]:
    """A saved version (default: the newest) and its members, in site and UID order;
    COHORT_UNKNOWN when there is no such cohort or version."""
    _check_name(name)
    statement = select(Cohort).where(Cohort.name == name)
    statement = statement.where(Cohort.version == version) if version is not None else \
        statement.order_by(Cohort.version.desc()).limit(1)
    cohort = session.scalars(statement).first()
    if cohort is None:
        raise RepositoryError("COHORT_UNKNOWN", f"no cohort {name!r}" + (
            f" version {version}" if version is not None else ""))
    members = list(session.scalars(select(CohortMember).where(CohortMember.cohort_id == cohort.id)
                                   .order_by(CohortMember.site, CohortMember.series_uid)))
    return cohort, members


def cohorts(session: Session) -> list[Cohort]:
    """The newest version of every cohort, by name."""
    newest = (select(Cohort.name, func.max(Cohort.version).label("version"))
              .group_by(Cohort.name).subquery())
    return list(session.scalars(select(Cohort).join(
        newest, (Cohort.name == newest.c.name) & (Cohort.version == newest.c.version))
        .order_by(Cohort.name)))


def member_series(session: Session, members: list[CohortMember]
                  ) -> dict[tuple[str, str], Series]:
    """The index rows the members have now, by (site, series UID); a member whose series left
    the index since the version was saved has none."""
    if not members:
        return {}
    return {(s.site, s.series_uid): s for s in session.scalars(select(Series).where(
        tuple_(Series.site, Series.series_uid).in_([(m.site, m.series_uid) for m in members])))}


def export_rows(members: list[CohortMember],
                series: dict[tuple[str, str], Series]) -> list[ExportRow]:
    """The members with the quasi-identifiers their index rows (`member_series`) hold."""
    rows = []
    for member in members:
        found = series.get((member.site, member.series_uid))
        rows.append(ExportRow(
            site=member.site, series_uid=member.series_uid, patient=member.patient,
            age_band=found.age_band if found else None, sex=found.sex if found else None,
            study_year=found.study_date.year if found and found.study_date else None,
            manufacturer=found.manufacturer if found else None))
    return rows
