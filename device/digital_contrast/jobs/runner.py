"""One claimed job, start to finish: pinned inputs, the clinical path, atomic publication.

Inputs are the instance set pinned at submission: a series that changed since is refused
(SERIES_CHANGED), and every file's hash is checked as it is read. The synthetic series is
written to a scratch folder, its files put into the content-addressed store, and its rows and
the job's success committed in one transaction: a half-written series is never visible. A
rerun after a crash produces the same UIDs and the same bytes, so it publishes the same series.

Every synthesis is followed by its confidence (test-time-augmentation uncertainty against the
bundle's calibration): a low-confidence result says LOW CONFIDENCE in its series description and
carries a warning, and its uncertainty map is published with it (Parametric Map and Secondary
Captures as produced instances of the study, in the same transaction; PNG previews and NIfTI in
the job's artifact folder, swapped in before the job is marked succeeded). A job with `explain`
adds an attribution map; one that explains an earlier job (`explain_of`) recomputes the same
synthesis but publishes only the attribution map. A series already published by an earlier job
(the same deterministic UIDs) is not published again.
"""

import logging
import shutil
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.carbon.accounting import AvoidedFootprint, potential_avoided
from digital_contrast.carbon.meter import JobEnergy
from digital_contrast.errors import DigitalContrastError
from digital_contrast.explain.outputs import MapOutputs
from digital_contrast.inference import LockedModel
from digital_contrast.jobs.host_slot import host_slot
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.pipeline import (
    AttributionRequest,
    ModelLoader,
    reexplain,
    run_clinical_path,
)
from digital_contrast.service import ServiceState
from digital_contrast.store import (
    EmissionRecord,
    Instance,
    Job,
    JobState,
    Origin,
    StoreError,
    begin_write,
)
from digital_contrast.store.audit import REGISTRY_CHANGED, append_audit, audit_registry_changed
from digital_contrast.store.columns import utcnow
from digital_contrast.store.file_journal import Intent
from digital_contrast.store.footprints import record_emission
from digital_contrast.store.jobs import finish_job, get_job
from digital_contrast.store.orphans import write_intent
from digital_contrast.store.outbox import enqueue_automatic
from digital_contrast.store.studies import get_series, instance_set_sha256, record_instances
from digital_contrast.usecases import UseCase, load_use_case

log = logging.getLogger(__name__)
# torch's thread settings are process-wide: threads of one process take turns in the core
# (run `digital-contrast worker` processes for parallel inference).
_CORE = threading.Lock()
# Refusals of the input (the job is REJECTED): codes or prefixes. The cascade refuses a series
# that shows no aorta or too little of it to read the blood reference from.
IMAGE_REFUSALS = ("IMG_", "ZIP_", "CONF_", "USECASE_", "AORTA_NOT_FOUND",
                  "BLOOD_REFERENCE_UNAVAILABLE")


@dataclass(frozen=True)
class Outcome:
    state: JobState
    result: dict[str, Any]
    error_code: str | None = None
    error_detail: str | None = None


def _inputs(service: ServiceState, job: Job) -> list[bytes]:
    with service.sessions() as session:
        instances = list(session.scalars(select(Instance).where(
            Instance.series_id == job.series_id).order_by(Instance.id)))
    if not instances or instance_set_sha256(instances) != job.instance_set_sha256:
        raise DigitalContrastError("SERIES_CHANGED", "the series changed after the job was "
                                   "submitted; submit a new job for the current series")
    return [service.instances.read(i.file_path, i.sha256) for i in instances]


def _original(service: ServiceState, job: Job, original_id: str) -> dict[str, Any]:
    """What an explanation job needs of the job it explains: its output series and confidence."""
    with service.sessions() as session:
        original = get_job(session, original_id, site=job.site)
        output = original.output_series_uid if original is not None else None
        result = dict(original.result or {}) if original is not None else {}
    if output is None:
        raise DigitalContrastError("NOT_FOUND", "the job to explain has no published result "
                                   "any more")
    return {"output_series_instance_uid": output, "confidence": result.get("confidence"),
            "output_sha256": result.get("output_sha256"),
            "warnings": [w for w in result.get("warnings", [])
                         if w.startswith("LOW_CONFIDENCE")]}


def _map_entry(outputs: MapOutputs) -> dict[str, Any]:
    """A map as the job record lists it: what it is, its DICOM series, its artifact files."""
    return {"kind": outputs.spec.kind, "method": outputs.spec.method, "slug": outputs.spec.slug,
            "unit": outputs.spec.unit_code, "description": outputs.spec.description,
            "parametric_map_series_uid": outputs.pm_series_instance_uid,
            "parametric_map_sop_instance_uid": outputs.pm_sop_instance_uid,
            "secondary_capture_series_uid": outputs.sc_series_instance_uid,
            "previews": {view: path.name for view, path in outputs.previews.items()},
            "nifti": outputs.nifti.name}


def _publish_artifacts(service: ServiceState, job_id: str, maps: list[MapOutputs],
                       intent: Intent) -> None:
    """Previews and NIfTI of each map into the job's artifact folder, in one swap."""
    def fill(tmp: Path) -> None:
        for outputs in maps:
            folder = tmp / outputs.spec.slug
            folder.mkdir()
            for path in [*outputs.previews.values(), outputs.nifti]:
                shutil.copyfile(path, folder / path.name)

    service.artifacts.publish_maps(job_id, fill, intent)


def _pinned_model(service: ServiceState, job: Job) -> ModelLoader:
    """The locked model of the job's submission: the same registered version and bundle."""
    def load(use_case: UseCase) -> LockedModel:
        model = LockedModel.load(use_case, version=job.model_version,
                                 registry=ModelRegistry(service.registry_uri))
        if model.bundle_sha256 != job.bundle_sha256:
            raise DigitalContrastError("MODEL_INTEGRITY", "the registered bundle differs "
                                       "from the one the job was submitted for")
        return model

    return load


def _core(service: ServiceState, job: Job, worker_id: str, energy: JobEnergy
          ) -> Callable[[], AbstractContextManager[object]]:
    """One job in this process's core at a time (torch settings are per process), and one
    measured job per host, so that no two energy measurements overlap."""
    @contextmanager
    def core() -> Iterator[None]:
        with _CORE, service.meter.measure(f"job {job.id}", host_slot(
                service.sessions, worker_id, lease_s=service.slot_lease_s), energy):
            yield

    return core


def _attribution(options: dict[str, Any]) -> AttributionRequest | None:
    if not options.get("explain"):
        return None
    return AttributionRequest(str(options.get("method")), options.get("region_box_mm"),
                              required=False)  # the synthesis stands without its map


def _synthesize(service: ServiceState, job: Job, worker_id: str, energy: JobEnergy,
                intent: Intent) -> tuple[Outcome, list[bytes]]:
    options = dict(job.options or {})
    explain_of = options.get("explain_of")
    original = _original(service, job, str(explain_of)) if explain_of else None
    inputs = _inputs(service, job)
    use_case = load_use_case(job.use_case)
    load, core = _pinned_model(service, job), _core(service, job, worker_id, energy)
    with _scratch(service, job.id, intent) as tmp:
        if original is None:
            result = run_clinical_path(inputs, use_case, load, Path(tmp),
                                       attribution=_attribution(options), core=core)
            assert result.series is not None
            record = result.to_dict()
            maps = result.maps
            files = sorted(result.series.folder.iterdir())
        else:
            request = _attribution(options)
            assert request is not None  # an explanation job always asks for attribution
            again = reexplain(inputs, use_case, load, Path(tmp), request,
                              original["output_sha256"], core=core)
            maps = [again.map] if again.map is not None else []
            files = []
            record = again.synthesis.to_dict() | {
                "timings_s": again.timings_s, "explain_of": explain_of,
                "output_series_instance_uid": original["output_series_instance_uid"],
                "confidence": original["confidence"],
                "warnings": again.synthesis.warnings + original["warnings"] + again.warnings,
                "explain": again.attribution.to_dict() | {"reproduced": again.reproduced}}
        for outputs in maps:
            files += [outputs.parametric_map, *outputs.secondary_captures.values()]
        record["maps"] = [_map_entry(m) for m in maps]
        data = [path.read_bytes() for path in files]
        if maps:  # before the job is marked succeeded: a succeeded job always has its maps
            _publish_artifacts(service, job.id, maps, intent)
    return Outcome(JobState.SUCCEEDED, record), data


@contextmanager
def _scratch(service: ServiceState, job_id: str, intent: Intent) -> Iterator[Path]:
    """The attempt's scratch folder, named in its intent before it exists."""
    folder = service.work_dir / f"job-{job_id}-{uuid.uuid4().hex[:12]}"
    intent.add(folder)
    folder.mkdir(parents=True, mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _refusal(exc: DigitalContrastError) -> Outcome:
    verdict = getattr(exc, "verdict", None)
    result = {"conformity": verdict.to_dict()} if verdict is not None else {}
    state = JobState.REJECTED if exc.code.startswith(IMAGE_REFUSALS) or \
        exc.code == "SERIES_CHANGED" else JobState.FAILED
    return Outcome(state, result, exc.code, exc.detail)


def _published(session: Session, site: str, headers: list[pydicom.Dataset]) -> set[str]:
    """Series of `headers` an earlier job already published (same deterministic UIDs: the
    same derivation); they are referenced, never published twice."""
    uids = {str(h.SeriesInstanceUID) for h in headers}
    return {uid for uid in uids if (series := get_series(session, site, uid)) is not None
            and series.origin == Origin.PRODUCED}


def record_footprint(session: Session, service: ServiceState, job: Job, state: JobState,
                     energy: JobEnergy) -> None:
    """The job's emission record, in the transaction that finishes the job. An explanation
    job re-runs a synthesis already counted: it costs energy but spares no further scan."""
    explains = (job.options or {}).get("explain_of")
    avoided = AvoidedFootprint.ZERO if explains else potential_avoided(state.value, service.factors)
    record_emission(session, EmissionRecord(
        job_id=job.id, site=job.site, use_case=job.use_case, model_name=job.model_name,
        model_version=job.model_version, job_state=state, finished_at=utcnow(),
        energy_status=energy.status, energy_reason=energy.reason, method=energy.method,
        duration_s=energy.duration_s, cpu_energy_kwh=energy.cpu_energy_kwh,
        gpu_energy_kwh=energy.gpu_energy_kwh, ram_energy_kwh=energy.ram_energy_kwh,
        energy_kwh=energy.energy_kwh, emissions_kg_co2e=energy.emissions_kg_co2e,
        grid_intensity_kg_per_kwh=energy.grid_intensity_kg_per_kwh,
        country_iso_code=energy.country_iso_code, pue=energy.pue,
        codecarbon_version=energy.codecarbon_version, factor_set_id=service.factors.id,
        factor_set_version=service.factors.version, avoided_kg_co2e=avoided.kg_co2e,
        avoided_iodine_g=avoided.iodine_g, avoided_plastics_g=avoided.plastics_g,
        avoided_steel_g=avoided.steel_g, avoided_energy_kwh=avoided.energy_kwh,
        detail={"methods": energy.methods, "slot_wait_s": energy.slot_wait_s,
                **({"explain_of": explains} if explains else {})}))


def run_job(service: ServiceState, job_id: str, worker_id: str) -> JobState:
    """Run a job this worker has claimed and record its outcome (never raises for a job's own
    failure; a lost lease or an unreachable database propagates)."""
    with service.sessions() as session:
        job = get_job(session, job_id)
        if job is None:
            return JobState.FAILED
        session.expunge(job)
    with write_intent(service.sessions, service.instances) as intent:
        return _run_attempt(service, job, worker_id, intent)


def _run_attempt(service: ServiceState, job: Job, worker_id: str, intent: Intent) -> JobState:
    job_id = job.id
    files: list[bytes] = []
    energy = JobEnergy()
    try:
        outcome, files = _synthesize(service, job, worker_id, energy, intent)
    except DigitalContrastError as exc:  # ConformityError included: it carries the verdict
        outcome = _refusal(exc)
    except Exception as exc:  # a fault of ours: the job fails, the worker goes on
        # Where, not what: an exception message may quote a DICOM value (PHI).
        log.error("job %s failed unexpectedly: %s at\n%s", job_id, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        outcome = Outcome(JobState.FAILED, {}, "INTERNAL_ERROR",
                          "the job failed unexpectedly; operators have the details")
    headers = [pydicom.dcmread(BytesIO(data), stop_before_pixels=True) for data in files]
    with service.sessions() as session:
        known = _published(session, job.site, headers)
    new = [(h, d) for h, d in zip(headers, files, strict=True)
           if str(h.SeriesInstanceUID) not in known]
    stored = [service.instances.put(data, intent=intent) for _, data in new]
    with service.sessions() as session:
        begin_write(session)  # SQLite: hold the write lock from the first read on
        known = _published(session, job.site, headers)  # again, under the lock
        items = [(h, s) for (h, _), s in zip(new, stored, strict=True)
                 if str(h.SeriesInstanceUID) not in known]
        for row in record_instances(session, job.site, items, Origin.PRODUCED):
            if isinstance(row, StoreError):
                raise row
        finished = finish_job(session, job_id, worker_id, outcome.state,
                              result=outcome.result | {"energy": energy.to_dict()},
                              error_code=outcome.error_code,
                              error_detail=outcome.error_detail,
                              output_series_uid=outcome.result.get(
                                  "output_series_instance_uid"))
        if outcome.state is JobState.SUCCEEDED:  # queued with the success, or not at all
            enqueue_automatic(session, finished,
                              sorted({str(h.SeriesInstanceUID) for h in headers}))
        record_footprint(session, service, job, outcome.state, energy)
        append_audit(session, job.site, f"worker:{worker_id}", f"job.{outcome.state.value}",
                     "job", job_id, "success" if outcome.state is JobState.SUCCEEDED
                     else "refused" if outcome.state is JobState.REJECTED else "failure",
                     {"error_code": outcome.error_code} if outcome.error_code else {})
        if outcome.error_code == REGISTRY_CHANGED:
            audit_registry_changed(session, job.site, f"worker:{worker_id}", job.use_case,
                                   outcome.error_detail or "")
        session.commit()
    log.info("job %s %s%s", job_id, outcome.state.value,
             f" ({outcome.error_code})" if outcome.error_code else "")
    return outcome.state
