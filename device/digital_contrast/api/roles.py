"""Who may call what: one matrix for every route, applied by one dependency.

A route missing from the matrix is refused for everyone (fail closed), and a test walks the
app's route table against it. Least privilege: only clinicians touch patient data; admins
manage keys and models but do not read images; researchers read the CT repository's index
(pseudonymous series and cohorts) and nothing else, never the clinical store.
"""

import re

from digital_contrast.store.enums import Role

PUBLIC: frozenset[Role] = frozenset()  # no key needed
CLINICAL = frozenset({Role.CLINICIAN})
RECORDS = frozenset({Role.REGULATORY, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})
SUSTAINABILITY = frozenset({Role.SUSTAINABILITY, Role.ADMIN})
# Not even admins: the repository's research data stays with the role that has a purpose for it.
RESEARCH = frozenset({Role.RESEARCHER})

ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("POST", "/dicomweb/studies"): CLINICAL,
    ("POST", "/dicomweb/studies/{study}"): CLINICAL,
    ("GET", "/dicomweb/studies"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series/{series}"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series/{series}/instances/{instance}"): CLINICAL,
    ("GET", "/dicomweb/series"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series/{series}/instances"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/metadata"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series/{series}/metadata"): CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata"):
        CLINICAL,
    ("GET", "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}"):
        CLINICAL,
    ("POST", "/v1/uploads"): CLINICAL,
    ("POST", "/v1/jobs"): CLINICAL,
    ("GET", "/v1/jobs"): CLINICAL,
    ("GET", "/v1/jobs/{job_id}"): CLINICAL,
    ("GET", "/v1/jobs/{job_id}/result.zip"): CLINICAL,
    ("POST", "/v1/jobs/{job_id}/explain"): CLINICAL,
    ("GET", "/v1/jobs/{job_id}/maps"): CLINICAL,
    ("GET", "/v1/jobs/{job_id}/maps/{slug}/{name}"): CLINICAL,
    ("POST", "/v1/jobs/{job_id}/outcome"): CLINICAL,
    ("POST", "/v1/jobs/{job_id}/deliveries"): CLINICAL,
    ("GET", "/v1/sustainability/summary"): SUSTAINABILITY,
    ("GET", "/v1/sustainability/timeseries"): SUSTAINABILITY,
    ("GET", "/v1/sustainability/export.csv"): SUSTAINABILITY,
    ("GET", "/v1/repository/series"): RESEARCH,
    ("GET", "/v1/repository/cohorts"): RESEARCH,
    ("GET", "/v1/repository/cohorts/{name}"): RESEARCH,
    ("GET", "/v1/audit"): RECORDS,
    ("GET", "/v1/models"): RECORDS,
    ("GET", "/v1/records/validation"): RECORDS,
    ("GET", "/v1/records/validation/{record_id}/{file_name}"): RECORDS,
    ("GET", "/v1/records/qms"): RECORDS,
    ("GET", "/v1/records/qms/{file_name}"): RECORDS,
    ("GET", "/v1/records/releases"): RECORDS,
    ("GET", "/v1/records/releases/{version}"): RECORDS,
    ("GET", "/v1/records/releases/{version}/files/{path}"): RECORDS,
    ("GET", "/v1/keys"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): ADMIN,
    ("POST", "/v1/keys/{key_id}/rotate"): ADMIN,
}

# HTML pages of the dashboard: same rule, kept apart because they are not part of the JSON
# API (left out of its OpenAPI document, whose operations are exactly ROUTE_ROLES).
PAGE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/dashboard/login"): PUBLIC,
    ("POST", "/dashboard/login"): PUBLIC,  # checks the submitted key itself
    ("POST", "/dashboard/logout"): PUBLIC,  # only clears the cookie
    ("GET", "/dashboard/sustainability"): SUSTAINABILITY,
}

# Mounted sub-apps bypass route dependencies, so each is listed here on purpose: /static
# serves the dashboard's own CSS, JS and vendored Chart.js, no data; public and read-only
# (StaticFiles answers GET and HEAD only).
PUBLIC_MOUNTS: frozenset[str] = frozenset({"/static"})


# A route's own path keeps Starlette's convertors (`{path:path}`); the matrix, like the OpenAPI
# document, names the bare parameter (`{path}`).
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def roles_for(method: str, path: str) -> frozenset[Role] | None:
    """The roles allowed on a route; None when the route is not in the matrix."""
    route = (method.upper(), _CONVERTOR.sub(r"{\1}", path))
    return ROUTE_ROLES.get(route, PAGE_ROLES.get(route))
