"""Explaining an earlier synthesis: the same synthesis recomputed, only its attribution map
written. The recomputation is compared with the published output: on another platform it may
differ, and the map then explains the recomputation, which the result says."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.explain.outputs import MapOutputs
from digital_contrast.imaging.series_reader import SeriesSource, read_series
from digital_contrast.inference import SynthesisResult, synthesize
from digital_contrast.pipeline.attribution_step import (
    AttributionRequest,
    AttributionStep,
    compute_attribution,
    write_attribution,
)
from digital_contrast.pipeline.clinical_path import MAPS_DIR, ModelLoader
from digital_contrast.usecases import UseCase

NOT_REPRODUCED = ("EXPLAIN_NOT_REPRODUCED: the recomputed synthesis differs from the published "
                  "one (another platform?); the map explains the recomputation")


@dataclass(frozen=True, eq=False)
class Reexplanation:
    synthesis: SynthesisResult
    attribution: AttributionStep
    map: MapOutputs | None  # None when the attribution was refused or failed
    reproduced: bool  # the recomputed output has the published output's hash

    @property
    def timings_s(self) -> dict[str, float]:
        return self.synthesis.timings_s | {"explain": round(self.attribution.seconds, 3)}

    @property
    def warnings(self) -> list[str]:
        return ([] if self.reproduced else [NOT_REPRODUCED]) + \
            ([self.attribution.warning] if self.attribution.warning else [])


def reexplain(source: SeriesSource, use_case: UseCase, load_model: ModelLoader, out: Path,
              request: AttributionRequest, published_sha256: str | None, *,
              core: Callable[[], AbstractContextManager[object]] = nullcontext
              ) -> Reexplanation:
    """Recompute the synthesis of `source` (conformity included, as the locked core always
    does) and write the attribution map under `<out>/maps/`."""
    ncct = read_series(source)
    with core():
        model = load_model(use_case)
        result = synthesize(ncct, use_case, model)
        step = compute_attribution(result, model, request)
    step, written = write_attribution(out / MAPS_DIR, ncct, result, step)
    return Reexplanation(result, step, written, published_sha256 == result.output_sha256)
