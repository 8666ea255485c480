"""The one Settings object: every operator-facing option, read from `DC_*` environment variables."""

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_RATE = re.compile(r"[1-9][0-9]*\s*/\s*(second|minute|hour|day)")

# The repository is the technical file; released models are committed under releases/.
REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Root of instance files, databases, runs; "
                           "a relative path is resolved once, against the folder the command "
                           "started in, and shown by every command.")
    host: str = Field("127.0.0.1", min_length=1, description="Interface `serve` binds to "
                      "(0.0.0.0: every interface).")
    port: int = Field(8000, ge=1, le=65_535, description="TCP port `serve` binds to.")
    database_url: str = Field("", description="SQLAlchemy URL; default SQLite under data_dir.")
    mlflow_uri: str = Field("", description="MLflow tracking URI; default SQLite under data_dir.")
    repository_database_url: str = Field(
        "", description="SQLAlchemy URL of the CT repository's series index, a database apart "
        "from the clinical store; default SQLite at data_dir/repository/index.db.")
    site: str = Field("default-site", min_length=1, description="Site name stamped on records.")
    keys_dir: Path = Field(
        Path.home() / ".config" / "digital-contrast" / "keys",
        description="Private keys and site secrets (0600 files in a 0700 folder); must lie "
        "outside data_dir. See docs/regulatory.md, 'Keys and signed records'.")
    audit_anchor_file: Path | None = Field(
        None, description="Append-only file the audit trail's head is anchored to after every "
        "event (default: anchors/audit-<hash of the database URL>.log in keys_dir); must lie "
        "outside data_dir, ideally on storage that database administrators cannot write. See "
        "docs/operations.md, 'Audit'.")
    audit_syslog: str = Field(
        "", description="The site's audit repository, tcp://, tls:// or udp://host:port: every "
        "audit event is sent to it as an IHE ATNA message in RFC 5424 syslog (tls: the node "
        "certificate tls/dimse.pem of the keys folder, and tls/peers-ca.pem). See "
        "docs/operations.md, 'Audit'.")
    trusted_keys: list[str] = Field(
        default_factory=list, description="Public keys ('ed25519:<base64>', JSON list) whose "
        "signed validation records this site accepts, beside the release keys shipped in "
        "releases_dir/keys/.")
    releases_dir: Path = Field(REPO_ROOT / "releases",
                               description="Released models, reports and records.")
    build_dir: Path = Field(REPO_ROOT / "build", description="Generated records: validation "
                            "runs (validation/<run-id>/) and QMS documents (qms/), served "
                            "read-only under /v1/records.")
    inference_threads: int = Field(
        2, ge=1, le=256, description="CPU threads for inference; fixed so results reproduce.")
    max_upload_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest total uncompressed size accepted from one zip."
    )
    max_upload_members: int = Field(
        20_000, gt=0, description="Most files accepted from one zip."
    )
    max_request_bytes: int = Field(
        1024**2, ge=1024, description="Largest body of a request that is not an upload (JSON), "
        "refused before authentication or parsing.")
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576, description="Largest total "
                                  "size of a request's headers (431 beyond it).")
    max_headers: int = Field(100, ge=10, le=1000, description="Most headers in one request.")
    body_idle_timeout_s: float = Field(
        30.0, gt=0, le=3_600.0, description="A request body that sends nothing for this long "
        "is answered 408 and its connection closed (a stalled upload holds no reader).")
    rate_limit_address: str = Field(
        "6000/minute", description="Requests per client address (before authentication); "
        "'N/second|minute|hour'.")
    rate_limit_key: str = Field("6000/minute", description="Requests per API key.")
    rate_limit_storage: str = Field(
        "memory://", description="Where request counts live: memory:// (this process) or "
        "redis://host:port/db (shared by every service process of the site).")
    auth_lockout_failures: int = Field(
        10, ge=1, le=10_000, description="Failed API keys from one address within the window "
        "that lock the address out.")
    auth_lockout_window_s: float = Field(300.0, gt=0, le=86_400.0,
                                         description="Window in which failures are counted.")
    auth_lockout_s: float = Field(900.0, gt=0, le=86_400.0,
                                  description="How long a locked-out address is refused.")
    service_processes: int = Field(
        1, ge=1, le=64, description="HTTP processes of `serve`; above 1 the background work "
        "(jobs, deliveries, audit export, auto-run, purge, DIMSE) runs once, in its parent.")
    workers: int = Field(1, ge=0, le=32,
                         description="Job worker threads inside the service (0: none).")
    job_lease_s: float = Field(120.0, ge=5.0, le=86_400.0, description="A job whose worker "
                               "stopped renewing its lease for this long is run again by another "
                               "worker.")
    executor: Literal["embedded", "celery"] = Field(
        "embedded", description="What runs jobs: the embedded database queue (the service's "
        "worker threads and `digital-contrast worker` processes), or Celery workers fed through "
        "RabbitMQ (docs/operations.md, 'Scaling out').")
    broker_url: str = Field("amqp://guest:guest@127.0.0.1:5672//", min_length=1,
                            description="RabbitMQ URL of the Celery executor.")
    broker_consumer_timeout_s: float = Field(
        7_200.0, ge=600.0, le=604_800.0, description="Longest job the Celery executor expects: "
        "the queue's consumer timeout, after which RabbitMQ hands an unacknowledged job to "
        "another worker (RabbitMQ 3.12+ takes it from the queue; older nodes need "
        "consumer_timeout in rabbitmq.conf).")
    auto_run_use_cases: list[str] = Field(
        default_factory=list, description="Use cases whose envelope a received series is "
        "matched against to start a job by itself (JSON list; empty: no auto-run).")
    auto_run_stable_s: float = Field(30.0, ge=0.0, le=86_400.0, description="Seconds without "
                                     "a new instance before a series counts as complete.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Web origins (e.g. a viewer's "
        "https://viewer.hospital.org) whose browser pages may call the API and DICOMweb "
        "(JSON list; empty: none).")
    dimse_port: int | None = Field(None, ge=1, le=65_535, description="Port of the DICOM "
                                   "(DIMSE) C-STORE/C-ECHO listener started with the service "
                                   "(none: no listener; `digital-contrast dimse` runs one alone).")
    dimse_host: str = Field("127.0.0.1", min_length=1, description="Interface the DIMSE "
                            "listener binds to (0.0.0.0: every interface).")
    dimse_ae_title: str = Field("DIGCONTRAST", min_length=1, max_length=16,
                                pattern=r"^[ -\[\]-~]*[!-\[\]-~][ -\[\]-~]*$",
                                description="Our AE title (1-16 characters, no backslash).")
    dimse_tls: bool = Field(False, description="The DIMSE listener speaks TLS only, with the "
                            "certificate in the keys folder (tls/dimse.pem, tls/dimse.key; "
                            "client certificates required when tls/clients-ca.pem exists).")
    dimse_max_associations: int = Field(10, ge=1, le=200, description="DIMSE associations "
                                        "served at once; more are rejected (transient, local "
                                        "limit exceeded).")
    dimse_timeout_s: float = Field(30.0, ge=1.0, le=3_600.0, description="ACSE, DIMSE and "
                                   "network idle timeout of a DIMSE association.")
    delivery_max_attempts: int = Field(8, ge=1, le=100, description="Attempts at pushing a "
                                       "result to a destination before the delivery fails "
                                       "(waits 30 s, 60 s, ... at most 1 h in between).")
    delivery_lease_s: float = Field(600.0, ge=30.0, le=86_400.0, description="A delivery "
                                    "whose worker stopped is taken over after this long.")
    retention_days: float = Field(30.0, gt=0.0, le=36_500.0, description="Received instances "
                                  "and results older than this are removed by "
                                  "`digital-contrast purge`.")
    purge_interval_s: float = Field(0.0, ge=0.0, le=2_592_000.0, description="Run the purge "
                                    "in the service every this many seconds (0: only by "
                                    "command).")
    carbon_country: str = Field("GBR", min_length=3, max_length=3, description="ISO 3166-1 "
                                "alpha-3 code of the site's electricity grid (CodeCarbon's "
                                "energy mix gives its carbon intensity).")
    carbon_pue: float = Field(1.0, ge=1.0, le=5.0, description="Power usage effectiveness of "
                              "the room the service runs in (1.0: no overhead counted).")
    carbon_force_cpu_power_w: float | None = Field(
        None, gt=0, le=10_000, description="The CPU's power in watts when CodeCarbon cannot "
        "read it (it then assumes a TDP).")
    carbon_force_ram_power_w: float | None = Field(
        None, gt=0, le=10_000, description="RAM power in watts; CodeCarbon's own figure is a "
        "fixed guess that can outweigh the CPU on small hosts.")
    carbon_factor_set: str | None = Field(
        None, min_length=1, max_length=64, description="A packaged avoided-footprint factor "
        "set by name: contrast-differential-2026.1 (the default: what contrast adds to a CT) "
        "or product-brief-2026.1 (the product brief's average-CT figure, not a differential). "
        "Not together with DC_CARBON_FACTORS_FILE.")
    carbon_factors_file: Path | None = Field(
        None, description="The site's own avoided-footprint factor set (YAML, as "
        "digital_contrast/carbon/factors/); default: the packaged set.")
    contrast_volume_ml: float | None = Field(
        None, gt=0, le=500, description="Contrast volume of the site's CT protocol (default: "
        "the factor set's).")
    contrast_iodine_mg_per_ml: float | None = Field(
        None, gt=0, le=400, description="Iodine concentration of the site's contrast agent "
        "(default: the factor set's).")

    log_format: Literal["json", "text"] = Field("json", description="Log lines of `serve`, "
                                                "`worker`, `dimse` and `purge` on standard "
                                                "error: one JSON object each, or text for a "
                                                "terminal (docs/operations.md, 'Logs').")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged (the DICOM libraries never below "
        "WARNING: their debug output dumps data sets).")

    @field_validator("rate_limit_address", "rate_limit_key")
    @classmethod
    def _rate(cls, value: str) -> str:
        # The form the limits library parses (api.rate_limits), checked without importing it:
        # every command reads the settings.
        if not _RATE.fullmatch(value.strip()):
            raise ValueError("a rate is 'N/second', 'N/minute', 'N/hour' or 'N/day'")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://", "pyamqp://")):
            raise ValueError("an AMQP URL: amqp://user:password@host:5672/vhost")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("memory:// or redis://host:port/db")
        return value

    @model_validator(mode="after")
    def _default_urls(self) -> "Settings":
        # Absolute from here on: a key or a database made from another folder is the same one.
        self.data_dir = data_dir = self.data_dir.resolve()
        self.keys_dir = self.keys_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{data_dir / 'digital_contrast.db'}"
        if self.audit_anchor_file is None:  # one per database: keys folders can be shared
            self.audit_anchor_file = (self.keys_dir / "anchors" /
                                      f"audit-{self.database_identity}.log")
        self.audit_anchor_file = self.audit_anchor_file.expanduser().resolve()
        if data_dir in self.audit_anchor_file.parents:
            raise ValueError("DC_AUDIT_ANCHOR_FILE must lie outside DC_DATA_DIR: whoever can "
                             "rewrite the database's folder must not reach the anchor too")
        if not self.mlflow_uri:
            self.mlflow_uri = f"sqlite:///{data_dir / 'mlflow.db'}"
        if not self.repository_database_url:
            self.repository_database_url = f"sqlite:///{data_dir / 'repository' / 'index.db'}"
        return self

    @property
    def database_identity(self) -> str:
        """12 hex digits naming this installation's database (its URL without password):
        what the processes of one installation share and another installation does not."""
        return hashlib.sha256(_without_password(self.database_url).encode()).hexdigest()[:12]


def _without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # refused later by the store (DATABASE_URL_INVALID)
        return url.rsplit("@", 1)[-1]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
