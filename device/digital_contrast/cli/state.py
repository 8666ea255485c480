"""The service's state for one operator command, and the audit of operator actions."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from digital_contrast.config import get_settings

if TYPE_CHECKING:
    from digital_contrast.service import ServiceState


@contextmanager
def service_state() -> Iterator["ServiceState"]:
    """The service's database (migrated) and stores, released afterwards."""
    from digital_contrast.service import opened_state

    with opened_state(get_settings()) as state:
        yield state


def audit(action: str, object_type: str, object_id: str | None,
          detail: dict[str, object]) -> None:
    """An operator action recorded in the service's audit trail."""
    from digital_contrast.store.audit import append_audit

    with service_state() as state, state.sessions() as db:
        append_audit(db, get_settings().site, "cli", action, object_type, object_id, "success",
                     detail)
        db.commit()
