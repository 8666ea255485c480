"""Emission records: recording them, the site's reported outcome, and the sustainability
aggregates.

Every record has a *contribution*: counts (jobs by state, by energy status, by outcome) and
sums (energy, emissions, potential and confirmed avoided, the net's basis). Recording a record
or changing its outcome adds (or moves) its contribution in the daily rollups, in the same
transaction, and puts its energy in a log-spaced bin of its day and of its month. Aggregates
read whole UTC days from the rollups (the energy bins of whole calendar months from the monthly
bins) and the records of the partial days at the ends of a range directly, summed by the
database per kind of record and given the same contribution (the energy bins read their
energies): over a million records a summary reads a few thousand rows, however long the
range.

Unknown energy (status `unavailable`) is never counted as zero: such jobs are counted, and the
net leaves them out entirely (their avoided footprint too), so that a failed measurement never
makes the net look better than it is. Confirmed avoided = potential for the jobs whose site
reported that no contrast scan followed. Percentiles and the energy distribution come from the
bins: each bin spans 2 % (`BIN_RATIO`), which bounds their error.
"""

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any, Literal

from sqlalchemy import ColumnElement, Table, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.database import begin_write
from digital_contrast.store.enums import EnergyStatus, JobState
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import ROLLUP_COUNTS, ROLLUP_SUMS, emission_daily
from digital_contrast.store.tables import EmissionRecord as R
from digital_contrast.store.tables import emission_energy_bins as bins_table
from digital_contrast.store.tables import emission_energy_bins_monthly as monthly_bins_table

Bucket = Literal["day", "week", "month"]
BUCKETS: tuple[Bucket, ...] = ("day", "week", "month")
AVOIDED = {"kg_co2e": R.avoided_kg_co2e, "iodine_g": R.avoided_iodine_g,
           "plastics_g": R.avoided_plastics_g, "steel_g": R.avoided_steel_g,
           "energy_kwh": R.avoided_energy_kwh}
COLUMNS = (*ROLLUP_COUNTS, *ROLLUP_SUMS)
BIN_RATIO, BIN_FLOOR_KWH = 1.02, 1e-9  # bin k holds energies in [floor * r^k, floor * r^(k+1))
ZERO_BIN = -1  # a job that used no measurable energy
Contribution = dict[str, float]


def energy_bin(kwh: float) -> int:
    if kwh <= BIN_FLOOR_KWH:
        return ZERO_BIN
    return math.floor(math.log(kwh / BIN_FLOOR_KWH) / math.log(BIN_RATIO))


def bin_upper_kwh(index: int) -> float:
    return 0.0 if index == ZERO_BIN else BIN_FLOOR_KWH * BIN_RATIO ** (index + 1)


def contribution(r: Any, jobs: int = 1) -> Contribution:
    """What one record adds to every aggregate; or what `jobs` records alike add (the same
    state, energy status, outcome and energy known or not), their numbers summed in `r`."""
    known = r.energy_status != EnergyStatus.UNAVAILABLE and r.energy_kwh is not None
    confirmed = r.contrast_scan_avoided is True
    avoided = {name: float(getattr(r, column.key)) for name, column in AVOIDED.items()}
    values: Contribution = {
        "jobs": jobs, "succeeded": jobs * (r.job_state == JobState.SUCCEEDED),
        "rejected": jobs * (r.job_state == JobState.REJECTED),
        "failed": jobs * (r.job_state == JobState.FAILED),
        **{f"energy_{s.value}": jobs * (r.energy_status == s) for s in EnergyStatus},
        "outcome_avoided": jobs * confirmed,
        "outcome_followed": jobs * (r.contrast_scan_avoided is False),
        "energy_kwh": r.energy_kwh if known else 0.0,
        "emitted_kg_co2e": (r.emissions_kg_co2e or 0.0) if known else 0.0,
        "net_basis_potential": avoided["kg_co2e"] if known else 0.0,
        "net_basis_confirmed": avoided["kg_co2e"] if known and confirmed else 0.0,
        **{f"potential_{name}": value for name, value in avoided.items()},
        **{f"confirmed_{name}": value if confirmed else 0.0 for name, value in avoided.items()},
    }
    return {name: float(values[name]) for name in COLUMNS}


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _rollup_key(r: Any) -> dict[str, Any]:
    return {"site": r.site, "day": _day(r.finished_at), "use_case": r.use_case,
            "model_version": r.model_version, "factor_set_id": r.factor_set_id,
            "factor_set_version": r.factor_set_version}


def _add(session: Session, table: Table, key: dict[str, Any], values: dict[str, float]) -> None:
    """Add `values` to the row of `key` (created at zero), atomically under concurrency."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    statement = insert.values(**key, **values)
    session.execute(statement.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={name: table.c[name] + statement.excluded[name] for name in values}))


def rollup_additions(r: Any) -> list[tuple[Table, dict[str, Any], Contribution]]:
    """The rollup rows a record (or a row of its columns) adds to, and what it adds: its
    contribution to its day, and a job to its energy bin of the day and of the month."""
    key = _rollup_key(r)
    additions = [(emission_daily, key, contribution(r))]
    if r.energy_status != EnergyStatus.UNAVAILABLE and r.energy_kwh is not None:
        bin_ = {"bin": energy_bin(r.energy_kwh)}
        month = {k: v for k, v in key.items() if k != "day"} | {"month": _month(key["day"])}
        additions += [(bins_table, key | bin_, {"jobs": 1}),
                      (monthly_bins_table, month | bin_, {"jobs": 1})]
    return additions


def _apply(session: Session, r: R, sign: int) -> None:
    for table, key, values in rollup_additions(r):
        _add(session, table, key, {name: sign * value for name, value in values.items()})


def record_emission(session: Session, record: R) -> R:
    """Add a finished job's record and its contribution to the rollups (caller commits)."""
    session.add(record)
    session.flush()
    _apply(session, record, +1)
    return record


def report_outcome(session: Session, job_id: str, site: str, contrast_scan_avoided: bool,
                   now: datetime | None = None) -> R:
    """Record whether a contrast scan followed the job (a later report replaces it)."""
    begin_write(session)
    record = session.scalars(select(R).where(R.job_id == job_id, R.site == site)
                             .with_for_update()).first()
    if record is None:
        raise StoreError(StoreErrorCode.JOB_NOT_FOUND,
                         "no finished job with this id at this site")
    if record.job_state != JobState.SUCCEEDED or (record.detail or {}).get("explain_of"):
        raise StoreError(StoreErrorCode.OUTCOME_NOT_APPLICABLE,
                         f"the job is {record.job_state.value} and published no new synthetic "
                         "series, so it cannot have spared a contrast scan")
    _apply(session, record, -1)
    record.contrast_scan_avoided = contrast_scan_avoided
    record.outcome_at = now or utcnow()
    session.flush()
    _apply(session, record, +1)
    return record


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

    def _common(self, table: Any) -> list[ColumnElement[bool]]:
        conditions = [table.site == self.site]
        if self.use_case is not None:
            conditions.append(table.use_case == self.use_case)
        if self.model_version is not None:
            conditions.append(table.model_version == self.model_version)
        return conditions

    def whole_days(self) -> tuple[date | None, date | None] | None:
        """The UTC days lying wholly in the range ([first, stop), None: unbounded), or None
        when the range holds no whole day."""
        first = None if self.start is None else _day(self.start) + timedelta(
            days=self.start.astimezone(UTC).timetz() != time(tzinfo=UTC))
        stop = None if self.end is None else _day(self.end)
        return None if first is not None and stop is not None and first >= stop else (first,
                                                                                     stop)

    def _within(self, table: Table, period: str, first: date | None, stop: date | None
                ) -> ColumnElement[bool]:
        conditions = self._common(table.c)
        if first is not None:
            conditions.append(table.c[period] >= first)
        if stop is not None:
            conditions.append(table.c[period] < stop)
        return and_(*conditions)

    def rollup_where(self, table: Table) -> ColumnElement[bool] | None:
        days = self.whole_days()
        return None if days is None else self._within(table, "day", *days)

    def bin_rows(self) -> list[tuple[Table, ColumnElement[bool]]]:
        """Where the energy bins of the range's whole days are: its whole months in the
        monthly bins, the days before and after them in the daily bins."""
        days = self.whole_days()
        if days is None:
            return []
        months, edges = month_split(*days)
        rows = [(bins_table, self._within(bins_table, "day", *edge)) for edge in edges]
        if months is not None:
            rows.append((monthly_bins_table, self._within(monthly_bins_table, "month",
                                                          *months)))
        return rows

    def partial_days(self) -> list[tuple[date, ColumnElement[bool]]]:
        """The parts of the range outside its whole days, each within one UTC day: the day
        and the condition on its records."""
        days = self.whole_days()
        bounds = []
        if days is None:
            bounds.append((self.start, self.end))
        else:
            if self.start is not None and days[0] is not None:
                bounds.append((self.start, _midnight(days[0])))
            if self.end is not None and days[1] is not None:
                bounds.append((_midnight(days[1]), self.end))
        parts = []
        for low, high in bounds:
            while low is not None and high is not None and low < high:
                cut = min(high, _midnight(_day(low) + timedelta(days=1)))
                parts.append((_day(low), and_(*self._common(R), R.finished_at >= low,
                                              R.finished_at < cut)))
                low = cut
        return parts


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _month(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (_month(day) + timedelta(days=32)).replace(day=1)


Days = tuple[date | None, date | None]  # [first, stop), None: unbounded


def month_split(first: date | None, stop: date | None) -> tuple[Days | None, list[Days]]:
    """The whole calendar months of the days [first, stop) and the days outside them (at most
    a month's worth at each end), or (None, [the days]) when they hold no whole month."""
    low = None if first is None else first if first.day == 1 else _next_month(first)
    high = None if stop is None else _month(stop)
    if low is not None and high is not None and low >= high:
        return None, [(first, stop)]
    edges: list[Days] = [(first, low)] if first is not None and low is not None and \
        first < low else []
    if stop is not None and high is not None and high < stop:
        edges.append((high, stop))
    return (low, high), edges


def _grouped(session: Session, scope: FootprintFilter, keys: tuple[str, ...]
             ) -> dict[tuple[Any, ...], Contribution]:
    """Contributions summed per value of `keys` (rollup key columns; "day" among them)."""
    totals: dict[tuple[Any, ...], Contribution] = defaultdict(lambda: dict.fromkeys(COLUMNS,
                                                                                    0.0))
    where = scope.rollup_where(emission_daily)
    if where is not None:
        group = [emission_daily.c[k] for k in keys]
        for row in session.execute(select(*group, *(func.sum(emission_daily.c[c]).label(c)
                                                    for c in COLUMNS))
                                   .where(where).group_by(*group)):
            mapping = row._mapping
            target = totals[tuple(mapping[k] for k in keys)]
            for column in COLUMNS:
                target[column] += float(mapping[column] or 0.0)
    for alike in _partial_groups(session, scope):
        target = totals[tuple(_rollup_key(alike)[k] for k in keys)]
        for column, value in contribution(alike, alike.jobs).items():
            target[column] += value
    return totals


# What a record's contribution depends on besides its numbers: the records of a partial day
# alike in these are summed by the database (a busy day's thousands are a few dozen rows).
_ALIKE = (R.site, R.use_case, R.model_version, R.factor_set_id, R.factor_set_version,
          R.job_state, R.energy_status, R.contrast_scan_avoided)
_SUMMED = (R.energy_kwh, R.emissions_kg_co2e, *AVOIDED.values())


def _partial_groups(session: Session, scope: FootprintFilter) -> list[Any]:
    """The records of the partial days at the ends of the range, summed per day and per value
    of `_ALIKE` (known and unknown energy apart), with their number (`jobs`)."""
    groups = []
    for day, where in scope.partial_days():
        query = (select(*_ALIKE, func.count().label("jobs"),
                        *(func.sum(column).label(column.key) for column in _SUMMED))
                 .where(where).group_by(*_ALIKE, R.energy_kwh.is_(None)))
        groups += [SimpleNamespace(**row._mapping, finished_at=_midnight(day))
                   for row in session.execute(query)]
    return groups


def _partial_energies(session: Session, scope: FootprintFilter) -> list[float]:
    """The known energies of the records of the partial days (each counts in its bin)."""
    return [kwh for _, where in scope.partial_days() for kwh in session.scalars(
        select(R.energy_kwh).where(where, R.energy_status != EnergyStatus.UNAVAILABLE,
                                   R.energy_kwh.is_not(None)))]


def _energy_bins(session: Session, scope: FootprintFilter) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for table, where in scope.bin_rows():
        for index, jobs in session.execute(select(table.c.bin, func.sum(table.c.jobs))
                                           .where(where).group_by(table.c.bin)):
            counts[int(index)] += int(jobs)
    for kwh in _partial_energies(session, scope):
        counts[energy_bin(kwh)] += 1
    return {k: v for k, v in counts.items() if v > 0}


def _p95_kwh(counts: dict[int, int]) -> float | None:
    """Nearest-rank 95th percentile of energy per scan, as the upper edge of its bin (at most
    2 % above the exact value)."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank, seen = math.ceil(0.95 * total), 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return bin_upper_kwh(index)
    raise AssertionError("unreachable: the rank lies within the total")


def _avoided(values: Contribution, kind: str) -> dict[str, float]:
    return {name: values[f"{kind}_{name}"] for name in AVOIDED}


def summary(session: Session, scope: FootprintFilter) -> dict[str, Any]:
    """Counts, compute energy and emissions, potential and confirmed avoided, and the net."""
    by_set = _grouped(session, scope, ("factor_set_id", "factor_set_version"))
    total = dict.fromkeys(COLUMNS, 0.0)
    for values in by_set.values():
        for column, value in values.items():
            total[column] += value
    known = total["energy_measured"] + total["energy_estimated"]
    emitted = total["emitted_kg_co2e"]
    return {
        "counts": {
            **{name: round(total[name]) for name in ("jobs", "succeeded", "rejected", "failed")},
            **{f"energy_{s.value}": round(total[f"energy_{s.value}"]) for s in EnergyStatus},
            "outcome_contrast_avoided": round(total["outcome_avoided"]),
            "outcome_contrast_followed": round(total["outcome_followed"]),
        },
        "compute": {
            "energy_kwh": total["energy_kwh"],
            "energy_kwh_mean_per_scan": total["energy_kwh"] / known if known else None,
            "energy_kwh_p95_per_scan": _p95_kwh(_energy_bins(session, scope)),
            "emissions_kg_co2e": emitted,
        },
        "avoided": {kind: _avoided(total, kind) for kind in ("potential", "confirmed")},
        "net_kg_co2e": {"potential": total["net_basis_potential"] - emitted,
                        "confirmed": total["net_basis_confirmed"] - emitted},
        "factor_sets": [{"id": i, "version": v, "jobs": round(values["jobs"])}
                        for (i, v), values in sorted(by_set.items()) if values["jobs"]],
    }


def _bucket_start(day: date, bucket: Bucket) -> date:
    if bucket == "week":  # Monday, like PostgreSQL's date_trunc
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if bucket == "month" else day


def _figures(values: Contribution) -> dict[str, Any]:
    return {"jobs": round(values["jobs"]), "succeeded": round(values["succeeded"]),
            "energy_kwh": values["energy_kwh"], "emissions_kg_co2e": values["emitted_kg_co2e"],
            "potential_avoided_kg_co2e": values["potential_kg_co2e"],
            "confirmed_avoided_kg_co2e": values["confirmed_kg_co2e"]}


def timeseries(session: Session, scope: FootprintFilter, bucket: Bucket) -> list[dict[str, Any]]:
    """Per bucket (UTC; weeks start on Monday): scans, compute energy and emissions, potential
    and confirmed avoided kg CO2e. Buckets without a job are left out."""
    if bucket not in BUCKETS:
        raise StoreError(StoreErrorCode.BUCKET_INVALID,
                         f"bucket must be one of {', '.join(BUCKETS)}")
    buckets: dict[date, Contribution] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0.0))
    for (day,), values in _grouped(session, scope, ("day",)).items():
        target = buckets[_bucket_start(day, bucket)]
        for column, value in values.items():
            target[column] += value
    return [{"start": start.isoformat(), **_figures(values)}
            for start, values in sorted(buckets.items()) if values["jobs"]]


def breakdown(session: Session, scope: FootprintFilter,
              by: Literal["model_version", "use_case"]) -> list[dict[str, Any]]:
    """The main figures per model version or per use case."""
    return [{by: value, **_figures(values)}
            for (value,), values in sorted(_grouped(session, scope, (by,)).items())
            if values["jobs"]]


def energy_histogram(session: Session, scope: FootprintFilter,
                     bins: int = 20) -> list[dict[str, float | int]]:
    """The distribution of energy per scan in equal-width bins between the smallest and the
    largest value (each job placed by its 2 % energy bin); [] without a known energy."""
    counts = _energy_bins(session, scope)
    if not counts:
        return []
    values = {index: bin_upper_kwh(index) for index in counts}
    low, high = min(values.values()), max(values.values())
    width = (high - low) / bins if high > low else 0.0
    histogram = [0] * (bins if width else 1)
    for index, jobs in counts.items():
        slot = min(int((values[index] - low) / width), bins - 1) if width else 0
        histogram[slot] += jobs
    return [{"from_kwh": low + k * width, "to_kwh": low + (k + 1) * width if width else high,
             "jobs": jobs} for k, jobs in enumerate(histogram)]


def export_records(session: Session, scope: FootprintFilter) -> Iterator[R]:
    """Every record in the scope, oldest first, streamed."""
    conditions = scope._common(R)
    if scope.start is not None:
        conditions.append(R.finished_at >= scope.start)
    if scope.end is not None:
        conditions.append(R.finished_at < scope.end)
    yield from session.scalars(select(R).where(*conditions)
                               .order_by(R.finished_at, R.id).execution_options(yield_per=2000))

