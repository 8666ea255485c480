"""The sustainability dashboard: a login page (an API key, once; a session cookie after that)
and one server-rendered page of the site's footprint.

The tiles are the very body of `GET /v1/sustainability/summary` (`summary_view`), so page and
API agree by construction. Nothing is loaded from outside the service: CSS, the chart code and
Chart.js are static files of the package, and a Content-Security-Policy of 'self' forbids
anything else, inline scripts included (the chart data rides in a JSON script element).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from digital_contrast.api import web_session
from digital_contrast.api.deps import AuthError, Caller, DbSession, Service
from digital_contrast.api.problems import error_problem, status_for
from digital_contrast.api.roles import PAGE_ROLES, SUSTAINABILITY
from digital_contrast.api.routers.sustainability import (
    EVIDENCE,
    checked_instant,
    summary_view,
)
from digital_contrast.errors import DigitalContrastError
from digital_contrast.store import Role
from digital_contrast.store.api_keys import authenticate
from digital_contrast.store.audit import append_audit
from digital_contrast.store.footprints import (
    BUCKETS,
    Bucket,
    FootprintFilter,
    breakdown,
    energy_histogram,
    timeseries,
)

API_DIR = Path(__file__).resolve().parents[1]
STATIC_DIR = API_DIR / "static"
TEMPLATES = Jinja2Templates(directory=API_DIR / "templates")
LOGIN = "/dashboard/login"
PAGE = "/dashboard/sustainability"
HISTOGRAM_BINS = 20
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; object-src 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # site figures: not kept by the browser or a proxy
}
BANNER = ("Avoided figures are potential unless confirmed by the site; the reference model is "
          "trained on a procedural phantom and is not clinically validated.")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200
          ) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status,
                                      headers=HEADERS)


def _login_page(request: Request, message: str | None = None, status: int = 200
                ) -> HTMLResponse:
    return _page(request, "login.html", {"message": message, "banner": BANNER}, status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login")
def login(request: Request, state: Service,
          api_key: Annotated[str, Form()] = "") -> Response:
    """A key of the sustainability or admin role gets a session cookie; the key itself is
    never stored, logged or audited (the audit names the key by its id)."""
    if not api_key.strip():
        return _login_page(request, "Enter an API key.", 400)
    with state.sessions() as db:
        key = authenticate(db, api_key.strip())
        db.commit()  # last-used bookkeeping, before the audit append takes the write lock
        if key is None:
            return _login_page(request, "This API key is unknown, wrong or revoked.", 401)
        allowed = Role(key.role) in SUSTAINABILITY
        append_audit(db, key.site, f"key:{key.id}", "dashboard.login", "api_key", str(key.id),
                     "success" if allowed else "refused", {"role": Role(key.role).value})
        db.commit()
        if not allowed:
            return _login_page(request, f"The role {Role(key.role).value} may not open the "
                                        "sustainability dashboard.", 403)
        value = web_session.issue(web_session.installation_secret(state.settings.data_dir), key)
    response = RedirectResponse(PAGE, status_code=303)
    web_session.set_cookie(request, response, value)
    return response


@router.post("/logout")
def logout(request: Request, state: Service) -> Response:
    """Clears the cookie (audited when it was still valid). A copy of the cookie stays valid
    until it expires; revoking the key ends every session of that key at once."""
    cookie = request.cookies.get(web_session.COOKIE)
    if cookie:
        with state.sessions() as db:
            key = web_session.session_key(
                db, web_session.installation_secret(state.settings.data_dir), cookie)
            if key is not None:
                append_audit(db, key.site, f"key:{key.id}", "dashboard.logout", "api_key",
                             str(key.id), "success")
                db.commit()
    response = RedirectResponse(LOGIN, status_code=303)
    web_session.clear_cookie(request, response)
    return response


@dataclass(frozen=True)
class Tile:
    label: str
    path: str  # where the same figure is in the summary JSON, e.g. "compute.energy_kwh"
    value: float | int | None  # None: not known (no job with measured energy)
    text: str
    unit: str
    note: str


def _spread(total: dict[str, float] | None) -> str:
    """A total's low - high range, where it is known (every record made with the set in
    force)."""
    return "" if total is None else f"; range {total['low']:.3f} \u2013 {total['high']:.3f}"


def _tiles(s: dict[str, Any]) -> list[Tile]:
    counts, compute, avoided, net = s["counts"], s["compute"], s["avoided"], s["net_kg_co2e"]
    pot, conf = avoided["potential"], avoided["confirmed"]
    unmeasured = counts["energy_unavailable"]
    left_out = f"; {unmeasured} job(s) without energy left out" if unmeasured else ""
    mean = compute["energy_kwh_mean_per_scan"]
    per_scan, grid = s["avoided_range"]["per_scan_kg_co2e"], s["compute_settings"]
    compute_per_scan = compute["emissions_kg_co2e_per_scan"]
    return [
        Tile("Scans", "counts.jobs", counts["jobs"], f"{counts['jobs']:,}", "jobs",
             f"{counts['succeeded']} succeeded, {counts['rejected']} rejected, "
             f"{counts['failed']} failed"),
        Tile("Compute energy", "compute.energy_kwh", compute["energy_kwh"],
             f"{compute['energy_kwh']:.4f}", "kWh",
             "mean per scan " + ("n/a" if mean is None else f"{mean:.4f} kWh")),
        Tile("Emitted", "compute.emissions_kg_co2e", compute["emissions_kg_co2e"],
             f"{compute['emissions_kg_co2e']:.3f}", "kg CO2e",
             "Scope 2, location-based electricity"),
        Tile("Compute CO2e per scan", "compute.emissions_kg_co2e_per_scan", compute_per_scan,
             "n/a" if compute_per_scan is None else f"{compute_per_scan * 1000:.3f}",
             "g CO2e", f"our processing: kWh x {grid['grid_intensity_kg_co2e_per_kwh']:.3f} "
             f"kg CO2e/kWh ({grid['country_iso_code']} grid), PUE {grid['pue']:g}"),
        Tile("Avoided per scan", "avoided_range.per_scan_kg_co2e.central", per_scan["central"],
             f"{per_scan['low']:.2f} \u2013 {per_scan['central']:.2f} \u2013 "
             f"{per_scan['high']:.2f}", "kg CO2e",
             f"low \u2013 central \u2013 high, {s['avoided_range']['factor_set']}: "
             f"{s['avoided_range']['kind_label']}"),
        Tile("Potential avoided", "avoided.potential.kg_co2e", pot["kg_co2e"],
             f"{pot['kg_co2e']:.3f}", "kg CO2e",
             "every succeeded job" + _spread(s["avoided_range"]["potential_kg_co2e"])),
        Tile("Confirmed avoided", "avoided.confirmed.kg_co2e", conf["kg_co2e"],
             f"{conf['kg_co2e']:.3f}", "kg CO2e",
             f"{counts['outcome_contrast_avoided']} job(s) confirmed by the site"
             + _spread(s["avoided_range"]["confirmed_kg_co2e"])),
        Tile("Net, potential", "net_kg_co2e.potential", net["potential"],
             f"{net['potential']:+.3f}", "kg CO2e", f"avoided minus emitted{left_out}"),
        Tile("Net, confirmed", "net_kg_co2e.confirmed", net["confirmed"],
             f"{net['confirmed']:+.3f}", "kg CO2e", f"avoided minus emitted{left_out}"),
        Tile("Iodine avoided, potential", "avoided.potential.iodine_g", pot["iodine_g"],
             f"{pot['iodine_g']:,.1f}", "g", "contrast protocol volume x concentration"),
        Tile("Iodine avoided, confirmed", "avoided.confirmed.iodine_g", conf["iodine_g"],
             f"{conf['iodine_g']:,.1f}", "g", "jobs confirmed by the site"),
    ]


def _instant(value: str | None, name: str, *, end: bool) -> datetime | None:
    """A calendar day (UTC; 'to' includes that day) or an ISO 8601 time with a zone."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise DigitalContrastError("REQUEST_INVALID", f"'{name}' is neither a day "
                                   "(YYYY-MM-DD) nor an ISO 8601 time") from None
    if _DAY.match(value):
        when = when.replace(tzinfo=UTC)
    when = checked_instant(when, name)  # the API's zone and range rules
    return when + timedelta(days=1) if end and _DAY.match(value) else when


def _query(filters: FootprintFilter, bucket: str) -> dict[str, str]:
    """The page's filters as API query parameters (the CSV link, the API's summary)."""
    query = {"from": filters.start.isoformat() if filters.start else None,
             "to": filters.end.isoformat() if filters.end else None,
             "use_case": filters.use_case, "model_version": filters.model_version}
    return {k: v for k, v in query.items() if v} | ({"bucket": bucket} if bucket else {})


@router.get("/sustainability", response_class=HTMLResponse)
def sustainability_page(
        request: Request, state: Service, db: DbSession, caller: Caller,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        use_case: Annotated[str | None, Query(max_length=64)] = None,
        model_version: Annotated[str | None, Query(max_length=64)] = None,
        bucket: Annotated[str, Query(max_length=8)] = "day") -> HTMLResponse:
    everything = FootprintFilter(caller.site)
    context: dict[str, Any] = {
        "banner": BANNER, "evidence": EVIDENCE, "caller": caller, "buckets": BUCKETS,
        "form": {"from": start or "", "to": end or "", "use_case": use_case or "",
                 "model_version": model_version or "", "bucket": bucket},
        "use_cases": [r["use_case"] for r in breakdown(db, everything, "use_case")],
        "model_versions": [r["model_version"] for r in breakdown(db, everything,
                                                                 "model_version")]}
    try:  # a bad filter shows the form again with the reason, not a JSON error
        filters = FootprintFilter(caller.site, _instant(start, "from", end=False),
                                  _instant(end, "to", end=True), use_case or None,
                                  model_version or None)
        if bucket not in BUCKETS:
            raise DigitalContrastError("BUCKET_INVALID",
                                       f"bucket must be one of {', '.join(BUCKETS)}")
    except DigitalContrastError as exc:
        return _page(request, "sustainability.html", context | {"error": exc.detail}, 422)
    summary = summary_view(db, state, filters)
    charts = {"bucket": bucket, "series": timeseries(db, filters, cast(Bucket, bucket)),
              "by_model_version": breakdown(db, filters, "model_version"),
              "by_use_case": breakdown(db, filters, "use_case"),
              "energy_histogram": energy_histogram(db, filters, HISTOGRAM_BINS)}
    query = _query(filters, bucket)
    return _page(request, "sustainability.html", context | {
        "filters": filters, "summary": summary, "tiles": _tiles(summary), "charts": charts,
        "factors": summary["factor_set_in_force"], "api_query": query,
        "csv_query": {k: v for k, v in query.items() if k != "bucket"}})


def install_login_redirect(app: FastAPI) -> None:
    """A browser asking for a page without a valid session is sent to the login page (a
    refused role sees an HTML page); API clients keep the RFC 9457 problem."""

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        status = getattr(exc, "status", None) or status_for(exc.code)
        route = (request.method, getattr(request.scope.get("route"), "path", ""))
        if route in PAGE_ROLES and "text/html" in request.headers.get("accept", ""):
            if status != 401:
                return _login_page(request, exc.detail, status)
            response = RedirectResponse(LOGIN, status_code=303)
            if web_session.COOKIE in request.cookies:  # stale or forged: drop it
                web_session.clear_cookie(request, response)
            return response
        return error_problem(exc)
