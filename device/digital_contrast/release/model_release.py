"""A reference model's release folder: `releases/models/<use case>/<version>/`.

It holds the bundle, the validation record that lets it reach production, the quality report
it was judged on and its model card. Only a bundle whose record passes for exactly its hash is
released; the folder appears complete or not at all (built aside, then renamed).

A candidate that was evaluated but not released (typically: it failed its protocol) is filed
the same way under `validation/reports/models/<use case>/<version>/`, so that its evidence,
failed criteria included, stays reproducible; nothing there is ever registered or promoted.
"""

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from digital_contrast.config import REPO_ROOT, get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.keys.signing import trusted_keys
from digital_contrast.model.bundle import MANIFEST, Bundle, read_bundle
from digital_contrast.model.gate import require_gate
from digital_contrast.model.lumen_stage import build_lumen_network
from digital_contrast.model.network import build_network, parameter_count
from digital_contrast.model.reference import BUNDLE_DIR, RECORD
from digital_contrast.model.registry import RegistryError
from digital_contrast.model.validation_record import SignedRecord, ValidationRecord
from digital_contrast.usecases import load_use_case

CANDIDATES_DIR = REPO_ROOT / "validation" / "reports"
MODEL_CARD = "MODEL_CARD.md"
QUALITY_REPORT = "quality_report.json"


class ReleaseError(DigitalContrastError):
    """A release that would overwrite an earlier one (RELEASE_EXISTS) or whose quality report
    is for another bundle (RELEASE_INVALID)."""


@dataclass(frozen=True)
class ModelRelease:
    folder: Path
    bundle: Bundle
    record: ValidationRecord


def render_model_card(bundle: Bundle, record: ValidationRecord,
                      report: dict[str, Any] | None) -> str:
    use_case = load_use_case(bundle.manifest.use_case)
    network, lumen = bundle.manifest.network, bundle.manifest.lumen_stage
    environment = Environment(loader=PackageLoader("digital_contrast.release"),
                              undefined=StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)  # Markdown, not HTML
    return environment.get_template("model_card.md.j2").render(
        bundle=bundle, manifest=bundle.manifest, network=network, record=record,
        use_case=use_case, report=report, provenance=bundle.manifest.provenance,
        parameters=parameter_count(build_network(network)),
        lumen_parameters=0 if lumen is None else parameter_count(build_lumen_network(lumen)),
        weights_mb=sum((bundle.folder / name).stat().st_size
                       for name in bundle.files if name != MANIFEST) / 1e6)


def _checked(bundle_dir: Path, record_path: Path, report_path: Path | None
             ) -> tuple[Bundle, SignedRecord, dict[str, Any] | None]:
    bundle = read_bundle(bundle_dir)
    signed = SignedRecord.read(record_path, trusted_keys())  # RECORD_UNSIGNED, ...
    record = signed.record
    if record.bundle_sha256 != bundle.sha256:
        raise RegistryError("MODEL_INTEGRITY",
                            f"validation record is for bundle {record.bundle_sha256[:12]}, "
                            f"not {bundle.sha256[:12]}")
    report = json.loads(report_path.read_text("utf-8")) if report_path else None
    if report is not None and report.get("bundle_sha256") != bundle.sha256:
        raise ReleaseError("RELEASE_INVALID", "the quality report is for another bundle")
    return bundle, signed, report


def _assemble(root: Path, bundle: Bundle, signed: SignedRecord,
              report: dict[str, Any] | None) -> ModelRelease:
    """`root/<model version>/`: bundle, record, report and card, complete or not at all."""
    root = root / "models" / bundle.manifest.use_case
    target = root / bundle.manifest.model_version
    if target.exists():
        raise ReleaseError("RELEASE_EXISTS", f"{target} exists: a filed version is never "
                                             "overwritten; give the bundle a new version")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".incomplete-") as scratch:
        staging = Path(scratch) / "release"
        (staging / BUNDLE_DIR).mkdir(parents=True)
        for name in bundle.files:
            shutil.copyfile(bundle.folder / name, staging / BUNDLE_DIR / name)
        (staging / RECORD).write_bytes(signed.raw)  # the signed bytes, never re-serialised
        if report is not None:
            (staging / QUALITY_REPORT).write_text(json.dumps(report, indent=2) + "\n")
        staged = read_bundle(staging / BUNDLE_DIR)
        if staged.sha256 != bundle.sha256:  # a copy that changed bytes is not filed
            raise RegistryError("MODEL_INTEGRITY", "the copied bundle's hash differs")
        (staging / MODEL_CARD).write_text(render_model_card(staged, signed.record, report),
                                          encoding="utf-8")
        staging.rename(target)
    return ModelRelease(folder=target, bundle=read_bundle(target / BUNDLE_DIR),
                        record=signed.record)


def release_model(bundle_dir: Path, record_path: Path, report_path: Path | None = None,
                  releases_dir: Path | None = None) -> ModelRelease:
    bundle, signed, report = _checked(bundle_dir, record_path, report_path)
    # What would be refused at promotion is never released: the production gate decides.
    require_gate(signed, bundle_sha256=bundle.sha256,
                 use_case=load_use_case(signed.record.use_case),
                 version=bundle.manifest.model_version)
    return _assemble(releases_dir or get_settings().releases_dir, bundle, signed, report)


def file_candidate(bundle_dir: Path, record_path: Path, report_path: Path | None = None,
                   candidates_dir: Path = CANDIDATES_DIR) -> ModelRelease:
    """File an evaluated candidate's evidence, passing or not (never a release)."""
    bundle, signed, report = _checked(bundle_dir, record_path, report_path)
    return _assemble(candidates_dir, bundle, signed, report)
