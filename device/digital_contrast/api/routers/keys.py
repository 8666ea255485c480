"""API keys (admin): create (the key is shown once), list, rotate, revoke."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response

from digital_contrast.api.deps import Caller, DbSession
from digital_contrast.api.schemas import KeyRequest, KeyRotation, KeyView, NewKey
from digital_contrast.errors import DigitalContrastError
from digital_contrast.store import Role
from digital_contrast.store.api_keys import create_api_key, list_keys, revoke, rotate_api_key
from digital_contrast.store.audit import append_audit

router = APIRouter(prefix="/v1/keys", tags=["keys"])


KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The key's id")]


@router.post("", status_code=201, summary="Create an API key")
def create_key(request: KeyRequest, db: DbSession, caller: Caller) -> NewKey:
    """For the administrator's own site only (SITE_FORBIDDEN otherwise), and never a clinician
    key (ROLE_FORBIDDEN): keys that read images are made by an operator at the host
    (`digital-contrast keys create`)."""
    site = request.site or caller.site
    if site != caller.site:
        raise DigitalContrastError("SITE_FORBIDDEN", "an administrator manages the keys of "
                                   "its own site only")
    if request.role is Role.CLINICIAN:
        raise DigitalContrastError("ROLE_FORBIDDEN", "clinician keys read patient images: "
                                   "an operator creates them at the host with "
                                   "`digital-contrast keys create`")
    key, plaintext = create_api_key(db, site, request.name, request.role,
                                    valid_for=timedelta(days=request.valid_days))
    append_audit(db, site, caller.actor, "key.create", "api_key", str(key.id), "success",
                 {"role": key.role.value, "name": key.name, "valid_days": request.valid_days})
    db.commit()
    return NewKey(**KeyView.model_validate(key, from_attributes=True).model_dump(), key=plaintext)


@router.get("", summary="List the API keys of this site")
def keys(db: DbSession, caller: Caller) -> list[KeyView]:
    return [KeyView.model_validate(k, from_attributes=True) for k in list_keys(db, caller.site)]


@router.post("/{key_id}/rotate", status_code=201, summary="Rotate an API key")
def rotate_key(key_id: KeyId, request: KeyRotation, db: DbSession, caller: Caller) -> NewKey:
    """A successor with the key's name and role (shown once); the old key keeps working for
    `grace_days`, then expires. A clinician key is rotated by an operator at the host
    (ROLE_FORBIDDEN), as it was created."""
    key = next((k for k in list_keys(db, caller.site) if k.id == key_id), None)
    if key is not None and key.role is Role.CLINICIAN:
        raise DigitalContrastError("ROLE_FORBIDDEN", "clinician keys are rotated by an "
                                   "operator at the host (`digital-contrast keys rotate`)")
    old, new, plaintext = rotate_api_key(db, key_id, site=caller.site,
                                         grace=timedelta(days=request.grace_days),
                                         valid_for=timedelta(days=request.valid_days))
    append_audit(db, caller.site, caller.actor, "key.rotate", "api_key", str(old.id),
                 "success", {"successor": new.id, "grace_days": request.grace_days})
    db.commit()
    return NewKey(**KeyView.model_validate(new, from_attributes=True).model_dump(), key=plaintext)


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(key_id: KeyId, db: DbSession, caller: Caller) -> Response:
    key = revoke(db, key_id, site=caller.site)  # API_KEY_NOT_FOUND for another site's key
    append_audit(db, caller.site, caller.actor, "key.revoke", "api_key", str(key.id), "success")
    db.commit()
    return Response(status_code=204)
