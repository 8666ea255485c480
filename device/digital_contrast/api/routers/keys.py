"""API keys (admin): create (the key is shown once), list, revoke."""

from fastapi import APIRouter, Response

from digital_contrast.api.deps import Caller, DbSession
from digital_contrast.api.schemas import KeyRequest, KeyView, NewKey
from digital_contrast.store.api_keys import create_api_key, list_keys, revoke
from digital_contrast.store.audit import append_audit

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201, summary="Create an API key")
def create_key(request: KeyRequest, db: DbSession, caller: Caller) -> NewKey:
    site = request.site or caller.site
    key, plaintext = create_api_key(db, site, request.name, request.role)
    append_audit(db, site, caller.actor, "key.create", "api_key", str(key.id), "success",
                 {"role": key.role.value, "name": key.name})
    db.commit()
    return NewKey(**KeyView.model_validate(key, from_attributes=True).model_dump(), key=plaintext)


@router.get("", summary="List the API keys of this site")
def keys(db: DbSession, caller: Caller) -> list[KeyView]:
    return [KeyView.model_validate(k, from_attributes=True) for k in list_keys(db, caller.site)]


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(key_id: int, db: DbSession, caller: Caller) -> Response:
    key = revoke(db, key_id, site=caller.site)  # API_KEY_NOT_FOUND for another site's key
    append_audit(db, caller.site, caller.actor, "key.revoke", "api_key", str(key.id), "success")
    db.commit()
    return Response(status_code=204)
