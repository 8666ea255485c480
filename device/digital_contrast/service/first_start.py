"""The first start of a site: an admin key, created once and audited, so that the operator
can create every other key through the API."""

from digital_contrast.service.state import ServiceState
from digital_contrast.store import Role
from digital_contrast.store.api_keys import create_api_key, list_keys
from digital_contrast.store.audit import append_audit


def create_initial_admin_key(state: ServiceState) -> str | None:
    """The new admin key (its only showing) when the site has no key yet; None otherwise."""
    with state.sessions() as db:
        if list_keys(db):
            return None
        key, plaintext = create_api_key(db, state.settings.site, "initial-admin", Role.ADMIN)
        append_audit(db, state.settings.site, "system", "key.create", "api_key", str(key.id),
                     "success", {"role": "admin", "name": key.name, "first_start": True})
        db.commit()
    return plaintext
