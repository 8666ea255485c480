"""The service's state, assembled once for the API, the job workers and the command line."""

from digital_contrast.service.assembly import open_state, opened_state, purge_expired
from digital_contrast.service.state import ServiceState

__all__ = ["ServiceState", "open_state", "opened_state", "purge_expired"]
