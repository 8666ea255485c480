"""Liveness and readiness. Ready means: the database answers, the registry answers, every use
case with a production model can load it with its hash and validation record verified, and at
least one use case has such a model."""

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from digital_contrast.api.deps import Service
from digital_contrast.api.problems import MEDIA_TYPE
from digital_contrast.errors import DigitalContrastError
from digital_contrast.inference import LockedModel
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.service import ServiceState
from digital_contrast.store.audit import REGISTRY_CHANGED, audit_registry_changed
from digital_contrast.usecases import use_cases

router = APIRouter(tags=["health"])
MODEL_CHECK_TTL_S = 60.0  # a verified load costs a bundle fetch and hash: not on every probe
_model_checks: dict[str, tuple[float, dict[str, Any]]] = {}
_unaudited: list[tuple[str, str]] = []  # (use case, detail) found changed outside our commands


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _model_check(uri: str) -> dict[str, Any]:
    cached = _model_checks.get(uri)
    if cached and time.monotonic() - cached[0] < MODEL_CHECK_TTL_S:
        return cached[1]
    registry = ModelRegistry(uri)
    models: dict[str, Any] = {}
    for case in use_cases().values():
        try:
            model = LockedModel.load(case, registry=registry)
            models[case.id] = {"ok": True, "version": model.registered.version,
                               "bundle_sha256": model.bundle_sha256}
        except DigitalContrastError as exc:
            # A use case shipped without a model is not a fault of this installation.
            models[case.id] = {"ok": exc.code == "USECASE_NO_MODEL", "code": exc.code}
            if exc.code == REGISTRY_CHANGED:  # audited by the request that found it
                _unaudited.append((case.id, exc.detail))
    _model_checks[uri] = (time.monotonic(), models)
    return models


def _audit_registry_changes(state: ServiceState) -> None:
    """Each fresh model check that found the registry changed outside our commands is audited
    once (cached results are not audited again)."""
    if not _unaudited:
        return
    with state.sessions() as db:
        while _unaudited:
            case, detail = _unaudited.pop()
            audit_registry_changed(db, state.settings.site, "readiness", case, detail)
        db.commit()


def readiness(state: ServiceState) -> tuple[bool, str | None, dict[str, Any]]:
    """Whether the service is ready, why not (None when it is), and the checks."""
    checks: dict[str, Any] = {}
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "code": "DATABASE_UNREACHABLE",
                              "error": type(exc).__name__}
    models = checks["models"] = _model_check(state.settings.mlflow_uri)
    _audit_registry_changes(state)
    # A use case shipped without a model is fine; a service with no usable model is not ready.
    ready = (checks["database"]["ok"] and all(m["ok"] for m in models.values())
             and any("bundle_sha256" in m for m in models.values()))
    if ready:
        return True, None, checks
    failed = (["database"] if not checks["database"]["ok"] else []) + \
        [f"model {case} ({check.get('code')})" for case, check in models.items()
         if not check["ok"]]
    return False, (f"failed: {', '.join(failed)}" if failed
                   else "no use case has a validated production model"), checks


@router.get("/readyz", summary="Readiness",
            responses={503: {"content": {MEDIA_TYPE: {}}, "description": "not ready"}})
def readyz(state: Service) -> JSONResponse:
    ready, detail, checks = readiness(state)
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse({"type": "urn:digital-contrast:problem:not_ready", "title": "NOT_READY",
                         "status": 503, "code": "NOT_READY", "detail": detail,
                         "checks": checks}, status_code=503, media_type=MEDIA_TYPE)
