"""The OpenAPI description names, for every operation, the error responses it can give, each
with the problem+json body the server really sends (RFC 9457, with our `code`); FastAPI's own
422 (HTTPValidationError) is replaced, since the server answers REQUEST_INVALID problems."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from digital_contrast.api.problems import MEDIA_TYPE
from digital_contrast.api.roles import PUBLIC, roles_for

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable, `see` names the guide section",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "example": "urn:digital-contrast:problem:job_not_found"},
        "title": {"type": "string", "example": "JOB_NOT_FOUND"},
        "status": {"type": "integer", "example": 404},
        "code": {"type": "string", "example": "JOB_NOT_FOUND"},
        "detail": {"type": "string", "example": "no job with this id at this site"},
        "see": {"type": "string", "example": "docs/clinical-integration.md#jobs"},
        "request_id": {"type": "string", "example": "9f1c2e7a4b3d4f0e8a6b5c4d3e2f1a0b",
                       "description": "The request's id (also the X-Request-ID response "
                       "header), in every log line of the request"},
        "errors": {"type": "array", "description": "REQUEST_INVALID only: what did not match",
                   "items": {"type": "object", "properties": {
                       "loc": {"type": "array", "items": {}}, "msg": {"type": "string"}}}},
    },
}
_WHY = {
    400: "A malformed request (STOW framing, QIDO query, UID in the URL)",
    401: "AUTH_MISSING or AUTH_INVALID: no key, or an unknown, wrong or revoked one",
    403: "AUTH_FORBIDDEN: the key's role may not do this",
    404: "Not found at this site (NOT_FOUND, JOB_NOT_FOUND, ...)",
    422: "REQUEST_INVALID (the body or query does not match the schema, `errors` says where) "
         "or a refusal of the content",
    500: "INTERNAL_ERROR: unexpected; the detail carries a reference for the operators",
    503: "The installation cannot serve this now (DATABASE_UNREACHABLE, model or key problems)",
}


def _error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    statuses = [500, 503]
    if roles_for(method.upper(), path) != PUBLIC:
        statuses += [401, 403]
    if "{" in path:
        statuses += [404]
    if operation.get("parameters") or operation.get("requestBody"):
        statuses += [422]
    if path.startswith("/dicomweb"):
        statuses += [400]
    return sorted(statuses)


def install_problem_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        reference = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in _error_statuses(method, path, operation):
                    declared = responses.get(str(status), {}).get("description")
                    responses[str(status)] = {
                        "description": declared if declared and status != 422
                        else _WHY[status]}
                for status, response in responses.items():  # declared ones too, e.g. 409
                    if status[0] in "45":
                        response["content"] = reference
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
