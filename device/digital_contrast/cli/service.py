"""`digital-contrast serve`, `worker` and `purge`: running the clinical service."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from digital_contrast import __version__
from digital_contrast.cli.output import console, fail, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import get_settings


@user_errors
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535)] = 8000) -> None:
    """Run the clinical service (DICOMweb, jobs, keys); an admin key is created on first start."""
    import uvicorn

    from digital_contrast.api.app import create_app
    from digital_contrast.service.first_start import create_initial_admin_key

    settings = get_settings()
    with service_state() as state:
        plaintext = create_initial_admin_key(state)
    console.print(f"Digital Contrast {__version__}: http://{host}:{port}/docs "
                  f"(site {settings.site}, data {settings.data_dir.resolve()})")
    if plaintext is not None:
        console.print("First start: an admin key was created. It is shown once; keep it:")
        console.print(plaintext, highlight=False, soft_wrap=True)
    with _dimse_listener(settings.dimse_port is not None):
        # No access log: request lines carry UIDs and query values (PatientID) in URLs.
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                    access_log=False, http="httptools", loop="uvloop")


@contextmanager
def _dimse_listener(wanted: bool) -> Iterator[None]:
    """The DIMSE listener on DC_DIMSE_HOST:DC_DIMSE_PORT for as long as the block runs."""
    if not wanted:
        yield
        return
    from digital_contrast.dimse import StorageSCP

    with service_state() as state:
        scp = StorageSCP(state)
        port = scp.start()
        settings = state.settings
        console.print(f"DIMSE: AE title {settings.dimse_ae_title} on "
                      f"{settings.dimse_host}:{port} (C-STORE, C-ECHO; senders: "
                      "`digital-contrast senders list`)")
        try:
            yield
        finally:
            scp.stop()


@user_errors
def dimse() -> None:
    """Run the DIMSE listener alone (C-STORE, C-ECHO) on DC_DIMSE_HOST:DC_DIMSE_PORT, until
    interrupted; the service's workers and auto-run pick up what it stores."""
    import threading

    settings = get_settings()
    if settings.dimse_port is None:
        raise fail("DIMSE_PORT_MISSING", "set DC_DIMSE_PORT (e.g. 11112) to run the listener")
    stop = threading.Event()
    with _dimse_listener(True):
        try:
            stop.wait()
        except KeyboardInterrupt:
            console.print("DIMSE listener stopped")


@user_errors
def worker(
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
) -> None:
    """Run a job worker as its own process against the service's database."""
    import threading

    from digital_contrast.jobs.worker import Worker

    with service_state() as state:
        runner = Worker(state, lease_seconds=state.settings.job_lease_s)
        console.print(f"worker {runner.worker_id} on {state.engine.url.get_backend_name()}")
        if once:
            runner.run_once()
        else:
            runner.run_until(threading.Event())


@user_errors
def purge_command() -> None:
    """Delete received instances and results older than DC_RETENTION_DAYS (the audit trail
    and de-identified job records stay)."""
    from digital_contrast.service import purge_expired

    with service_state() as state:
        purge_expired(state)
    console.print(f"purged data older than {get_settings().retention_days:g} days")
