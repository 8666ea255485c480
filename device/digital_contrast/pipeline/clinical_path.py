"""`run_clinical_path`: one NCCT series through the whole clinical path, into one result.

Conformity runs before the model is loaded (a refused input never loads the model). The
computing steps, conformity included, run inside the caller's `core` context (a job's core lock
and energy measurement); the outputs are written after it: the labelled derived series (LOW
CONFIDENCE in its description when the confidence is low) and the maps, each folder in one
rename.
"""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digital_contrast.explain.outputs import MapOutputs
from digital_contrast.explain.steps import (
    LOW_CONFIDENCE_FLAG,
    Confidence,
    assess_confidence,
    require_method,
    synthesizing_model,
    write_confidence_maps,
)
from digital_contrast.imaging.conformity import require_conformity
from digital_contrast.imaging.safe_zip import DEFAULT_LIMITS, ZipLimits
from digital_contrast.imaging.series_reader import SeriesSource, read_series
from digital_contrast.imaging.synthetic import SyntheticSeries, write_synthetic_series
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference import LockedModel, SynthesisResult, synthesize
from digital_contrast.pipeline.attribution_step import (
    AttributionRequest,
    AttributionStep,
    compute_attribution,
    write_attribution,
)
from digital_contrast.usecases import UseCase

ModelLoader = Callable[[UseCase], LockedModel]  # the locked model the caller vouches for
MAPS_DIR = "maps"


@dataclass(frozen=True, eq=False)
class ClinicalResult:
    ncct: Volume
    synthesis: SynthesisResult
    confidence: Confidence
    series: SyntheticSeries | None  # None when the caller asked for maps only
    maps: list[MapOutputs]  # the uncertainty map, then the attribution map when made
    attribution: AttributionStep | None
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        extra = [self.confidence.warning, self.attribution.warning if self.attribution else None]
        return self.synthesis.warnings + [w for w in extra if w]

    def to_dict(self) -> dict[str, Any]:
        """The result record (without the maps, whose form depends on where they are kept)."""
        record = self.synthesis.to_dict() | {"timings_s": self.timings_s,
                                             "confidence": self.confidence.to_dict(),
                                             "warnings": self.warnings}
        if self.series is not None:
            record["output_series_instance_uid"] = self.series.series_instance_uid
        if self.attribution is not None:
            record["explain"] = self.attribution.to_dict()
        return record


def run_clinical_path(source: SeriesSource, use_case: UseCase, load_model: ModelLoader,
                      out: Path, *, attribution: AttributionRequest | None = None,
                      write_series: bool = True, zip_limits: ZipLimits = DEFAULT_LIMITS,
                      core: Callable[[], AbstractContextManager[object]] = nullcontext
                      ) -> ClinicalResult:
    """Run the path on `source` (a folder, a zip or the files' bytes) and write its outputs
    under `out` (the series in `<out>/<SeriesInstanceUID>/`, the maps in `<out>/maps/`)."""
    ncct = read_series(source, zip_limits=zip_limits)
    with core():  # conformity costs compute too: a refused job's energy is measured
        start = time.perf_counter()
        verdict = require_conformity(ncct, use_case)
        conformity_s = time.perf_counter() - start
        model = load_model(use_case)
        if attribution is not None and attribution.required:
            require_method(model.explain_evidence, attribution.method)  # before any inference
        result = synthesize(ncct, use_case, model, verdict=verdict)  # checked once, here
        timings = {"conformity": round(conformity_s, 3), **result.timings_s}
        confidence = assess_confidence(result, model)
        timings["uncertainty"] = round(confidence.seconds, 3)
        step = None
        if attribution is not None:
            step = compute_attribution(result, model, attribution)
            timings["explain"] = round(step.seconds, 3)
    series = None
    if write_series:
        assert ncct.source is not None  # read_series always keeps its source
        series = write_synthetic_series(
            result.volume, ncct.source, synthesizing_model(result), out, options=result.options,
            flags=[LOW_CONFIDENCE_FLAG] if confidence.low_confidence else [])
    maps = [write_confidence_maps(out / MAPS_DIR, ncct, result, confidence)]
    if step is not None:
        step, written = write_attribution(out / MAPS_DIR, ncct, result, step)
        maps += [written] if written is not None else []
    return ClinicalResult(ncct, result, confidence, series, maps, step, timings)
