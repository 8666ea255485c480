"""A repository cohort trains and validates a model: phantom studies ingested (de-identified) at
a site, a cohort of native + arterial pairs saved and exported with its files, `model train
--cohort` learning the first stage from its pairs into a bundle that names the cohort, and a
protocol naming a cohort export validating a model on its pairs; every pair checked against
the manifest before a run starts, and refused by code otherwise."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from pydicom import dcmread
from typer.testing import CliRunner

from digital_contrast.batch_manifest import (
    FORMAT,
    ManifestCase,
    ManifestHeader,
    ManifestReference,
    folder_instance_set,
    read_manifest,
    write_manifest,
)
from digital_contrast.cli import app
from digital_contrast.inference.locked_model import LockedModel
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.cohort_data import CohortDataError, cohort_items
from digital_contrast.usecases import load_use_case
from digital_contrast.validation import ValidationRunError, load_protocol, run_validation
from tests.support.git import commit_file
from tests.support.models import tiny_bundle
from tests.support.repository import phantom_patients
from tests.support.signing import site_signer

AAA = load_use_case("aaa-cta")


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _bundles(root: Path) -> list[Path]:
    folder = root / "data" / "bundles" / "aaa-cta"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.req("SRS-REPO-014", "SRS-REPO-013")
def test_a_cohort_of_pairs_trains_a_first_stage_end_to_end(
        operator_env: Path, phantom_series: dict) -> None:
    out = operator_env / "repository"
    done = subprocess.run(
        [sys.executable, "-m", "digital_contrast", "repository", "ingest",
         str(phantom_patients(phantom_series, operator_env / "source", 2)), "--site", "site-a",
         "--out", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    saved = _invoke("repository", "search", "--pairs", "--phase", "arterial", "--limit", "0",
                    "--save", "aaa-pairs", "--purpose", "smoke training")
    assert saved.exit_code == 0, saved.output
    manifests = {}
    for use_case in ("aaa-cta", "abdomen-pv"):
        manifests[use_case] = operator_env / f"{use_case}.jsonl"
        exported = _invoke("repository", "export", "aaa-pairs", "--use-case", use_case,
                           "--out", str(manifests[use_case]), "--dua", "DUA-1", "--min-k", "2",
                           "--quasi-identifiers", "age_band,sex,manufacturer,site",
                           "--files", str(out))
        assert exported.exit_code == 0, exported.output

    # refused before anything is trained or written
    for args, code in (
            (("--config", "smoke", "--cohort", str(manifests["aaa-cta"])),
             "TRAINING_COHORT_UNSUPPORTED"),  # its second stage learns from phantom labels
            (("--config", "cohort-smoke"), "TRAINING_COHORT_INVALID"),  # no cohort given
            (("--config", "cohort-smoke", "--cohort", str(manifests["abdomen-pv"])),
             "TRAINING_COHORT_INVALID")):  # a manifest for another use case
        refused = _invoke("model", "train", "--use-case", "aaa-cta", *args)
        assert refused.exit_code == 2 and code in refused.output, refused.output
    refused = _invoke("model", "train", "--use-case", "abdomen-pv", "--config", "cohort-smoke",
                      "--cohort", str(manifests["abdomen-pv"]))  # arterial pairs, a pv model
    assert refused.exit_code == 2 and "TRAINING_COHORT_INVALID" in refused.output
    assert "its reference is arterial" in " ".join(refused.output.split())
    assert not _bundles(operator_env) and not (operator_env / "data" / "training").exists()

    trained = _invoke("model", "train", "--use-case", "aaa-cta", "--config", "cohort-smoke",
                      "--cohort", str(manifests["aaa-cta"]), "--model-version", "0.0.1")
    assert trained.exit_code == 0, trained.output
    (folder,) = _bundles(operator_env)
    provenance = read_bundle(folder).manifest.provenance
    manifest = read_manifest(manifests["aaa-cta"])
    cohort = provenance["training_cohort"]
    assert (cohort["cohort"], cohort["cohort_version"], cohort["batch_manifest_sha256"]) == (
        "aaa-pairs", 1, manifest.sha256)
    assert cohort["cohort_sha256"] == manifest.header.provenance["cohort_sha256"]
    assert cohort["labels"] == "phase and region from headers, unverified"
    run = operator_env / "data" / "training" / provenance["training_run_id"]
    data = json.loads((run / "data_manifest.json").read_text("ascii"))
    assert data["generator"] == "digital_contrast.repository"
    assert sorted((c["series_instance_uid"], c["reference_series_instance_uid"])
                  for c in data["training"]) == sorted(
        (c.series_instance_uid, c.reference.series_instance_uid) for c in manifest.cases)
    config = json.loads((run / "training_config.json").read_text("utf-8"))
    assert (config["seeds"], config["cohort_manifest_sha256"]) == ([], manifest.sha256)

    # a file changed after the export: the pairs are not the manifest's any more
    changed = next((out).rglob("*.dcm"))
    changed.write_bytes(changed.read_bytes() + b"\0")
    refused = _invoke("model", "train", "--use-case", "aaa-cta", "--config", "cohort-smoke",
                      "--cohort", str(manifests["aaa-cta"]), "--out",
                      str(operator_env / "second"))
    assert refused.exit_code == 2 and "TRAINING_COHORT_CHANGED" in refused.output
    assert len(_bundles(operator_env)) == 1 and not (operator_env / "second").exists()


COHORT = "ab" * 32


def _pair_manifest(root: Path, phantom_series: dict, edit=None, drop: int = 0) -> Path:
    """The phantom NCCT and arterial series as one pair case of cohort COHORT (the arterial
    copy edited, its first and last `drop` slices left out)."""
    for phase in ("ncct", "arterial"):
        shutil.copytree(phantom_series[phase], root / phase)
    for path in sorted((root / "arterial").glob("*.dcm"),
                       key=lambda p: float(dcmread(p).ImagePositionPatient[2]))[:drop]:
        path.unlink()
    for path in sorted((root / "arterial").glob("*.dcm"),
                       key=lambda p: -float(dcmread(p).ImagePositionPatient[2]))[:drop]:
        path.unlink()
    if edit is not None:
        for path in (root / "arterial").glob("*.dcm"):
            ds = dcmread(path)
            edit(ds)
            ds.save_as(path)
    (native_uid, native_set), (uid, digest) = (folder_instance_set(root / p)
                                               for p in ("ncct", "arterial"))
    path = root / "pairs.jsonl"
    write_manifest(path, ManifestHeader(format=FORMAT, version=1, name="pairs",
                                        use_case="aaa-cta", created="2026-12-07T00:00:00+00:00",
                                        provenance={"cohort": "pairs", "cohort_version": 1,
                                                    "cohort_sha256": COHORT}),
                   [ManifestCase(case_id="c1", series_instance_uid=native_uid,
                                 instance_set_sha256=native_set, folder="ncct",
                                 reference=ManifestReference(
                                     series_instance_uid=uid, instance_set_sha256=digest,
                                     phase="arterial", folder="arterial"))])
    return path


@pytest.mark.req("SRS-REPO-014")
@pytest.mark.parametrize(("edit", "code"), [
    (None, None),
    (lambda ds: setattr(ds, "FrameOfReferenceUID", "2.25.1"), "TRAINING_PAIR_UNREGISTERED"),
])
def test_each_pair_shares_its_frame_of_reference(tmp_path: Path, phantom_series: dict,
                                                 edit, code: str | None) -> None:
    manifest = read_manifest(_pair_manifest(tmp_path, phantom_series, edit))
    if code is None:
        (item,) = cohort_items(manifest, "arterial")
        assert Path(item["ncct_folder"]) == tmp_path / "ncct"
        return
    with pytest.raises(CohortDataError) as raised:
        cohort_items(manifest, "arterial")
    assert raised.value.code == code and "case c1" in raised.value.detail


@pytest.mark.req("SRS-REPO-014")
def test_a_case_without_its_reference_or_folders_is_refused(tmp_path: Path,
                                                            phantom_series: dict) -> None:
    path = _pair_manifest(tmp_path, phantom_series)
    lines = path.read_text("utf-8").splitlines()
    case = json.loads(lines[1])
    for changed, words in ((lambda c: c.pop("reference"), "names no reference"),
                           (lambda c: c["reference"].pop("folder"), "names no folder")):
        edited = json.loads(json.dumps(case))
        changed(edited)
        path.write_text(f"{lines[0]}\n{json.dumps(edited)}\n", "utf-8")
        with pytest.raises(CohortDataError) as raised:
            cohort_items(read_manifest(path), "arterial")
        assert raised.value.code == "TRAINING_COHORT_INVALID"
        assert words in raised.value.detail


@pytest.mark.req("SRS-REPO-015")
def test_a_protocol_naming_a_cohort_export_validates_on_its_pairs(
        tmp_path: Path, phantom_series: dict) -> None:
    manifest = _pair_manifest(tmp_path / "cohort", phantom_series, drop=4)
    digest = read_manifest(manifest).sha256
    model = LockedModel.under_validation(tiny_bundle(tmp_path / "bundle", AAA), AAA)

    def protocol(name: str, **dataset: str) -> Path:
        folder = tmp_path / "protocols"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "id": name, "version": 1, "use_case": "aaa-cta",
            "evidence": "phantom pairs through the repository; not clinically validated",
            "dataset": {"generator": "digital_contrast.repository", "manifest": str(manifest),
                        "cohort_sha256": COHORT, "manifest_sha256": digest,
                        "description": "one phantom pair"} | dataset,
            "reference": "each pair's arterial series", "primary_stratum": "all pairs",
            "acceptance": [{"metric": "mae_body_hu", "op": "<=", "threshold": 10000}],
            "revisions": [{"version": 1, "change": "first"}]}, sort_keys=False))
        commit_file(path)
        return path

    run = run_validation(load_protocol(protocol("cohort")), model, tmp_path / "out",
                         site_signer())
    (case,) = run.cases
    assert case.case_id == "c1" and case.completed, case.failure_detail
    assert {"mae_body_hu", "enhancement_dice", "ssim"} <= set(case.metrics)
    assert run.record.passed and "repository cohort abababababab" in run.record.dataset

    for name, dataset, code in (("other-export", {"manifest_sha256": "0" * 64},
                                 "DATASET_CHANGED"),
                                ("other-cohort", {"cohort_sha256": "0" * 64}, "DATASET_CHANGED")):
        with pytest.raises(ValidationRunError) as raised:
            run_validation(load_protocol(protocol(name, **dataset)), model, tmp_path / "out",
                           site_signer())
        assert raised.value.code == code
    learnt = replace(model, training_cohort_sha256=COHORT)  # trained on the same cohort
    with pytest.raises(ValidationRunError) as raised:
        run_validation(load_protocol(protocol("cohort")), learnt, tmp_path / "out",
                       site_signer())
    assert raised.value.code == "DATASET_INVALID" and "learnt from this cohort" in \
        raised.value.detail
