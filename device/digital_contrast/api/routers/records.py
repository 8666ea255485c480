"""Records for regulatory readers: the audit trail of the site and the model registry."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.store.audit import list_audit
from digital_contrast.usecases import use_cases

router = APIRouter(prefix="/v1", tags=["records"])


@router.get("/audit", summary="Audit events of this site")
def audit(db: DbSession, caller: Caller,
          since: Annotated[datetime | None, Query()] = None,
          limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict[str, Any]]:
    return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action,
             "object_type": e.object_type, "object_id": e.object_id, "outcome": e.outcome,
             "detail": e.detail, "hash": e.hash}
            for e in list_audit(db, caller.site, since=since, limit=limit)]


@router.get("/models", summary="Registered model versions per use case")
def models(state: Service, caller: Caller) -> dict[str, list[dict[str, Any]]]:
    registry = ModelRegistry(state.settings.mlflow_uri)
    return {case.id: [{"version": v.version, "model_version": v.model_version,
                       "bundle_sha256": v.sha256, "aliases": list(v.aliases),
                       "validation_passed": v.validation_passed}
                      for v in registry.versions(case.model_name, missing_ok=True)]
            for case in use_cases().values()}
