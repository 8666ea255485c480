"""Request and response bodies of the /v1 API (OpenAPI examples included)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from digital_contrast.explain.attribution import Method
from digital_contrast.store import Job, JobState, Role
from digital_contrast.store.enums import DeliveryState
from digital_contrast.store.job_artifacts import media_type
from digital_contrast.store.tables import Delivery
from digital_contrast.usecases import load_use_case

NO_CONTRAST = "Synthetic image: no contrast agent was given."


# A coordinate in patient LPS millimetres (DICOM patient coordinates).
Millimetres = Annotated[float, Field(ge=-10_000.0, le=10_000.0)]
Point = tuple[Millimetres, Millimetres, Millimetres]
BOX_DESCRIPTION = ("Attribute the mean synthesized enhancement inside this box instead of the "
                   "synthesized aortic lumen: two opposite corners [x, y, z] in patient (LPS) "
                   "millimetres, as in ImagePositionPatient.")
METHOD_DESCRIPTION = ("Attribution method; offered only if it passed its sanity checks for the "
                      "model (EXPLAIN_METHOD_REFUSED otherwise).")


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"series_uid": "1.2.826.0.1.3680043.8.498.12345", "use_case": "aaa-cta",
         "explain": False},
        {"series_uid": "1.2.826.0.1.3680043.8.498.12345", "use_case": "aaa-cta",
         "explain": True, "method": "integrated-gradients",
         "region_box_mm": [[-30.0, -20.0, -120.0], [30.0, 40.0, -60.0]]}]})

    series_uid: str = Field(min_length=1, max_length=64, pattern=r"^[0-9.]+$")
    use_case: str = Field(min_length=1, max_length=64)
    explain: bool = Field(False, description="Also attribute the synthesized enhancement to "
                          "the input (an attribution map); the uncertainty map and confidence "
                          "come with every job")
    method: Method | None = Field(None, description=f"{METHOD_DESCRIPTION} Default "
                                  "integrated-gradients; only with explain.")
    region_box_mm: tuple[Point, Point] | None = Field(
        None, description=f"{BOX_DESCRIPTION} Only with explain.")

    @model_validator(mode="after")
    def _explain_options_need_explain(self) -> "JobRequest":
        if not self.explain and (self.method is not None or self.region_box_mm is not None):
            raise ValueError("method and region_box_mm need explain: true")
        return self


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"method": "integrated-gradients"},
        {"method": "saliency", "region_box_mm": [[-30.0, -20.0, -120.0], [30.0, 40.0, -60.0]]}]})

    method: Method = Field(Method.INTEGRATED_GRADIENTS, description=METHOD_DESCRIPTION)
    region_box_mm: tuple[Point, Point] | None = Field(None, description=BOX_DESCRIPTION)


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"contrast_scan_avoided": True}, {"contrast_scan_avoided": False}]})

    contrast_scan_avoided: bool = Field(description="true: no contrast-enhanced CT followed "
                                        "this synthetic result; false: one was still done")


class OutcomeView(BaseModel):
    job_id: str
    contrast_scan_avoided: bool
    reported_at: datetime
    confirmed_avoided: dict[str, float] = Field(
        description="What this job is now counted as having avoided (zero when a contrast "
        "scan followed)")
    factor_set: str = Field(description="id@version of the factors the figures come from")


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
    notice: str | None = Field(None, description="What the result must not be used for (the "
                               "use case's notice, also in every image and map)")
    confidence: dict[str, Any] | None = Field(
        None, description="Uncertainty of the synthesized lumen (test-time augmentation) against "
        "the model's calibration; low_confidence true means the series says LOW CONFIDENCE")
    maps: list["MapView"] = Field(default_factory=list, description="Uncertainty and "
                                  "attribution maps of this job")
    explain: dict[str, Any] | None = Field(
        None, description="The attribution asked for: method, region, target, or the error "
        "that prevented it (the synthesis stands)")
    explain_of: str | None = Field(None, description="The job whose result this job explains")
    deliveries: list["DeliveryView"] = Field(
        default_factory=list, description="Pushes of the result to the site's destinations "
        "(PACS): state, attempts, next attempt, last error")

    @classmethod
    def of(cls, job: Job, series_uid: str | None,
           deliveries: list[Delivery] | None = None) -> "JobView":
        result, use_case = job.result or {}, load_use_case(job.use_case)
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
            evidence=f"{NO_CONTRAST} {use_case.evidence}", notice=use_case.notice,
            confidence=result.get("confidence"),
            maps=[MapView.of(job.id, entry) for entry in result.get("maps", [])],
            explain=result.get("explain"),
            explain_of=(job.options or {}).get("explain_of"),
            deliveries=[DeliveryView.of(d) for d in deliveries or []])


class DeliveryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"destination": "pacs"}]})

    destination: str = Field(min_length=1, max_length=64,
                             description="Name of one of the site's destinations")


class DeliveryView(BaseModel):
    id: str
    destination: str
    protocol: str = Field(description="dimse | stow-rs")
    state: DeliveryState = Field(description="pending | sending | delivered | failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt")
    last_error: str | None = Field(description="Statuses or codes of the last failed attempt")
    instances_sent: int
    requested_by: str = Field(description="auto (the destination takes every result) or who "
                              "asked")
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> "DeliveryView":
        return cls(id=delivery.id, destination=delivery.destination.name,
                   protocol=delivery.destination.protocol.value, state=delivery.state,
                   attempts=delivery.attempts,
                   next_attempt_at=delivery.next_attempt_at
                   if delivery.state is DeliveryState.PENDING else None,
                   last_error=delivery.last_error, instances_sent=delivery.instances_sent,
                   requested_by=delivery.requested_by, created_at=delivery.created_at,
                   delivered_at=delivery.delivered_at)


class MapFile(BaseModel):
    name: str
    media_type: str
    href: str = Field(description="GET this (same key) for the file")


class MapView(BaseModel):
    """One map of a job: its DICOM series in the study and its files for people and tools."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "uncertainty", "method": "tta", "slug": "uncertainty-tta", "unit": "[hnsf'U]",
        "description": "SD of synthesized enhancement over 8 test-time augmentations",
        "parametric_map_series_uid": "2.25.1234", "secondary_capture_series_uid": "2.25.5678",
        "files": [{"name": "preview_axial.png", "media_type": "image/png",
                   "href": "/v1/jobs/3f2b.../maps/uncertainty-tta/preview_axial.png"}]}]})

    kind: str = Field(description="uncertainty | attribution")
    method: str
    slug: str = Field(description="<kind>-<method>: names the map's folder")
    unit: str = Field(description="UCUM code of the values")
    description: str
    parametric_map_series_uid: str = Field(description="DICOM Parametric Map (the values), a "
                                           "produced series of the source's study (WADO-RS)")
    secondary_capture_series_uid: str = Field(description="Secondary Capture renderings for "
                                              "viewers without Parametric Map support")
    files: list[MapFile] = Field(description="PNG previews (NCCT | synthetic | map) and the "
                                 "NIfTI of the values")

    @classmethod
    def of(cls, job_id: str, entry: dict[str, Any]) -> "MapView":
        names = [*entry.get("previews", {}).values(), entry["nifti"]]
        return cls(kind=entry["kind"], method=entry["method"], slug=entry["slug"],
                   unit=entry["unit"], description=entry["description"],
                   parametric_map_series_uid=entry["parametric_map_series_uid"],
                   secondary_capture_series_uid=entry["secondary_capture_series_uid"],
                   files=[MapFile(name=name, media_type=media_type(name),
                                  href=f"/v1/jobs/{job_id}/maps/{entry['slug']}/{name}")
                          for name in names])


JobView.model_rebuild()  # MapView is defined after JobView

class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "pacs-router", "role": "clinician"}]})

    name: str = Field(min_length=1, max_length=128)
    role: Role
    site: str | None = Field(None, min_length=1, max_length=64,
                             description="The administrator's own site (the default); no other")
    valid_days: int = Field(365, ge=1, le=3650, description="Days until the key expires")


class KeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_days: int = Field(7, ge=0, le=90, description="Days the old key keeps working")
    valid_days: int = Field(365, ge=1, le=3650, description="Days until the new key expires")


class KeyView(BaseModel):
    id: int
    name: str
    role: Role
    site: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None = Field(
        description="When the key stops working (none for keys made before expiry existed)")


class NewKey(KeyView):
    key: str = Field(description="The key itself, shown once; only a salted hash is stored")


class UploadFailure(BaseModel):
    member: str
    reason: int
    detail: str
    code: str = ""  # the intake's stable code (INTAKE_...), empty for a storage failure


class UploadResult(BaseModel):
    stored: int
    series_uids: list[str]
    failed: list[UploadFailure]


# --- Records for regulatory readers (/v1/records) -------------------------------------------

SHA256_EXAMPLE = "bcb6746932d2eccbf71202b9fecae465f7efa2ca67105b439deb023d9578282f"


class RecordFile(BaseModel):
    name: str
    media_type: str
    size: int = Field(description="Bytes")
    href: str = Field(description="GET this (same key) for the file")


class CriterionView(BaseModel):
    metric: str
    op: str = Field(description=">=, <=, > or <")
    threshold: float
    value: float | None = Field(description="None: the metric could not be measured (never "
                                "passes)")
    passed: bool


class ValidationRecordView(BaseModel):
    """One validation record: the evidence that one exact bundle met its protocol or not."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "filed:aaa-cta:1.0.0", "source": "filed", "use_case": "aaa-cta",
        "model_name": "aaa-cta", "model_version": "1.0.0", "bundle_sha256": SHA256_EXAMPLE,
        "protocol": "validation/protocols/aaa-cta.yaml", "protocol_sha256": SHA256_EXAMPLE,
        "dataset": "phantom seeds 9000-9023 (held out), small size", "passed": False,
        "criteria": [{"metric": "lumen_dice", "op": ">=", "threshold": 0.92, "value": 0.8159,
                      "passed": False}],
        "evidence": "procedural digital phantom only; not clinically validated",
        "explain_calibrated": True, "software_version": "0.1.0",
        "created": "2025-11-29T19:19:00Z",
        "files": [{"name": "validation_record.json", "media_type": "application/json",
                   "size": 3369, "href": "/v1/records/validation/filed:aaa-cta:1.0.0/"
                                        "validation_record.json"}]}]})

    id: str = Field(description="run:<run-id>, filed:<use case>:<version> or "
                    "released:<use case>:<version>; names the record in file URLs")
    source: Literal["run", "filed", "released"] = Field(
        description="run: a `validate` run under the build folder; filed: an evaluated "
        "candidate's committed evidence; released: a released reference model's record")
    use_case: str
    model_name: str
    model_version: str
    bundle_sha256: str = Field(description="The exact bundle the record is evidence for")
    protocol: str = Field(description="The validation protocol (path in the repository)")
    protocol_sha256: str
    dataset: str
    passed: bool = Field(description="Every acceptance criterion met (computed from the "
                         "criteria, never read from the file)")
    criteria: list[CriterionView]
    evidence: str = Field(description="What the evidence is, e.g. phantom only and not "
                          "clinically validated")
    explain_calibrated: bool = Field(description="The record carries uncertainty calibration "
                                     "and attribution sanity-check evidence")
    signature: Literal["verified", "unsigned", "untrusted", "invalid"] = Field(
        "unsigned", description="verified: signed by a key this site trusts (only such a "
        "record can open the production gate); unsigned: from before records were signed; "
        "untrusted: signed by a key the site does not trust; invalid: changed after signing")
    signed_by: str | None = Field(None, description="Key id of the verified signer")
    software_version: str
    created: datetime
    files: list[RecordFile] = Field(description="The record's files present on disk")


class QmsDocument(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "trace.html", "media_type": "text/html", "size": 34298,
        "sha256": SHA256_EXAMPLE, "modified": "2025-11-29T19:38:00Z",
        "href": "/v1/records/qms/trace.html"}]})

    name: str
    media_type: str
    size: int = Field(description="Bytes")
    sha256: str
    modified: datetime = Field(description="Last modification (UTC): when it was generated")
    href: str = Field(description="GET this (same key) for the document")


class ReleaseManifest(BaseModel):
    """A release record's manifest as `release build` wrote it (fields it may add later are
    passed through unchanged)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "product": "Digital Contrast", "version": "1.0.0", "package_version": "1.0.0",
        "git_commit": "28f548a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
        "built_at": "2025-11-30T10:00:00+00:00", "models": [],
        "counts": {"requirements": 120}, "known_anomalies": ["ANOM-001"],
        "evidence_statement": "The reference model is trained and validated on a procedural "
                              "digital phantom only; it is not clinically validated and no "
                              "clinical performance is claimed.",
        "files": {"RELEASE_NOTES.md": SHA256_EXAMPLE, "trace/trace.html": SHA256_EXAMPLE}}]})

    version: str
    product: str | None = None
    package_version: str | None = None
    git_commit: str | None = None
    built_at: str | None = None
    models: list[dict[str, Any]] = Field(default_factory=list)
    counts: dict[str, Any] = Field(default_factory=dict)
    known_anomalies: list[str] = Field(default_factory=list)
    evidence_statement: str | None = None
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        description="Relative path -> SHA-256 of every file of the record")


class ReleaseSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "version": "1.0.0", "product": "Digital Contrast", "package_version": "1.0.0",
        "git_commit": "28f548a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
        "built_at": "2025-11-30T10:00:00+00:00", "known_anomalies": ["ANOM-001"],
        "evidence_statement": "The reference model is trained and validated on a procedural "
                              "digital phantom only; it is not clinically validated and no "
                              "clinical performance is claimed.",
        "models": [], "file_count": 42, "manifest_href": "/v1/records/releases/1.0.0"}]})

    version: str
    product: str | None
    package_version: str | None
    git_commit: str | None
    built_at: str | None
    evidence_statement: str | None
    known_anomalies: list[str]
    models: list[dict[str, Any]]
    file_count: int = Field(description="Files listed (with their SHA-256) in the manifest")
    manifest_href: str = Field(description="GET this for the manifest; each file at "
                               "<manifest_href>/files/<path>")


REPOSITORY_EVIDENCE = (
    "Phase and region labels come from the source DICOM headers at the site and are "
    "unverified: nobody checked them against the images. Values generated to fill a column a "
    "source lacks are named, per row, in its `generated` column. Patients are named by their "
    "site's pseudonym; UIDs and dates are de-identified at the site.")


class SeriesPage(BaseModel):
    """A search of the CT repository's series index."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "count": 2, "limit": 50, "series": [{
            "site": "site-a", "series_uid": "2.25.1234", "study_uid": "2.25.5678",
            "patient": "PSEUDO-3F2A", "modality": "CT", "region": "abdomen",
            "region_source": "header", "phase": "portal_venous", "phase_source": "header",
            "kvp": 120.0, "thickness_mm": 1.0, "kernel": "B30f", "manufacturer": "SIEMENS",
            "study_date": "2019-04-02", "age_band": "60-69", "sex": "F", "instances": 312,
            "quality": "complete", "instance_set_sha256": SHA256_EXAMPLE, "source": "ingest",
            "generated": "", "extra": {}}], "evidence": REPOSITORY_EVIDENCE}]})

    count: int = Field(description="Series matching the query (all of them, not the page)")
    limit: int = Field(description="The most rows returned (0: the count only)")
    series: list[dict[str, Any]] = Field(description="The first `limit` matches in index "
                                         "order: every column of the index but its row id")
    evidence: str = Field(description="What the labels and values are, and are not")


class CohortSummary(BaseModel):
    """A saved cohort's version (its members frozen when it was saved)."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "name": "pv-pairs", "version": 1, "series_count": 2, "cohort_sha256": SHA256_EXAMPLE,
        "purpose": "PV synthesis training pairs", "created_at": "2026-12-07T15:53:00Z"}]})

    name: str
    version: int
    series_count: int
    cohort_sha256: str = Field(description="SHA-256 of the sorted 'site<TAB>series UID<TAB>"
                               "instance-set hash' lines of its members")
    purpose: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Saved in UTC; SQLite hands the time back without its zone.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class CohortVersion(CohortSummary):
    """A saved cohort's version with its query and its members."""

    query: dict[str, Any] = Field(description="The search it was saved from")
    members: list[dict[str, Any]] = Field(description="Site, series UID, study UID, patient "
                                          "pseudonym and instance-set hash of each series, in "
                                          "site and series UID order")
    evidence: str
