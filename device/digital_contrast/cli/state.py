"""The service's state for one operator command, and the audit of operator actions."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from digital_contrast.cli.output import err_console
from digital_contrast.config import get_settings

if TYPE_CHECKING:
    from digital_contrast.service import ServiceState


_shown: set[str] = set()


@contextmanager
def service_state() -> Iterator["ServiceState"]:
    """The service's database (migrated) and stores, released afterwards. The first use in a
    process names the data folder (absolute) on standard error: an operator in the wrong
    folder, or with the wrong DC_DATA_DIR, sees it before acting on it."""
    from digital_contrast.service import opened_state

    settings = get_settings()
    if str(settings.data_dir) not in _shown:
        _shown.add(str(settings.data_dir))
        err_console.print(f"data {settings.data_dir} (site {settings.site})", style="dim",
                          highlight=False, soft_wrap=True)
    with opened_state(settings) as state:
        yield state


def audit(action: str, object_type: str, object_id: str | None,
          detail: dict[str, object]) -> None:
    """An operator action recorded in the service's audit trail."""
    from digital_contrast.store.audit import append_audit

    with service_state() as state, state.sessions() as db:
        append_audit(db, get_settings().site, "cli", action, object_type, object_id, "success",
                     detail)
        db.commit()
