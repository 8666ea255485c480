"""The explain evidence of one bundle, carried into its signed validation record: the
uncertainty calibration and the attribution sanity checks, on held-out phantom seeds of the
bundle's use case (its phantom extension, where it has one).

The sanity checks judge attribution by the share that falls on the aorta, which only a cascade
with an aortic second stage is about: a bundle of the first stage alone gets none, so every
attribution method stays refused for it."""

from collections.abc import Callable, Sequence
from pathlib import Path

from digital_contrast.explain.attribution import Method
from digital_contrast.explain.calibration import DEFAULT_ERROR_HU, calibrate
from digital_contrast.explain.sanity import run_sanity_checks
from digital_contrast.inference.cascade import Cascade
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.explain_evidence import ExplainEvidence, ExplainFile

# Seeds of neither training (0-999, validation 1000+) nor the validation protocol (9000+).
CALIBRATION_SEEDS = tuple(range(8000, 8012))
SANITY_SEEDS = (8100, 8101)


def explain_evidence(cascade: Cascade, *,
                     calibration_seeds: Sequence[int] = CALIBRATION_SEEDS,
                     sanity_seeds: Sequence[int] = SANITY_SEEDS,
                     methods: Sequence[Method] = tuple(Method),
                     progress: Callable[[str], None] | None = None,
                     target_phase: str = "arterial", error_hu: float = DEFAULT_ERROR_HU,
                     extension: str | None = None) -> ExplainEvidence:
    """`target_phase`, `error_hu` and the phantom `extension` are the use case's."""
    report = progress or (lambda _: None)
    uncertainty = calibrate(cascade, calibration_seeds, target_phase=target_phase,
                            error_hu=error_hu, extension=extension,
                            progress=lambda seed: report(f"calibration case {seed}"))
    report(f"uncertainty threshold {uncertainty.threshold_hu} HU")
    aortic = cascade.lumen_network is not None
    sanity = run_sanity_checks(cascade, sanity_seeds, methods) if aortic else []
    return ExplainEvidence(uncertainty=uncertainty, sanity=sanity)


def calibrate_bundle(bundle: Path, out: Path, *,
                     progress: Callable[[str], None] | None = None,
                     target_phase: str = "arterial", error_hu: float = DEFAULT_ERROR_HU,
                     extension: str | None = None) -> ExplainEvidence:
    """The explain evidence of the bundle folder, written to `out` as an ExplainFile."""
    candidate = read_bundle(bundle)
    evidence = explain_evidence(Cascade.of(candidate), progress=progress,
                                target_phase=target_phase, error_hu=error_hu,
                                extension=extension)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(ExplainFile(bundle_sha256=candidate.sha256, explain=evidence)
                   .model_dump_json(indent=2) + "\n", encoding="utf-8")
    return evidence
