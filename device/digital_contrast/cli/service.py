"""`digital-contrast serve`, `worker` and `purge`: running the clinical service."""

import errno
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from digital_contrast import __version__
from digital_contrast.cli.output import console, fail, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import Settings, get_settings

log = logging.getLogger(__name__)
FIRST_ADMIN_KEY = "first-admin-key"  # in the keys folder, when no terminal shows it

def _service_process(settings: Settings) -> None:
    from digital_contrast.service.process import prepare_service_process

    prepare_service_process(settings)


@user_errors
def serve(host: Annotated[str | None, typer.Option(
              help="Interface to listen on (default DC_HOST, 127.0.0.1).")] = None,
          port: Annotated[int | None, typer.Option(
              min=1, max=65535, help="Port (default DC_PORT, 8000).")] = None,
          processes: Annotated[int | None, typer.Option(
              min=1, max=64, help="HTTP processes (default DC_SERVICE_PROCESSES, 1).")] = None,
          ) -> None:
    """Run the clinical service (DICOMweb, jobs, keys; DIMSE when DC_DIMSE_PORT is set). On the
    first start an admin key is created once the ports are bound. With several processes the
    requests are shared among them and the background work (jobs, deliveries, audit export,
    auto-run, purge, the DIMSE listener) runs once, in the parent process."""
    import uvicorn

    from digital_contrast.api.app import create_app
    from digital_contrast.service.first_start import create_initial_admin_key

    settings = get_settings()
    _service_process(settings)
    host, port = host or settings.host, port or settings.port
    processes = processes or settings.service_processes
    sock = _bound(host, port)  # before anything is created: a taken port changes nothing
    with _dimse_listener(settings.dimse_port is not None):
        with service_state() as state:
            plaintext = create_initial_admin_key(state)
        console.print(f"Digital Contrast {__version__}: http://{host}:{port}/ "
                      f"(site {settings.site}, data {settings.data_dir}, {processes} HTTP "
                      f"process{'es' if processes > 1 else ''})", highlight=False)
        if plaintext is not None:
            _show_first_admin_key(plaintext, settings)
        # No uvicorn access log: its request lines carry query values (PatientName); the app
        # logs each request itself, by route template (api.request_ids). log_config=None:
        # uvicorn's records go to the scrubbing root handler, not to its own formatters.
        options = {"log_config": None, "log_level": None, "access_log": False,
                   "http": "httptools", "loop": "uvloop"}
        if processes == 1:
            uvicorn.Server(uvicorn.Config(create_app(settings), **options)).run(sockets=[sock])
        else:
            _serve_processes(settings, sock, processes, options)


def _serve_processes(settings: Settings, sock: socket.socket, processes: int,
                     options: dict[str, object]) -> None:
    """`processes` HTTP processes on one socket (the kernel shares the connections), kept
    alive by uvicorn's supervisor; this process runs the background work alone."""
    import threading

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from digital_contrast.api.app import start_background
    from digital_contrast.service import open_state

    state = open_state(settings)
    stop = threading.Event()
    threads = start_background(state, settings, stop)
    log.info("background work runs in process %d; %d HTTP processes", os.getpid(), processes)
    try:
        config = uvicorn.Config("digital_contrast.api.app:request_app", factory=True,
                                workers=processes, **options)  # type: ignore[arg-type]
        Multiprocess(config, sockets=[sock]).run()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        state.engine.dispose()


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to host:port for uvicorn to serve on; SERVE_PORT_IN_USE when taken."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise fail("SERVE_PORT_IN_USE" if exc.errno == errno.EADDRINUSE else "SERVE_BIND_FAILED",
                   f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another "
                   "with --port or DC_PORT (make run PORT=...)") from None
    return sock


def _show_first_admin_key(plaintext: str, settings: Settings) -> None:
    """On a terminal, shown once; otherwise (a service manager, a log) never printed: written
    to a 0600 file of the keys folder for the operator to read once and delete."""
    if sys.stdout.isatty():
        console.print("First start: an admin key was created. It is shown once; keep it:")
        console.print(plaintext, highlight=False, soft_wrap=True)
        return
    from digital_contrast.keys.folder import keys_folder

    path = keys_folder(settings).write_private(plaintext.encode() + b"\n", FIRST_ADMIN_KEY)
    console.print(f"First start: an admin key was created and written to {path} (not to this "
                  "output); read it once, then delete the file.", highlight=False)


@contextmanager
def _dimse_listener(wanted: bool) -> Iterator[None]:
    """The DIMSE listener on DC_DIMSE_HOST:DC_DIMSE_PORT for as long as the block runs."""
    if not wanted:
        yield
        return
    from digital_contrast.dimse import StorageSCP

    with service_state() as state:
        scp = StorageSCP(state)
        try:
            port = scp.start()
        except OSError as exc:
            raise fail("DIMSE_PORT_IN_USE" if exc.errno == errno.EADDRINUSE else
                       "DIMSE_BIND_FAILED", f"cannot listen on {state.settings.dimse_host}:"
                       f"{state.settings.dimse_port} ({exc.strerror or exc})") from None
        settings = state.settings
        console.print(f"DIMSE: AE title {settings.dimse_ae_title} on "
                      f"{settings.dimse_host}:{port}{' over TLS' if settings.dimse_tls else ''}"
                      " (C-STORE, C-ECHO; senders: `digital-contrast senders list`)")
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
    _service_process(settings)
    stop = threading.Event()
    with _dimse_listener(True):
        try:
            stop.wait()
        except KeyboardInterrupt:
            console.print("DIMSE listener stopped")


@user_errors
def worker(
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit (embedded "
                                            "executor only).")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs at a time, one pool "
                                             "process each (Celery executor only).")] = 1,
) -> None:
    """Run a job worker as its own process against the service's database: an embedded-queue
    worker, or under DC_EXECUTOR=celery a Celery worker consuming this installation's queue."""
    import threading

    from digital_contrast.jobs.worker import Worker

    settings = get_settings()
    _service_process(settings)
    if settings.executor == "celery":
        if once:
            raise fail("WORKER_ONCE_EMBEDDED_ONLY", "--once runs one job of the embedded "
                       "queue; Celery workers run until stopped")
        _celery_worker(settings, concurrency)
        return
    if concurrency != 1:
        raise fail("WORKER_CONCURRENCY_CELERY_ONLY", "an embedded worker runs one job at a "
                   "time (torch's threads are per process): start more worker processes")
    with service_state() as state:
        runner = Worker(state, lease_seconds=settings.job_lease_s)
        console.print(f"worker {runner.worker_id} on {state.engine.url.get_backend_name()}")
        if once:
            runner.run_once()
        else:
            runner.run_until(threading.Event())


def _celery_worker(settings: Settings, concurrency: int) -> None:
    """A Celery worker (prefork pool) on this installation's queue, until stopped."""
    from celery.signals import worker_ready

    from digital_contrast.jobs.celery_executor import make_celery, queue_name

    with service_state() as state:  # the database is reachable and at head before consuming
        backend = state.engine.url.get_backend_name()
    console.print(f"Celery worker on {queue_name(settings)} ({backend}, {concurrency} "
                  "process(es))")
    app = make_celery(settings)

    @worker_ready.connect(weak=False)
    def ready(**_: object) -> None:
        log.info("Celery worker ready on %s", queue_name(settings))

    app.worker_main([
        "worker", "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        f"--hostname=dc-{socket.gethostname()}-{os.getpid()}"])


@user_errors
def purge_command() -> None:
    """Delete received instances and results older than DC_RETENTION_DAYS (the audit trail
    and de-identified job records stay)."""
    from digital_contrast.service import purge_expired

    _service_process(get_settings())
    with service_state() as state:
        purge_expired(state)
    console.print(f"purged data older than {get_settings().retention_days:g} days")
