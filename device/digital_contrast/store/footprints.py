"""Emission records: the site's reported outcome of a job, and the sustainability aggregates.

Every aggregate reads `emission_records` alone (it carries site, use case, model version, state
and finish time), filtered on the indexed (site, finished_at) first. Sums treat an unknown
energy (status `unavailable`) as unknown, never as zero: such jobs are counted, and the net
leaves them out entirely (their avoided footprint too), so a failed measurement can never make
the net look better than it is. Confirmed avoided = potential for jobs whose site reported that
no contrast scan followed.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, literal_column, select
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.enums import EnergyStatus, JobState
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.models import EmissionRecord as R

Bucket = Literal["day", "week", "month"]
BUCKETS: tuple[Bucket, ...] = ("day", "week", "month")
AVOIDED = {"kg_co2e": R.avoided_kg_co2e, "iodine_g": R.avoided_iodine_g,
           "plastics_g": R.avoided_plastics_g, "steel_g": R.avoided_steel_g,
           "energy_kwh": R.avoided_energy_kwh}


@dataclass(frozen=True)
class FootprintFilter:
    site: str
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    use_case: str | None = None
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise StoreError(StoreErrorCode.RANGE_INVALID,
                             "the range starts after it ends ('from' is later than 'to')")

    def where(self) -> ColumnElement[bool]:
        conditions = [R.site == self.site]
        if self.start is not None:
            conditions.append(R.finished_at >= self.start)
        if self.end is not None:
            conditions.append(R.finished_at < self.end)
        if self.use_case is not None:
            conditions.append(R.use_case == self.use_case)
        if self.model_version is not None:
            conditions.append(R.model_version == self.model_version)
        return and_(*conditions)


def report_outcome(session: Session, job_id: str, site: str, contrast_scan_avoided: bool,
                   now: datetime | None = None) -> R:
    """Record whether a contrast scan followed the job (may be corrected by a later report)."""
    record = session.scalars(select(R).where(R.job_id == job_id, R.site == site)).first()
    if record is None:
        raise StoreError(StoreErrorCode.JOB_NOT_FOUND,
                         "no finished job with this id at this site")
    if record.job_state != JobState.SUCCEEDED:
        raise StoreError(StoreErrorCode.OUTCOME_NOT_APPLICABLE,
                         f"the job is {record.job_state.value}: it produced no synthetic series, "
                         "so it cannot have spared a contrast scan")
    record.contrast_scan_avoided = contrast_scan_avoided
    record.outcome_at = now or utcnow()
    session.flush()
    return record


def _known(column: Any) -> Any:
    """`column` where the job's energy is known, NULL otherwise (ignored by SUM and AVG)."""
    return case((R.energy_status != EnergyStatus.UNAVAILABLE.value, column), else_=None)


def _confirmed(column: Any) -> Any:
    return case((R.contrast_scan_avoided.is_(True), column), else_=0.0)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _totals(where: ColumnElement[bool]) -> Select[Any]:
    columns = [
        func.count().label("jobs"),
        *(_count_if(R.job_state == s.value).label(s.value)
          for s in (JobState.SUCCEEDED, JobState.REJECTED, JobState.FAILED)),
        *(_count_if(R.energy_status == s.value).label(f"energy_{s.value}")
          for s in EnergyStatus),
        _count_if(R.contrast_scan_avoided.is_(True)).label("outcome_avoided"),
        _count_if(R.contrast_scan_avoided.is_(False)).label("outcome_not_avoided"),
        func.sum(R.energy_kwh).label("energy_kwh"),
        func.avg(R.energy_kwh).label("energy_kwh_mean"),
        func.sum(R.emissions_kg_co2e).label("emitted_kg_co2e"),
        func.sum(_known(R.avoided_kg_co2e)).label("net_basis_potential"),
        func.sum(_known(_confirmed(R.avoided_kg_co2e))).label("net_basis_confirmed"),
        *(func.sum(column).label(f"potential_{name}") for name, column in AVOIDED.items()),
        *(func.sum(_confirmed(column)).label(f"confirmed_{name}")
          for name, column in AVOIDED.items()),
    ]
    return select(*columns).where(where)


def _p95_energy(session: Session, where: ColumnElement[bool], known: int) -> float | None:
    """Nearest-rank 95th percentile of energy per scan, read from the top (a short top-N sort
    instead of sorting every record)."""
    if known == 0:
        return None
    from_top = known - math.ceil(0.95 * known)
    return session.scalar(select(R.energy_kwh).where(where, R.energy_kwh.is_not(None))
                          .order_by(R.energy_kwh.desc()).offset(from_top).limit(1))


def _number(value: Any) -> float:
    return float(value or 0.0)


def summary(session: Session, scope: FootprintFilter) -> dict[str, Any]:
    """Counts, compute energy and emissions, potential and confirmed avoided, and the net."""
    row = session.execute(_totals(scope.where())).one()._mapping
    known = int(row["energy_measured"] or 0) + int(row["energy_estimated"] or 0)
    emitted = _number(row["emitted_kg_co2e"])
    factor_sets = session.execute(
        select(R.factor_set_id, R.factor_set_version, func.count()).where(scope.where())
        .group_by(R.factor_set_id, R.factor_set_version)
        .order_by(R.factor_set_id, R.factor_set_version)).all()
    return {
        "counts": {
            "jobs": int(row["jobs"]),
            **{s.value: int(row[s.value] or 0)
               for s in (JobState.SUCCEEDED, JobState.REJECTED, JobState.FAILED)},
            **{f"energy_{s.value}": int(row[f"energy_{s.value}"] or 0) for s in EnergyStatus},
            "outcome_contrast_avoided": int(row["outcome_avoided"] or 0),
            "outcome_contrast_followed": int(row["outcome_not_avoided"] or 0),
        },
        "compute": {
            "energy_kwh": _number(row["energy_kwh"]),
            "energy_kwh_mean_per_scan": (float(row["energy_kwh_mean"])
                                         if row["energy_kwh_mean"] is not None else None),
            "energy_kwh_p95_per_scan": _p95_energy(session, scope.where(), known),
            "emissions_kg_co2e": emitted,
        },
        "avoided": {kind: {name: _number(row[f"{kind}_{name}"]) for name in AVOIDED}
                    for kind in ("potential", "confirmed")},
        "net_kg_co2e": {"potential": _number(row["net_basis_potential"]) - emitted,
                        "confirmed": _number(row["net_basis_confirmed"]) - emitted},
        "factor_sets": [{"id": i, "version": v, "jobs": n} for i, v, n in factor_sets],
    }


def _bucket_start(session: Session, bucket: Bucket) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(bucket, func.timezone("UTC", R.finished_at))
    # SQLite keeps naive UTC text; weeks start on Monday like PostgreSQL's date_trunc.
    return {"day": func.date(R.finished_at),
            "week": func.date(R.finished_at, "-6 days", "weekday 1"),
            "month": func.strftime("%Y-%m-01", R.finished_at)}[bucket]


def timeseries(session: Session, scope: FootprintFilter, bucket: Bucket) -> list[dict[str, Any]]:
    """Per bucket (UTC): scans, compute energy and emissions, potential and confirmed avoided."""
    if bucket not in BUCKETS:
        raise StoreError(StoreErrorCode.BUCKET_INVALID,
                         f"bucket must be one of {', '.join(BUCKETS)}")
    start = _bucket_start(session, bucket).label("start")
    rows = session.execute(
        select(start, func.count(), _count_if(R.job_state == JobState.SUCCEEDED.value),
               func.sum(R.energy_kwh), func.sum(R.emissions_kg_co2e),
               func.sum(R.avoided_kg_co2e), func.sum(_confirmed(R.avoided_kg_co2e)))
        .where(scope.where()).group_by(literal_column("start")).order_by(literal_column("start"))
    ).all()
    return [{"start": (value.date().isoformat() if isinstance(value, datetime) else str(value)),
             "jobs": int(jobs), "succeeded": int(succeeded or 0),
             "energy_kwh": _number(energy), "emissions_kg_co2e": _number(emitted),
             "potential_avoided_kg_co2e": _number(potential),
             "confirmed_avoided_kg_co2e": _number(confirmed)}
            for value, jobs, succeeded, energy, emitted, potential, confirmed in rows]


def breakdown(session: Session, scope: FootprintFilter,
              by: Literal["model_version", "use_case"]) -> list[dict[str, Any]]:
    """The summary's main figures per model version or per use case."""
    key = R.model_version if by == "model_version" else R.use_case
    rows = session.execute(
        select(key, func.count(), func.sum(R.energy_kwh), func.sum(R.emissions_kg_co2e),
               func.sum(R.avoided_kg_co2e), func.sum(_confirmed(R.avoided_kg_co2e)))
        .where(scope.where()).group_by(key).order_by(key)).all()
    return [{by: value, "jobs": int(jobs), "energy_kwh": _number(energy),
             "emissions_kg_co2e": _number(emitted),
             "potential_avoided_kg_co2e": _number(potential),
             "confirmed_avoided_kg_co2e": _number(confirmed)}
            for value, jobs, energy, emitted, potential, confirmed in rows]


def energy_histogram(session: Session, scope: FootprintFilter,
                     bins: int = 20) -> list[dict[str, float | int]]:
    """The distribution of energy per scan: equal-width bins between the smallest and largest
    known value (one bin when they are equal; none without a known value)."""
    low, high = session.execute(select(func.min(R.energy_kwh), func.max(R.energy_kwh))
                                .where(scope.where())).one()
    if low is None:
        return []
    width = (high - low) / bins if high > low else 0.0
    index = (func.least if session.get_bind().dialect.name == "postgresql" else func.min)(
        func.floor((R.energy_kwh - low) / width), bins - 1) if width else literal_column("0")
    counts = dict(session.execute(
        select(index.label("bin"), func.count()).where(scope.where(), R.energy_kwh.is_not(None))
        .group_by(literal_column("bin"))).all())
    return [{"from_kwh": low + k * width, "to_kwh": low + (k + 1) * width if width else high,
             "jobs": int(counts.get(k, counts.get(float(k), 0)))}
            for k in range(bins if width else 1)]


def export_records(session: Session, scope: FootprintFilter) -> Iterator[R]:
    """Every record in the scope, oldest first, streamed."""
    yield from session.scalars(select(R).where(scope.where())
                               .order_by(R.finished_at, R.id).execution_options(yield_per=2000))
