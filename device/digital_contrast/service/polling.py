"""The loop every background worker of the service runs (jobs, deliveries): do one unit of
work while there is some, otherwise wait; an error is logged by type and the loop goes on."""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def poll_until(stop: threading.Event, run_once: Callable[[], bool], poll_seconds: float,
               who: str) -> None:
    """`run_once()` says whether it found work; without work the loop waits `poll_seconds`."""
    while not stop.is_set():
        try:
            if run_once():
                continue
        except Exception as exc:  # a database hiccup must not end the worker
            log.error("%s: %s while claiming or recording its work", who, type(exc).__name__)
        stop.wait(poll_seconds)
