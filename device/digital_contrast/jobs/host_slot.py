"""The host's measured-inference slot, held across worker threads and worker processes.

Measuring energy in machine mode counts the whole host, so only one job per host may be inside
its measured section at a time (see `digital_contrast.carbon.meter`). The slot is a lease in
the database: waited for, renewed while held, released after; a holder that dies stops renewing
and the slot is taken over once its lease expires.
"""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.store.measurement_slots import release, renew, try_acquire


@contextmanager
def host_slot(sessions: sessionmaker[Session], holder: str, *, lease_s: float = 60.0,
              poll_s: float = 0.2, host: str | None = None) -> Iterator[None]:
    host = host or socket.gethostname()
    lease = timedelta(seconds=lease_s)
    while True:
        with sessions() as session:
            if try_acquire(session, host, holder, lease):
                break
        threading.Event().wait(poll_s)
    done = threading.Event()

    def keep() -> None:
        while not done.wait(lease_s / 3):
            with sessions() as session:
                if not renew(session, host, holder, lease):
                    return

    keeper = threading.Thread(target=keep, daemon=True, name="measurement-slot")
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()
        with sessions() as session:
            release(session, host, holder)
