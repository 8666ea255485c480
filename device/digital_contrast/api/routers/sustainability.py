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
from digital_contrast.carbon.factors import KIND_LABELS, FactorSet, grid_for
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
    "what a contrast-enhanced CT adds to the non-contrast CT it replaces, from the factor set "
    "in force, with its low-central-high range: potential for every succeeded job, confirmed "
    "only where the site reported that no contrast scan followed. The "
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


def compute_settings(meter_config: Any) -> dict[str, Any]:
    """The grid, country and PUE the compute's emissions are computed with (the settings in
    force; each record keeps its own in the CSV)."""
    grid = grid_for(meter_config.country_iso_code)
    return {"country_iso_code": grid.country_iso_code,
            "grid_intensity_kg_co2e_per_kwh": grid.kg_co2e_per_kwh,
            "grid_source": grid.source, "pue": meter_config.pue}


def avoided_range(body: dict[str, Any], factors: FactorSet) -> dict[str, Any]:
    """The avoided kg CO2e as low / central / high: per scan from the set in force, and for
    the totals when every record in range was made with that set (records store the central
    value only, so their totals take the per-scan range's proportions)."""
    per_scan = factors.co2e_range
    in_force = (factors.id, factors.version)
    others = sorted({f"{s['id']}@{s['version']}" for s in body["factor_sets"]
                     if (s["id"], s["version"]) != in_force})
    totals: dict[str, Any] = {}
    for kind in ("potential", "confirmed"):
        central = body["avoided"][kind]["kg_co2e"]
        totals[f"{kind}_kg_co2e"] = None if others or per_scan.central <= 0 else {
            "low": central * per_scan.low / per_scan.central, "central": central,
            "high": central * per_scan.high / per_scan.central}
    note = (f"records in this range were made with {', '.join(others)}: the range of their "
            f"totals is not stored, so only the per-scan range of the set in force is given"
            if others else "totals take the per-scan range of the set in force")
    return {"factor_set": f"{factors.id}@{factors.version}", "kind": factors.kind,
            "kind_label": KIND_LABELS[factors.kind],
            "per_scan_kg_co2e": per_scan.to_dict(),
            "per_scan_energy_kwh": factors.energy_range.to_dict(),
            "range_from_components": factors.co2e_kg_range is not None,
            "not_verified": list(factors.not_verified), **totals, "note": note}


def summary_view(db: Session, state: Any, filters: FootprintFilter) -> dict[str, Any]:
    """The summary body (also rendered by the dashboard, so both always agree)."""
    body = summary(db, filters)
    counts, compute = body["counts"], body["compute"]
    known = counts["energy_measured"] + counts["energy_estimated"]
    # The compute's own CO2e per scan: each job's measured energy x the grid intensity of its
    # day (PUE included), over the jobs whose energy is known.
    compute["emissions_kg_co2e_per_scan"] = (compute["emissions_kg_co2e"] / known if known
                                             else None)
    return {"site": filters.site, "from": filters.start, "to": filters.end,
            "use_case": filters.use_case, "model_version": filters.model_version,
            **body, "avoided_range": avoided_range(body, state.factors),
            "compute_settings": compute_settings(state.meter.config),
            "factor_set_in_force": state.factors.to_dict(), "evidence": EVIDENCE}


@router.get("/summary", summary="Energy, emissions and avoided footprint of the site's jobs")
def sustainability_summary(filters: Scope, state: Service, db: DbSession) -> dict[str, Any]:
    """Counts (jobs by state, by energy status, by reported outcome); compute energy (total,
    mean and nearest-rank p95 per scan), kg CO2e emitted and per scan; potential and confirmed
    avoided footprint (kg CO2e, iodine g, plastics g, steel g, kWh) and its low / central /
    high range (`avoided_range`); net kg CO2e (avoided minus emitted, leaving out jobs whose
    energy is unavailable); the grid intensity, country and PUE of the compute
    (`compute_settings`) and the factor set in force. 422 RANGE_INVALID when from is after
    to."""
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
