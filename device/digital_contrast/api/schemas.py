"""Request and response bodies of the /v1 API (OpenAPI examples included)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from digital_contrast.store import Job, JobState, Role
from digital_contrast.usecases import load_use_case

NO_CONTRAST = "Synthetic image: no contrast agent was given."


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"series_uid": "1.2.826.0.1.3680043.8.498.12345", "use_case": "aaa-cta",
         "explain": False}]})

    series_uid: str = Field(min_length=1, max_length=64, pattern=r"^[0-9.]+$")
    use_case: str = Field(min_length=1, max_length=64)
    explain: bool = False


class ModelRef(BaseModel):
    name: str
    version: str
    bundle_sha256: str


class JobError(BaseModel):
    code: str
    detail: str | None


class JobView(BaseModel):
    id: str
    state: JobState
    use_case: str
    series_uid: str | None = Field(description="None once retention de-identified the job")
    options: dict[str, Any]
    model: ModelRef
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    conformity: dict[str, Any] | None = Field(
        description="The intended-use verdict: passed, failed checks with codes and values")
    timings_s: dict[str, float] | None
    warnings: list[str]
    output_series_uid: str | None
    error: JobError | None
    energy: dict[str, Any] | None = Field(None, description="Energy of the job when measured")
    evidence: str = Field(description="What the model's evidence is (the use case's statement)")

    @classmethod
    def of(cls, job: Job, series_uid: str | None) -> "JobView":
        result = job.result or {}
        return cls(
            id=job.id, state=job.state, use_case=job.use_case, series_uid=series_uid,
            options=job.options or {}, attempts=job.attempts,
            model=ModelRef(name=job.model_name, version=job.model_version,
                           bundle_sha256=job.bundle_sha256),
            created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
            conformity=result.get("conformity"), timings_s=result.get("timings_s"),
            warnings=result.get("warnings", []), output_series_uid=job.output_series_uid,
            error=JobError(code=job.error_code, detail=job.error_detail)
            if job.error_code else None, energy=result.get("energy"),
            evidence=f"{NO_CONTRAST} {load_use_case(job.use_case).evidence}")


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "pacs-router", "role": "clinician"}]})

    name: str = Field(min_length=1, max_length=128)
    role: Role
    site: str | None = Field(None, description="Default: the administrator's own site")


class KeyView(BaseModel):
    id: int
    name: str
    role: Role
    site: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewKey(KeyView):
    key: str = Field(description="The key itself, shown once; only a salted hash is stored")


class UploadFailure(BaseModel):
    member: str
    reason: int
    detail: str


class UploadResult(BaseModel):
    stored: int
    series_uids: list[str]
    failed: list[UploadFailure]
