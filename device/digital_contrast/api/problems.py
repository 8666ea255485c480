"""RFC 9457 problem details: every error a client sees, with a stable `code` and no internals.

A `DigitalContrastError` keeps its code; its HTTP status comes from `STATUS_BY_CODE` (a code's
prefix when the code itself is not listed), and `see` names the guide section that says what to
do next. Anything unexpected becomes a 500 with code
`INTERNAL_ERROR` and an error id that operators find in the log; the exception never leaves the
server.
"""

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from digital_contrast.errors import DigitalContrastError
from digital_contrast.logs import REQUEST_ID

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

# Exact codes first, then prefixes (the part before the first underscore) as a fallback.
STATUS_BY_CODE: dict[str, int] = {
    "AUTH_MISSING": 401, "AUTH_INVALID": 401, "AUTH_FORBIDDEN": 403,
    "NOT_FOUND": 404, "JOB_NOT_FOUND": 404, "SERIES_NOT_FOUND": 404, "STUDY_NOT_FOUND": 404,
    "INSTANCE_NOT_FOUND": 404, "RESULT_NOT_READY": 409, "SERIES_CHANGED": 409,
    "USECASE_UNKNOWN": 422, "USECASE_NO_MODEL": 409, "REQUEST_INVALID": 422,
    "UPLOAD_TOO_LARGE": 413, "ZIP_TOO_LARGE": 413, "UPLOAD_MEDIA_TYPE": 415,
    "UPLOAD_NO_DICOM": 422, "SERIES_SYNTHETIC": 422,
    "EXPLAIN_METHOD_REFUSED": 409, "EXPLAIN_REGION_INVALID": 422, "MAP_NOT_FOUND": 404,
    "API_KEY_NOT_FOUND": 404, "API_KEY_INVALID": 422, "METHOD_NOT_ALLOWED": 405,
    "RATE_LIMITED": 429, "AUTH_LOCKED": 429, "REQUEST_TOO_LARGE": 413, "REQUEST_TIMEOUT": 408,
    "REQUEST_HEADERS_TOO_LARGE": 431,
    "OUTCOME_NOT_APPLICABLE": 409, "SITE_FORBIDDEN": 403, "ROLE_FORBIDDEN": 403,
    "RANGE_INVALID": 422,
    "BUCKET_INVALID": 422,
    "DESTINATION_NOT_FOUND": 404, "DELIVERY_NOT_FOUND": 404, "DELIVERY_NOTHING_TO_SEND": 409,
    "DELIVERY_INVALID_STATE": 409,
    "RECORD_NOT_FOUND": 404, "RECORD_TAMPERED": 409, "RECORD_UNREADABLE": 409,
    "REGISTRY_UNREACHABLE": 503, "DATABASE_UNREACHABLE": 503,
    "COHORT_UNKNOWN": 404, "COHORT_INVALID": 422, "INDEX_UNAVAILABLE": 503,
    "MODEL_INTEGRITY": 503, "MODEL_NOT_VALIDATED": 503, "MODEL_NOT_REGISTERED": 503,
    # The installation's models and keys, not the request: the operators must act.
    "PROTOCOL_OUTDATED": 503, "REGISTRY_CHANGED_OUTSIDE": 503, "RECORD_UNSIGNED": 503,
    "SIGNER_UNTRUSTED": 503, "SIGNATURE_INVALID": 503, "KEYS_DIR_INVALID": 503,
    "KEY_PERMISSIONS": 503, "TRUSTED_KEY_INVALID": 503, "BUNDLE_FORMAT_UNSUPPORTED": 503,
    "BUNDLE_INVALID": 503, "BUNDLE_MISMATCH": 503,
    # The series does not show what the cascade needs (an aorta, blood to reference).
    "AORTA_NOT_FOUND": 422, "BLOOD_REFERENCE_UNAVAILABLE": 422,
}
STATUS_BY_PREFIX: dict[str, int] = {"ZIP": 422, "IMG": 422, "CONF": 422, "STOW": 400,
                                    "QIDO": 400}


# Where a client (or its operator) reads what to do next: every problem names a guide section.
_MODELS = "docs/operations.md#models-and-the-registry"
_INPUT = "docs/clinical-integration.md#input-refusals"
_KEYS = "docs/regulatory.md#keys-and-signed-records"
_LIMITS = "docs/operations.md#limits-and-rate-limits"
_REPOSITORY = "docs/repository.md#researcher-access-over-the-api"
GUIDE_BY_CODE: dict[str, str] = {
    "USECASE_NO_MODEL": _MODELS, "PROTOCOL_OUTDATED": _MODELS, "REGISTRY_CHANGED_OUTSIDE": _MODELS,
    "RECORD_UNSIGNED": _KEYS, "SIGNER_UNTRUSTED": _KEYS, "SIGNATURE_INVALID": _KEYS,
    "KEYS_DIR_INVALID": _KEYS, "KEY_PERMISSIONS": _KEYS, "TRUSTED_KEY_INVALID": _KEYS,
    "SERIES_SYNTHETIC": _INPUT, "USECASE_UNKNOWN": "docs/clinical-integration.md#jobs",
    "AORTA_NOT_FOUND": _INPUT, "BLOOD_REFERENCE_UNAVAILABLE": _INPUT,
    "REQUEST_TOO_LARGE": _LIMITS, "REQUEST_TIMEOUT": _LIMITS,
    "REQUEST_HEADERS_TOO_LARGE": _LIMITS, "RATE_LIMITED": _LIMITS, "AUTH_LOCKED": _LIMITS,
}
GUIDE_BY_PREFIX: dict[str, str] = {
    "AUTH": "docs/operations.md#keys", "MODEL": _MODELS, "REGISTRY": _MODELS, "BUNDLE": _MODELS,
    "CONF": "docs/clinical-integration.md#intended-use-envelope-conformity", "IMG": _INPUT,
    "ZIP": _INPUT, "UPLOAD": _INPUT, "STOW": "docs/clinical-integration.md#sending-images",
    "QIDO": "docs/clinical-integration.md#sending-images",
    "EXPLAIN": "docs/clinical-integration.md#explainability-and-confidence",
    "JOB": "docs/clinical-integration.md#jobs", "RESULT": "docs/clinical-integration.md#jobs",
    "DATABASE": "docs/operations.md#the-service", "COHORT": _REPOSITORY, "INDEX": _REPOSITORY,
}
GUIDE_DEFAULT = "docs/clinical-integration.md#errors"


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code) or STATUS_BY_PREFIX.get(code.split("_", 1)[0], 400)


def guide_for(code: str) -> str:
    return GUIDE_BY_CODE.get(code) or GUIDE_BY_PREFIX.get(code.split("_", 1)[0], GUIDE_DEFAULT)


def problem(status: int, code: str, detail: str, title: str | None = None,
            **extra: Any) -> JSONResponse:
    body = {"type": f"urn:digital-contrast:problem:{code.lower()}", "title": title or code,
            "status": status, "code": code, "detail": detail, "see": guide_for(code), **extra}
    request_id = REQUEST_ID.get()
    if request_id is None:
        return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)
    # In the header too: a 500 is sent by Starlette's error middleware, outside RequestIds.
    return JSONResponse(body | {"request_id": request_id}, status_code=status,
                        media_type=MEDIA_TYPE, headers={"X-Request-ID": request_id})


def error_problem(exc: DigitalContrastError) -> JSONResponse:
    """The problem of a typed error: its status, and Retry-After when it says how long."""
    response = problem(getattr(exc, "status", None) or status_for(exc.code), exc.code,
                       exc.detail)
    if (retry_after := getattr(exc, "retry_after_s", None)) is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _route(request: Request) -> str:
    """The route template, not the path: paths carry UIDs."""
    return getattr(request.scope.get("route"), "path", None) or "(no route)"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DigitalContrastError)
    async def _known(request: Request, exc: DigitalContrastError) -> JSONResponse:
        return error_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem(422, "REQUEST_INVALID", "the request does not match the API schema",
                       errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (not UTF-8, not JSON)
            return problem(422, "REQUEST_INVALID", "the request body cannot be parsed")
        code = {401: "AUTH_MISSING", 403: "AUTH_FORBIDDEN", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, f"HTTP_{exc.status_code}")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client left mid-request: nobody reads the answer, and it is not our fault.
        log.info("client disconnected during %s %s", request.method, _route(request))
        return problem(400, "CLIENT_DISCONNECTED", "the client closed the connection before "
                       "the request was complete")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex
        # Type and ids only: a message may quote a DICOM value. Its frames follow in uvicorn's
        # "Exception in ASGI application" line (scrubbed by logs.ScrubFilter).
        log.error("unexpected %s on %s %s (error id %s)", type(exc).__name__, request.method,
                  _route(request), error_id,
                  extra={"event": "http.unexpected", "error_id": error_id})
        return problem(500, "INTERNAL_ERROR", f"unexpected error; reference {error_id}")
