"""A running service for API tests: its own data folder, database, registry (a tiny promoted
model), one key per role, a phantom NCCT series on disk, and helpers to send it."""

import io
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digital_contrast.api.app import create_app
from digital_contrast.config import Settings
from digital_contrast.jobs.worker import Worker
from digital_contrast.model.explain_evidence import ExplainEvidence
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.service import ServiceState
from digital_contrast.store import Role
from digital_contrast.store.api_keys import create_api_key
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle


@dataclass
class Service:
    app: FastAPI
    client: TestClient
    settings: Settings
    keys: dict[Role, str] = field(default_factory=dict)

    @property
    def state(self) -> ServiceState:
        return self.app.state.service

    def headers(self, role: Role = Role.CLINICIAN) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def run_jobs(self) -> int:
        """Run queued jobs in this process until none is left; returns how many ran."""
        worker, count = Worker(self.state, lease_seconds=60), 0
        while worker.run_once():
            count += 1
        return count


def make_settings(root: Path, registry_db: Path, *, explain: ExplainEvidence | None = None,
                  **overrides: object) -> Settings:
    """Settings for a service under `root`, with a registry holding a promoted tiny model
    (whose validation record has `explain` evidence: none by default, so uncalibrated)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(registry_db, root / "data" / "mlflow.db")
    # Tests send wrong keys and many requests from one address on purpose: the lockout and
    # the rates are tested where they are the subject (test_request_limits.py).
    quiet = {"auth_lockout_failures": 10_000, "rate_limit_address": "1000000/minute",
             "rate_limit_key": "1000000/minute"}
    settings = Settings(data_dir=root / "data", releases_dir=root / "releases", workers=0,
                        **(quiet | overrides))
    registry = ModelRegistry(settings.mlflow_uri)
    bundle = tiny_bundle(root / "bundle", load_use_case("aaa-cta"), seed=3)
    registered = registry.attach_validation(registry.register(bundle),
                                            record_for(bundle, explain=explain))
    registry.promote(registered.name, registered.version)
    return settings


@contextmanager
def running_service(settings: Settings) -> Iterator[Service]:
    app = create_app(settings, background=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        service = Service(app, client, settings)
        with service.state.sessions() as db:
            for role in Role:
                service.keys[role] = create_api_key(db, settings.site, f"test-{role}", role)[1]
            db.commit()
        yield service


@contextmanager
def live_server(app: FastAPI, **options: object) -> Iterator[str]:
    """The app on a free loopback port (uvicorn in a thread), for real HTTP clients;
    `options` override uvicorn's configuration."""
    server = uvicorn.Server(uvicorn.Config(app, **({"host": "127.0.0.1", "port": 0,
                                                    "log_level": "warning",
                                                    "lifespan": "off"} | options)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def zip_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def upload(service: Service, folder: Path) -> str:
    """Upload a series folder as a zip; returns its Series Instance UID."""
    response = service.client.post("/v1/uploads", content=zip_of(folder),
                                   headers=service.headers() | {"Content-Type":
                                                                "application/zip"})
    assert response.status_code == 201, response.text
    (uid,) = response.json()["series_uids"]
    return uid
