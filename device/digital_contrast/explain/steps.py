"""The explain steps of the clinical path (composed by `digital_contrast.pipeline`): the
confidence of every synthesis (TTA uncertainty against the bundle's calibration) and, on
request, an attribution map; both written as maps.

A bundle without an uncertainty calibration gets no score: its results are labelled low
confidence (fail-safe) with a warning saying why. An attribution method is offered only if it
passed its sanity checks for this bundle (`EXPLAIN_METHOD_REFUSED` otherwise).
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digital_contrast.errors import DigitalContrastError
from digital_contrast.explain.attribution import Attribution, AttributionError, Method, attribute
from digital_contrast.explain.outputs import MapOutputs, MapSpec, write_map_outputs
from digital_contrast.explain.uncertainty import UncertaintyMap, estimate_uncertainty
from digital_contrast.imaging.synthetic import SynthesizingModel
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference import LockedModel
from digital_contrast.inference.synthesize import SynthesisResult
from digital_contrast.model.explain_evidence import ExplainEvidence, TTASettings

LOW_CONFIDENCE_FLAG = "LOW CONFIDENCE"


class ExplainError(DigitalContrastError):
    """EXPLAIN_METHOD_REFUSED, EXPLAIN_REGION_INVALID, EXPLAIN_REGION_EMPTY, EXPLAIN_FAILED."""


@dataclass(frozen=True, eq=False)
class Confidence:
    uncertainty: UncertaintyMap
    threshold_hu: float | None  # None: the bundle has no uncertainty calibration
    uncertain_fraction: float | None
    limit: float  # the use case's largest acceptable uncertain fraction
    seconds: float

    @property
    def low_confidence(self) -> bool:
        return self.uncertain_fraction is None or self.uncertain_fraction > self.limit

    @property
    def warning(self) -> str | None:
        region = self.uncertainty.region_name
        if self.uncertain_fraction is None:
            return ("LOW_CONFIDENCE: this model has no uncertainty calibration, so the "
                    f"confidence of the {region} is unknown")
        if self.uncertain_fraction > self.limit:
            return (f"LOW_CONFIDENCE: {self.uncertain_fraction:.0%} of the {region} is "
                    f"uncertain (limit {self.limit:.0%}); read the uncertainty map")
        return None

    def to_dict(self) -> dict[str, object]:
        return {"method": "test-time augmentation", "samples": self.uncertainty.settings.samples,
                "calibrated": self.threshold_hu is not None, "threshold_hu": self.threshold_hu,
                # /v1 names: the fraction and count are of the scored region, whatever it is.
                "uncertain_lumen_fraction": (None if self.uncertain_fraction is None
                                             else round(self.uncertain_fraction, 4)),
                "limit": self.limit, "low_confidence": self.low_confidence,
                "lumen_voxels": int(self.uncertainty.region.sum()),
                "scored_region": self.uncertainty.region_name,
                "seconds": round(self.seconds, 3)}


def synthesizing_model(result: SynthesisResult) -> SynthesizingModel:
    return SynthesizingModel(result.model_name, result.model_version, result.bundle_sha256,
                             result.notice)


def assess_confidence(result: SynthesisResult, model: LockedModel) -> Confidence:
    if result.working is None:
        raise ValueError("the synthesis result carries no working-grid prediction")
    evidence = model.explain_evidence
    calibration = evidence.uncertainty if evidence else None
    start = time.perf_counter()
    uncertainty = estimate_uncertainty(result.working, model.cascade,
                                       calibration.tta if calibration else TTASettings())
    threshold = calibration.threshold_hu if calibration else None
    fraction = None if threshold is None else uncertainty.fraction_above(threshold)
    return Confidence(uncertainty=uncertainty, threshold_hu=threshold,
                      uncertain_fraction=fraction,
                      limit=model.use_case.explain.max_uncertain_lumen_fraction,
                      seconds=time.perf_counter() - start)


def uncertainty_spec(confidence: Confidence) -> MapSpec:
    return MapSpec(kind="uncertainty", method="tta", unit_code="[hnsf'U]",
                   unit_meaning="Hounsfield unit",
                   description=(f"SD of synthesized enhancement over "
                                f"{confidence.uncertainty.settings.samples} test-time "
                                "augmentations"))


def attribution_spec(attribution: Attribution) -> MapSpec:
    return MapSpec(kind="attribution", method=attribution.method.value, unit_code="1",
                   unit_meaning="no units",
                   description=(f"|{attribution.method.value}| attribution of the mean "
                                "synthesized enhancement in the target region"))


def write_confidence_maps(folder: Path, ncct: Volume, result: SynthesisResult,
                          confidence: Confidence) -> MapOutputs:
    values = ncct.with_array(confidence.uncertainty.to_native(ncct))
    return write_map_outputs(folder, ncct=ncct, synthetic=result.volume, values=values,
                             spec=uncertainty_spec(confidence), model=synthesizing_model(result))


def require_method(evidence: ExplainEvidence | None, method: Method | str) -> Method:
    """The method, if it passed its sanity checks for the bundle whose validation record holds
    `evidence`; EXPLAIN_METHOD_REFUSED if it failed them or was never checked."""
    try:
        method = Method(method)
    except ValueError:
        raise ExplainError("EXPLAIN_METHOD_REFUSED",
                           f"unknown attribution method; use one of "
                           f"{[m.value for m in Method]}") from None
    check = evidence.sanity_of(method.value) if evidence else None
    if check is None:
        raise ExplainError("EXPLAIN_METHOD_REFUSED",
                           f"{method.value} has not been sanity-checked for this model")
    if not check.passed:
        raise ExplainError("EXPLAIN_METHOD_REFUSED",
                           f"{method.value} failed its sanity checks for this model "
                           f"(randomisation Spearman {check.randomisation_spearman:.2f}, max "
                           f"{check.max_randomisation_spearman}; aorta mass ratio "
                           f"{check.aorta_mass_ratio:.1f}, min {check.min_aorta_mass_ratio})")
    return method


def explain_attribution(result: SynthesisResult, model: LockedModel, method: Method | str,
                        target: np.ndarray | None = None) -> Attribution:
    """Attribution by a sanity-checked method; `target` a working-grid mask (see attribution's
    `box_mask_mm` and `native_mask_to_working`)."""
    checked = require_method(model.explain_evidence, method)
    if result.working is None:
        raise ValueError("the synthesis result carries no working-grid prediction")
    try:
        return attribute(result.working, model.network, model.network_config, checked,
                         target=target)
    except AttributionError as exc:
        raise ExplainError(exc.code, exc.detail) from None


def write_attribution_maps(folder: Path, ncct: Volume, result: SynthesisResult,
                           attribution: Attribution,
                           options: Mapping[str, object] | None = None) -> MapOutputs:
    """`options` (e.g. the caller's region) take part in the map's UIDs: two attributions of
    one series by one method but of different regions are two series."""
    assert result.working is not None
    values = ncct.with_array(attribution.to_native(result.working, ncct))
    return write_map_outputs(folder, ncct=ncct, synthetic=result.volume, values=values,
                             spec=attribution_spec(attribution),
                             model=synthesizing_model(result), options=options)
