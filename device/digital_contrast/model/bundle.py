"""The model bundle: everything that decides a synthetic image, hashed as one.

A bundle is a folder holding the cascade: `weights.pt`, the first stage (whole-volume
enhancement network), and, for a use case whose training config asks for it, `lumen_weights.pt`,
the second stage (lumen and thrombus on a crop around the aorta), each a torch state dict of
tensors only, loaded with `weights_only=True` so no pickled code runs; and `bundle.json`
(format version, use case, the stages' configurations with their preprocessing, the
intended-use envelope, provenance). A manifest without a second stage names a bundle of the
first stage alone, and then no `lumen_weights.pt` may be present. The SHA-256 of the bundle
covers every file's name and bytes; a bundle whose hash differs from the one registered is not
run. Bundles of an earlier format (a single network) are refused: BUNDLE_FORMAT_UNSUPPORTED.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from digital_contrast.errors import DigitalContrastError
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.model.lumen_stage import LumenStageConfig
from digital_contrast.model.network_config import NetworkConfig
from digital_contrast.usecases.schema import Envelope, UseCase

BUNDLE_FORMAT = "digital-contrast-bundle/2"
WEIGHTS = "weights.pt"
LUMEN_WEIGHTS = "lumen_weights.pt"
MANIFEST = "bundle.json"
FILES = (MANIFEST, WEIGHTS, LUMEN_WEIGHTS)  # a two-stage bundle's files, in hashing order
FIRST_STAGE_FILES = (MANIFEST, WEIGHTS)


class BundleError(DigitalContrastError):
    """A bundle that is malformed (BUNDLE_INVALID), of a format this version no longer runs
    (BUNDLE_FORMAT_UNSUPPORTED) or that does not match its use case (BUNDLE_MISMATCH)."""


class BundleManifest(FrozenSchema):
    format: str = Field(BUNDLE_FORMAT, pattern=rf"^{BUNDLE_FORMAT}$")
    use_case: str
    model_name: str
    model_version: str
    network: NetworkConfig  # stage 1
    lumen_stage: LumenStageConfig | None  # stage 2; None: the first stage alone
    envelope: Envelope
    evidence: str
    provenance: dict[str, Any] = Field(default_factory=dict)  # training run, data manifest hash


@dataclass(frozen=True)
class Bundle:
    folder: Path
    manifest: BundleManifest
    sha256: str

    def state_dict(self) -> dict:
        """Stage 1's weights."""
        return _load_weights(self.folder / WEIGHTS)

    @property
    def files(self) -> tuple[str, ...]:
        return bundle_files(self.manifest.lumen_stage is not None)

    def lumen_state_dict(self) -> dict:
        """Stage 2's weights (ValueError for a bundle of the first stage alone)."""
        if self.manifest.lumen_stage is None:
            raise ValueError(f"bundle {self.folder.name} has no second stage")
        return _load_weights(self.folder / LUMEN_WEIGHTS)


def bundle_files(two_stage: bool) -> tuple[str, ...]:
    """The files of a bundle with or without the second stage, in hashing order."""
    return FILES if two_stage else FIRST_STAGE_FILES


def _load_weights(path: Path) -> dict:
    # torch only here: listing and registering bundles never loads the network libraries
    from digital_contrast.model.network import load_state_dict_bytes

    return load_state_dict_bytes(path.read_bytes())


# The files each format hashes, for records that list bundles of earlier formats.
FORMAT_FILES: dict[str, tuple[str, ...]] = {"digital-contrast-bundle/1": (MANIFEST, WEIGHTS),
                                            BUNDLE_FORMAT: FILES}


def bundle_sha256(folder: Path, files: tuple[str, ...] = FILES) -> str:
    """Hash of exactly the bundle's files (name and content), in a fixed order."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((folder / name).read_bytes()).digest())
    return digest.hexdigest()


def write_bundle(folder: Path, *, use_case: UseCase, model_version: str,
                 network: NetworkConfig, state_dict: dict, lumen_stage: LumenStageConfig | None,
                 lumen_state_dict: dict | None, provenance: dict[str, Any] | None = None
                 ) -> Bundle:
    """Write a bundle for `use_case`; its preprocessing must be the use case's. Without
    `lumen_stage` (and its weights) the bundle is the first stage alone."""
    from digital_contrast.model.network import state_dict_bytes

    check_preprocessing(use_case, network)
    if (lumen_stage is None) != (lumen_state_dict is None):
        raise ValueError("the second stage needs both its configuration and its weights")
    manifest = BundleManifest(use_case=use_case.id, model_name=use_case.model_name,
                              model_version=model_version, network=network,
                              lumen_stage=lumen_stage, envelope=use_case.envelope,
                              evidence=use_case.evidence, provenance=provenance or {})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WEIGHTS).write_bytes(state_dict_bytes(state_dict))
    if lumen_state_dict is not None:
        (folder / LUMEN_WEIGHTS).write_bytes(state_dict_bytes(lumen_state_dict))
    (folder / MANIFEST).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2,
                                              sort_keys=True) + "\n", encoding="utf-8")
    return read_bundle(folder)


def read_bundle(folder: Path) -> Bundle:
    folder = Path(folder)
    _require_format(folder / MANIFEST)
    try:
        manifest = BundleManifest.model_validate_json((folder / MANIFEST).read_text("utf-8"))
    except OSError:
        manifest = None  # reported below as a missing file
    except (ValidationError, ValueError) as exc:
        raise BundleError("BUNDLE_INVALID", f"bundle manifest is not valid: {exc}") from None
    files = bundle_files(manifest is None or manifest.lumen_stage is not None)
    missing = [name for name in files if not (folder / name).is_file()]
    extra = sorted(p.name for p in folder.iterdir() if p.name not in files) \
        if folder.is_dir() else []
    if missing or extra:
        raise BundleError("BUNDLE_INVALID", f"bundle {folder.name}: missing {missing or 'none'}"
                                            f", unexpected {extra or 'none'}")
    assert manifest is not None  # its file is present, so it was read
    return Bundle(folder=folder, manifest=manifest, sha256=bundle_sha256(folder, files))


@dataclass(frozen=True)
class FiledBundle:
    """What a record says of a bundle of any known format (never loaded to run)."""

    format: str
    use_case: str
    model_version: str
    sha256: str


def filed_bundle(folder: Path) -> FiledBundle:
    """A bundle's identity read for a record, whatever its format (BUNDLE_INVALID for an
    unknown format or unreadable manifest)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text("utf-8"))
        files = FORMAT_FILES[manifest["format"]]
        if manifest.get("lumen_stage", True) is None:
            files = FIRST_STAGE_FILES
        return FiledBundle(manifest["format"], manifest["use_case"], manifest["model_version"],
                           bundle_sha256(Path(folder), files))
    except (OSError, ValueError, KeyError, TypeError):
        raise BundleError("BUNDLE_INVALID", f"{folder} is not a bundle of a known format"
                          ) from None


def _require_format(manifest: Path) -> None:
    """BUNDLE_FORMAT_UNSUPPORTED for a readable manifest of another format (a malformed one
    is left to the full check)."""
    try:
        found = json.loads(manifest.read_text("utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(found, str) and found != BUNDLE_FORMAT:
        raise BundleError("BUNDLE_FORMAT_UNSUPPORTED",
                          f"bundle format {found!r} is not run by this version, which needs "
                          f"{BUNDLE_FORMAT!r} (a cascade); train or fetch a bundle "
                          "of the current format (docs/operations.md, 'Models and the "
                          "registry')")


def check_preprocessing(use_case: UseCase, network: NetworkConfig) -> None:
    expected = use_case.preprocessing.network_fields()
    actual = {name: getattr(network, name) for name in expected}
    if actual != expected:
        differs = ", ".join(f"{name} {actual[name]} (use case: {expected[name]})"
                            for name in expected if actual[name] != expected[name])
        raise BundleError("BUNDLE_MISMATCH", f"network preprocessing differs from use case "
                                             f"{use_case.id}: {differs}")
