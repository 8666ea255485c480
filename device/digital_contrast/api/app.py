"""The service: `create_app()` builds the FastAPI app; its lifespan opens the service state
(`service.open_state`: database migrated to head, instance store, meter) and starts the
in-process job workers (or, under the Celery executor, the dispatcher that hands jobs to the
broker), a delivery worker (results to the PACS), the auto-run rule and the
scheduled purge when configured."""

import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from digital_contrast import PRODUCT_NAME, __version__
from digital_contrast.api.cache_control import NoStore
from digital_contrast.api.deps import authorize
from digital_contrast.api.openapi_problems import install_problem_openapi
from digital_contrast.api.problems import install_problem_handlers
from digital_contrast.api.rate_limits import RateLimits
from digital_contrast.api.request_ids import HEADER as REQUEST_ID_HEADER
from digital_contrast.api.request_ids import RequestIds
from digital_contrast.api.request_limits import RequestLimits
from digital_contrast.api.routers import (
    dashboard,
    dicomweb,
    health,
    home,
    jobs,
    keys,
    records,
    repository,
    sustainability,
    uploads,
)
from digital_contrast.atna import start_audit_export
from digital_contrast.config import Settings, get_settings
from digital_contrast.delivery import start_delivery_threads
from digital_contrast.jobs.auto_run import auto_submit
from digital_contrast.jobs.worker import start_worker_threads
from digital_contrast.service import ServiceState, open_state, purge_expired
from digital_contrast.service.process import prepare_service_process

log = logging.getLogger(__name__)
DESCRIPTION = (
    "Synthetic contrast-enhanced CT from non-contrast CT. **Every result is synthetic: no "
    "contrast agent was given.** The reference model is trained and validated on a procedural "
    "digital phantom only and is not clinically validated. Errors are RFC 9457 problem details "
    "with a stable `code`. Authenticate with an API key in the `X-API-Key` header.")


def _every(seconds: float, stop: threading.Event, task: Callable[[], object],
           name: str) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(seconds):
            try:
                task()
            except Exception as exc:  # a periodic task never takes the service down
                log.error("%s failed: %s", name, type(exc).__name__)

    thread = threading.Thread(target=loop, daemon=True, name=name)
    thread.start()
    return thread


def start_background(state: ServiceState, config: Settings, stop: threading.Event
                     ) -> list[threading.Thread]:
    """The service's background work, in exactly one process of a service: job workers (or the
    Celery dispatcher), the delivery worker, the audit export, auto-run and the purge."""
    threads: list[threading.Thread] = []
    if config.executor == "celery":  # Celery workers run the jobs; we hand them over
        # Imported here: an embedded site never loads Celery.
        from digital_contrast.jobs.celery_executor import make_celery
        from digital_contrast.jobs.dispatch import celery_publisher, dispatch_pending

        publish = celery_publisher(make_celery(config))
        threads.append(_every(1.0, stop, lambda: dispatch_pending(state.sessions, publish),
                              "job-dispatcher"))
    elif config.workers:  # the tracker's hardware probing, before the first job
        threading.Thread(target=state.meter.warm, daemon=True,
                         name="energy-tracker-warm-up").start()
        threads += start_worker_threads(state, config.workers, stop,
                                        lease_seconds=config.job_lease_s, poll_seconds=1.0)
    threads += start_delivery_threads(state, 1, stop)
    threads += start_audit_export(state, stop)
    if config.auto_run_use_cases:
        threads.append(_every(
            max(1.0, config.auto_run_stable_s / 3), stop,
            lambda: auto_submit(state.sessions, state.instances, config.mlflow_uri,
                                config.auto_run_use_cases, config.auto_run_stable_s),
            "auto-run"))
    if config.purge_interval_s:
        threads.append(_every(config.purge_interval_s, stop, lambda: purge_expired(state),
                              "purge"))
    return threads


def request_app() -> FastAPI:
    """The app of one HTTP process of a multi-process `serve` (requests only: its parent runs
    the background work); a fresh interpreter, so it sets itself up as a service process."""
    settings = get_settings()
    prepare_service_process(settings)
    return create_app(settings, background=False)


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    """`background=False` serves requests only (tests drive workers themselves)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        state = open_state(config)
        app.state.service = state
        app.state.repository_index = repository.RepositoryIndex(config.repository_database_url)
        # Everything imported so far (torch, MLflow, pydicom...) lives as long as the process:
        # kept out of the cyclic collector, whose full passes over it took a sixth of the CPU
        # of STOW ingest (perf, bench/api_load.py).
        gc.freeze()
        stop = threading.Event()
        threads = start_background(state, config, stop) if background else []
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            app.state.repository_index.dispose()
            state.engine.dispose()

    # Documentation pages from vendored files (routers.home): FastAPI's own load a CDN.
    app = FastAPI(title=PRODUCT_NAME, version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, dependencies=[Depends(authorize)], docs_url=None,
                  redoc_url=None)
    install_problem_handlers(app)
    install_problem_openapi(app)
    config = settings or get_settings()
    origins = config.cors_origins
    if origins:  # a viewer on another origin (OHIF): its browser asks first (preflight)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["X-API-Key", "Authorization", "Accept",
                                          "Content-Type", REQUEST_ID_HEADER],
                           expose_headers=["Location", "Link", "Warning", "Content-Type",
                                           REQUEST_ID_HEADER], max_age=600)
    for module in (home, health, dicomweb, uploads, jobs, keys, records, sustainability,
                   repository, dashboard):
        app.include_router(module.router)
    dashboard.install_login_redirect(app)
    # The dashboard's CSS, JS and Chart.js: public and read-only (roles.PUBLIC_MOUNTS).
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    app.state.rate_limits = RateLimits(config)
    # Before everything but the request ids and no-store (which its refusals carry too): no
    # work, not even authentication, for a request over a limit.
    app.add_middleware(RequestLimits, settings=config, rates=app.state.rate_limits)
    app.add_middleware(NoStore)
    app.add_middleware(RequestIds)  # added last: outermost, around CORS preflights too
    return app
