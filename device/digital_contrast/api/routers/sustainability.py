"""Sustainability: what the software cost in energy and CO2e and the contrast-scan footprint it
avoided, for the caller's site: summary, time series and a per-job CSV for GHG reporting."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.carbon.accounting import AvoidedFootprint, confirmed_avoided, net_kg_co2e
from digital_contrast.errors import DigitalContrastError
from digital_contrast.store import EmissionRecord
from digital_contrast.store.footprints import (
    AVOIDED,
    Bucket,
    FootprintFilter,
    export_records,
    summary,
    timeseries,
)

router = APIRouter(prefix="/v1/sustainability", tags=["sustainability"])
# Bounds of a sane reporting range (UTC day arithmetic near year 1 or 9999 overflows).
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)

EVIDENCE = (
    "Compute energy is measured per job with CodeCarbon (offline; the method column says whether "
    "it was read from RAPL/NVML counters or estimated from CPU load x TDP). Avoided figures are "
    "the marginal footprint of a contrast CT from the cited factor set: potential for every "
    "succeeded job, confirmed only where the site reported that no contrast scan followed. The "
    "reference model is trained and validated on a procedural digital phantom only and is not "
    "clinically validated.")


def checked_instant(value: datetime | None, name: str) -> datetime | None:
    """A range bound as the store takes it: zone-aware and within sane years."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise DigitalContrastError("REQUEST_INVALID", f"'{name}' needs a time zone, e.g. Z")
    if not EARLIEST <= value <= LATEST:
        raise DigitalContrastError("REQUEST_INVALID", f"'{name}' is out of range: it must lie "
                                   f"between {EARLIEST.year} and {LATEST.year}")
    return value


def scope(caller: Caller,
          start: Annotated[datetime | None, Query(
              alias="from", description="Jobs finished at or after this time (ISO 8601 with "
              "zone)", examples=["2026-11-01T00:00:00Z"])] = None,
          end: Annotated[datetime | None, Query(
              alias="to", description="Jobs finished before this time",
              examples=["2026-12-01T00:00:00Z"])] = None,
          site: Annotated[str | None, Query(max_length=64, description="Your own site (the "
                                            "default); other sites are refused")] = None,
          use_case: Annotated[str | None, Query(max_length=64, examples=["aaa-cta"])] = None,
          model_version: Annotated[str | None, Query(max_length=64, examples=["1.0.0"])] = None,
          ) -> FootprintFilter:
    """The records a request covers; a key sees its own site only."""
    if site is not None and site != caller.site:
        raise DigitalContrastError("SITE_FORBIDDEN", "a key reads the records of its own site "
                                                     "only")
    return FootprintFilter(caller.site, checked_instant(start, "from"),
                           checked_instant(end, "to"), use_case, model_version)


Scope = Annotated[FootprintFilter, Depends(scope)]


def summary_view(db: Session, state: Any, filters: FootprintFilter) -> dict[str, Any]:
    """The summary body (also rendered by the dashboard, so both always agree)."""
    return {"site": filters.site, "from": filters.start, "to": filters.end,
            "use_case": filters.use_case, "model_version": filters.model_version,
            **summary(db, filters), "factor_set_in_force": state.factors.to_dict(),
            "evidence": EVIDENCE}


@router.get("/summary", summary="Energy, emissions and avoided footprint of the site's jobs")
def sustainability_summary(filters: Scope, state: Service, db: DbSession) -> dict[str, Any]:
    """Counts (jobs by state, by energy status, by reported outcome); compute energy (total,
    mean and nearest-rank p95 per scan) and kg CO2e emitted; potential and confirmed avoided
    footprint (kg CO2e, iodine g, plastics g, steel g, kWh); net kg CO2e (avoided minus emitted,
    leaving out jobs whose energy is unavailable). 422 RANGE_INVALID when from is after to."""
    return summary_view(db, state, filters)


@router.get("/timeseries", summary="Emitted and avoided per day, week or month")
def sustainability_timeseries(filters: Scope, db: DbSession,
                              bucket: Annotated[Bucket, Query()] = "day"
                              ) -> dict[str, Any]:
    """Buckets in UTC (weeks start on Monday) with scans, compute kWh and kg CO2e, potential
    and confirmed avoided kg CO2e; empty buckets are left out."""
    return {"site": filters.site, "bucket": bucket, "series": timeseries(db, filters, bucket)}


CSV_COLUMNS = (
    "job_id", "site", "use_case", "model_name", "model_version", "job_state", "finished_at",
    "ghg_scope", "energy_status", "energy_method", "energy_unavailable_reason", "duration_s",
    "cpu_kwh", "gpu_kwh", "ram_kwh", "electricity_kwh", "pue", "country_iso_code",
    "grid_intensity_kg_co2e_per_kwh", "emissions_kg_co2e", "codecarbon_version",
    "factor_set_id", "factor_set_version", "potential_avoided_kg_co2e",
    "potential_avoided_iodine_g", "potential_avoided_plastics_g", "potential_avoided_steel_g",
    "potential_avoided_kwh", "contrast_scan_avoided", "confirmed_avoided_kg_co2e",
    "net_potential_kg_co2e", "net_confirmed_kg_co2e")


def potential_of(record: EmissionRecord) -> AvoidedFootprint:
    """The potential avoided footprint a record stores."""
    return AvoidedFootprint(**{name: getattr(record, column.key)
                               for name, column in AVOIDED.items()})


def _csv_row(r: EmissionRecord) -> list[Any]:
    confirmed_footprint = confirmed_avoided(potential_of(r), r.contrast_scan_avoided)
    confirmed = confirmed_footprint.kg_co2e if confirmed_footprint is not None else None
    return [r.job_id, r.site, r.use_case, r.model_name, r.model_version, r.job_state.value,
            r.finished_at.isoformat(), "Scope 2 (location-based electricity)",
            r.energy_status.value, r.method, r.energy_reason, r.duration_s, r.cpu_energy_kwh,
            r.gpu_energy_kwh, r.ram_energy_kwh, r.energy_kwh, r.pue, r.country_iso_code,
            r.grid_intensity_kg_per_kwh, r.emissions_kg_co2e, r.codecarbon_version,
            r.factor_set_id, r.factor_set_version, r.avoided_kg_co2e, r.avoided_iodine_g,
            r.avoided_plastics_g, r.avoided_steel_g, r.avoided_energy_kwh,
            {None: "unreported", True: "yes", False: "no"}[r.contrast_scan_avoided], confirmed,
            net_kg_co2e(r.avoided_kg_co2e, r.emissions_kg_co2e),
            net_kg_co2e(confirmed, r.emissions_kg_co2e)]


def csv_lines(rows: Iterator[EmissionRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if v is None else v for v in _csv_row(row)])
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/export.csv", summary="One row per job, for GHG reporting",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}},
                             "description": "RFC 4180 CSV with a header row"}})
def sustainability_export(filters: Scope, state: Service) -> StreamingResponse:
    """The compute part is Scope 2 location-based electricity (kWh x the country's grid
    intensity, PUE included). No patient identifiers: jobs are named by their id only."""
    def body() -> Iterator[str]:
        with state.sessions() as db:  # its own session: it lives as long as the stream
            yield from csv_lines(export_records(db, filters))

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="footprint-{filters.site}.csv"'})
