"""The attribution step of the clinical path: what a caller asks for, and what came of it.

A caller either requires the map (the command line: a refused method stops before inference)
or takes it as an extra (a job: the synthesis stands, and the refusal becomes a warning).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from digital_contrast.explain.attribution import Attribution, box_mask_mm
from digital_contrast.explain.outputs import MapOutputError, MapOutputs
from digital_contrast.explain.steps import (
    ExplainError,
    explain_attribution,
    write_attribution_maps,
)
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference import LockedModel, SynthesisResult

Box = Sequence[Sequence[float]]  # ((x0, y0, z0), (x1, y1, z1)), patient LPS millimetres


@dataclass(frozen=True)
class AttributionRequest:
    method: str
    region_box_mm: Box | None = None  # None: the synthesized lumen is explained
    required: bool = True  # False: a refused or failed attribution leaves a warning only

    @property
    def map_options(self) -> dict[str, object] | None:
        """The region takes part in the map's UIDs: two regions are two series."""
        if self.region_box_mm is None:
            return None
        return {"region_box_mm": [list(corner) for corner in self.region_box_mm]}


@dataclass(frozen=True, eq=False)
class AttributionStep:
    request: AttributionRequest
    attribution: Attribution | None
    error: ExplainError | MapOutputError | None  # only when the request is not required
    seconds: float
    slug: str | None = None  # the folder of its maps, once written

    def to_dict(self) -> dict[str, Any]:
        """What a result record says of the step."""
        box = self.request.map_options
        summary: dict[str, Any] = {"method": self.request.method,
                                   "region_box_mm": box["region_box_mm"] if box else None}
        if self.error is not None:
            return summary | {"error": {"code": self.error.code, "detail": self.error.detail}}
        assert self.attribution is not None
        return summary | self.attribution.to_dict() | {"slug": self.slug,
                                                        "seconds": round(self.seconds, 3)}

    @property
    def warning(self) -> str | None:
        if self.error is None:
            return None
        return f"{self.error.code}: no attribution map - {self.error.detail}"


def compute_attribution(result: SynthesisResult, model: LockedModel,
                        request: AttributionRequest) -> AttributionStep:
    start = time.perf_counter()
    try:
        assert result.working is not None
        box = request.region_box_mm
        target = (box_mask_mm(result.working, tuple(box[0]), tuple(box[1]))  # type: ignore[arg-type]
                  if box is not None else None)
        attribution = explain_attribution(result, model, request.method, target)
    except ExplainError as exc:
        if request.required:
            raise
        return AttributionStep(request, None, exc, time.perf_counter() - start)
    return AttributionStep(request, attribution, None, time.perf_counter() - start)


def write_attribution(folder: Path, ncct: Volume, result: SynthesisResult,
                      step: AttributionStep) -> tuple[AttributionStep, MapOutputs | None]:
    """The step's maps; a write failure of a map that was not required becomes its error."""
    if step.attribution is None:
        return step, None
    try:
        outputs = write_attribution_maps(folder, ncct, result, step.attribution,
                                         options=step.request.map_options)
    except MapOutputError as exc:
        if step.request.required:
            raise
        return replace(step, attribution=None, error=exc), None
    return replace(step, slug=outputs.spec.slug), outputs
