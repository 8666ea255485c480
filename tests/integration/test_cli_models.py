"""Command line: offline synthesis and the registry commands, as an operator uses them."""

import json
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import get_settings
from digital_contrast.model.explain_evidence import ExplainEvidence
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.usecases import load_use_case
from tests.support.dciodvfy import dciodvfy_errors
from tests.support.models import explain_evidence, record_for, tiny_bundle, write_record

AAA = load_use_case("aaa-cta")


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _bundle_with_record(folder: Path, *, passing: bool = True,
                        explain: ExplainEvidence | None = None) -> tuple[Path, Path]:
    bundle = tiny_bundle(folder / "bundle", AAA)
    record = write_record(record_for(bundle, passing=passing, explain=explain),
                          folder / "record.json")
    return bundle.folder, record


def _promoted(operator_env: Path, explain: ExplainEvidence | None = None) -> None:
    bundle, record = _bundle_with_record(operator_env / "b", explain=explain)
    assert _invoke("model", "register", str(bundle), "--record", str(record)).exit_code == 0
    assert _invoke("model", "promote", "aaa-cta", "1").exit_code == 0


@pytest.mark.req("SRS-MOD-006", "SRS-MOD-005")
def test_register_list_show_and_promote(operator_env: Path) -> None:
    bundle, record = _bundle_with_record(operator_env / "b", passing=False)
    registered = _invoke("model", "register", str(bundle), "--record", str(record))
    assert registered.exit_code == 0 and "version 1" in registered.output
    refused = _invoke("model", "promote", "aaa-cta", "1")
    assert refused.exit_code == 2 and "MODEL_NOT_VALIDATED" in refused.output
    listed = _invoke("model", "list")
    assert listed.exit_code == 0 and "aaa-cta" in listed.output and "no" in listed.output
    shown = _invoke("model", "show", "aaa-cta", "1")
    assert shown.exit_code == 0 and '"passed": false' in shown.output
    missing = _invoke("model", "show", "aaa-cta", "7")
    assert missing.exit_code == 2 and "MODEL_NOT_REGISTERED" in missing.output


@pytest.mark.req("SRS-MOD-006", "SRS-AUD-004")
def test_registration_and_promotion_are_audited(operator_env: Path) -> None:
    from digital_contrast.service import open_state
    from digital_contrast.store.audit import list_audit, verify_audit_chain

    bundle, record = _bundle_with_record(operator_env / "b")
    assert _invoke("model", "register", str(bundle), "--record", str(record)).exit_code == 0
    assert _invoke("model", "promote", "aaa-cta", "1").exit_code == 0
    state = open_state(get_settings())
    with state.sessions() as db:
        events = [(e.action, e.object_id) for e in list_audit(db, get_settings().site)]
        assert verify_audit_chain(db).ok
    state.engine.dispose()
    assert events == [("model.register", "aaa-cta/1"), ("model.promote", "aaa-cta/1")]


@pytest.mark.req("SRS-INF-009", "SRS-EXP-027")
def test_synthesize_writes_the_labelled_series_and_result(operator_env: Path) -> None:
    _promoted(operator_env)  # no explain evidence: uncalibrated, so LOW CONFIDENCE
    case = generate_case(8, "small")
    write_phase_dicom(case, Phase.NCCT, operator_env / "ncct")
    out = operator_env / "out"
    done = _invoke("synthesize", str(operator_env / "ncct"), "--use-case", "aaa-cta",
                   "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "not clinically validated" in " ".join(done.output.split())  # Rich wraps lines
    result = json.loads((out / "result.json").read_text())
    assert result["conformity"]["passed"] is True
    series = Path(result["output_folder"])
    files = sorted(series.iterdir())
    assert len(files) == case.ncct.shape[0]
    first = pydicom.dcmread(files[0])
    assert first.SeriesInstanceUID == result["output_series_instance_uid"]
    assert first.SyntheticData == "YES" and "aaa-cta" in first.SeriesDescription
    assert first.SeriesDescription.startswith("SYNTH CONTRAST (AI) LOW CONFIDENCE")
    assert dciodvfy_errors(files[0]) == []
    # The uncertainty map is always written beside the series, and the confidence printed.
    assert result["confidence"]["low_confidence"] is True
    assert [m["slug"] for m in result["maps"]] == ["uncertainty-tta"]
    assert (out / "maps" / "uncertainty-tta" / "preview_axial.png").is_file()
    assert (out / "maps" / "uncertainty-tta" / "parametric_map.dcm").is_file()
    assert "LOW CONFIDENCE" in done.output and "uncertainty calibration" in done.output


@pytest.mark.req("SRS-EXP-027", "SRS-EXP-028")
def test_explain_command_and_synthesize_explain_write_the_attribution(operator_env: Path
                                                                      ) -> None:
    _promoted(operator_env, explain_evidence())
    case = generate_case(8, "small")
    write_phase_dicom(case, Phase.NCCT, operator_env / "ncct")
    ncct = str(operator_env / "ncct")
    refused = _invoke("explain", ncct, "--method", "occlusion", "--out",
                      str(operator_env / "refused"))
    assert refused.exit_code == 2 and "EXPLAIN_METHOD_REFUSED" in refused.output
    assert not (operator_env / "refused").exists()
    bad_box = _invoke("explain", ncct, "--box", "1,2,3", "--out", str(operator_env / "bad"))
    assert bad_box.exit_code == 2 and not (operator_env / "bad").exists()
    out = operator_env / "explained"
    done = _invoke("explain", ncct, "--use-case", "aaa-cta", "--method", "saliency",
                   "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "Confidence: 0.0% of the synthesized lumen is uncertain" in " ".join(
        done.output.split())
    record = json.loads((out / "explain.json").read_text())
    assert record["confidence"]["calibrated"] and not record["confidence"]["low_confidence"]
    assert record["explain"]["method"] == "saliency" and record["explain"]["target_voxels"] > 0
    assert sorted(p.name for p in (out / "maps").iterdir()) == ["attribution-saliency",
                                                                "uncertainty-tta"]
    for name in ("preview_axial.png", "attribution-saliency.nii.gz", "parametric_map.dcm"):
        assert (out / "maps" / "attribution-saliency" / name).is_file()
    assert not [p for p in out.iterdir() if p.name.startswith("2.25.")]  # no series written
    synthesized = operator_env / "synthesized"
    done = _invoke("synthesize", ncct, "--explain", "--method", "saliency", "--out",
                   str(synthesized))
    assert done.exit_code == 0, done.output
    result = json.loads((synthesized / "result.json").read_text())
    assert [m["slug"] for m in result["maps"]] == ["uncertainty-tta", "attribution-saliency"]
    first = pydicom.dcmread(sorted(Path(result["output_folder"]).iterdir())[0])
    assert "LOW CONFIDENCE" not in first.SeriesDescription


@pytest.mark.req("SRS-INF-009")
def test_refused_input_exits_2_with_codes_and_writes_nothing(operator_env: Path) -> None:
    case = generate_case(8, "small")
    write_phase_dicom(case, Phase.ARTERIAL, operator_env / "cta")
    out = operator_env / "out"
    refused = _invoke("synthesize", str(operator_env / "cta"), "--out", str(out))
    assert refused.exit_code == 2
    assert "CONF_CONTRAST_AGENT" in refused.output and "CONF_CONTRAST_IN_AORTA" in refused.output
    assert not out.exists()
    not_ct = _invoke("synthesize", str(operator_env / "nowhere"), "--out", str(out))
    assert not_ct.exit_code == 2 and "IMG_EMPTY" in not_ct.output


@pytest.mark.req("SRS-MOD-002", "SRS-MOD-003", "SRS-PKG-003")
def test_train_command_runs_a_tracked_training_and_writes_a_bundle(operator_env: Path) -> None:
    from digital_contrast.model.bundle import read_bundle

    done = _invoke("model", "train", "--use-case", "aaa-cta", "--config", "smoke",
                   "--model-version", "0.0.9")
    assert done.exit_code == 0, done.output
    (folder,) = (operator_env / "data" / "bundles" / "aaa-cta").iterdir()
    bundle = read_bundle(folder)
    assert bundle.manifest.model_version == "0.0.9"
    assert bundle.manifest.network.spacing_mm == AAA.preprocessing.working_spacing_mm
    assert bundle.manifest.provenance["training_run_id"] == folder.name
    assert len(bundle.manifest.provenance["data_manifest_sha256"]) == 64
    assert "not validated" in " ".join(done.output.split())


@pytest.mark.req("SRS-EXP-002")
def test_explain_evidence_of_another_bundle_is_refused_by_validate(
        operator_env: Path) -> None:
    bundle, _ = _bundle_with_record(operator_env / "a")
    other = tiny_bundle(operator_env / "b" / "bundle", AAA, seed=9)
    evidence = write_record(record_for(other, explain=explain_evidence()),
                            operator_env / "b" / "record.json")
    refused = _invoke("validate", "--protocol", "validation/protocols/aaa-cta.yaml",
                      "--bundle", str(bundle), "--explain-from", str(evidence))
    assert refused.exit_code == 2 and "MODEL_INTEGRITY" in refused.output
    assert "explain evidence is for another bundle" in " ".join(refused.output.split())
    broken = operator_env / "broken.json"
    broken.write_text("[]")
    refused = _invoke("validate", "--protocol", "validation/protocols/aaa-cta.yaml",
                      "--bundle", str(bundle), "--explain-from", str(broken))
    assert refused.exit_code == 2 and "EXPLAIN_FILE_INVALID" in refused.output
