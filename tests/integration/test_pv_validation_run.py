"""An abdomen-pv protocol run through the clinical DICOM path with a tiny untrained
first-stage-only bundle: the extension's cases are written and read as DICOM, scored with the
organ, vein and lesion metrics beside the oracle, and the report states the exclusion."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from digital_contrast.inference.locked_model import LockedModel
from digital_contrast.usecases import load_use_case
from digital_contrast.validation import load_protocol, run_validation
from tests.support.git import commit_file
from tests.support.models import tiny_bundle
from tests.support.signing import site_signer

PV = load_use_case("abdomen-pv")


@pytest.mark.req("SRS-VAL-013", "SRS-VAL-014", "SRS-VAL-015")
def test_an_abdomen_pv_protocol_runs_one_case_with_its_floor(tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "bundle", PV, second_stage=False)
    model = LockedModel.under_validation(bundle, PV)
    protocol = tmp_path / "pv-run.yaml"
    protocol.write_text(yaml.safe_dump({
        "id": "pv-run", "version": 1, "use_case": "abdomen-pv",
        "evidence": "procedural digital phantom only; not clinically validated",
        "dataset": {"generator": "digital_contrast.phantom", "size": "small",
                    "extension": "abdomen-pv", "seeds": {"start": 49003, "count": 1}},
        "reference": "the NCCT plus the case's noiseless portal-venous enhancement",
        "primary_stratum": "normal liver",
        "acceptance": [
            {"metric": "liver_enhancement_error_hu", "op": "<=", "threshold": 10,
             "stratum": "lesions"},
            {"metric": "portal_vein_breaks", "op": "<=", "threshold": 0, "stratum": "lesions",
             "statistic": "worst"},
            {"metric": "lesions_lost_unflagged", "op": "<=", "threshold": 0,
             "stratum": "lesions", "statistic": "worst"}],
        "revisions": [{"version": 1, "change": "first"}]}, sort_keys=False))
    commit_file(protocol)
    run = run_validation(load_protocol(protocol), model, tmp_path / "out", site_signer())
    (case,) = run.cases
    assert case.completed, case.failure_detail
    assert case.case_id == "PV049003" and case.stratum == "lesions"
    for name in ("liver_enhancement_error_hu", "enhancing_organ_dice", "portal_vein_breaks",
                 "hepatic_vein_breaks", "portal_vein_gain_error_fraction", "lesions_lost",
                 "lesions_lost_unflagged", "unchanged_beyond_2mm_p99_abs_hu"):
        assert name in case.metrics and name in case.floor_metrics, name
    # An uncalibrated bundle labels every result LOW CONFIDENCE: a lost lesion is then
    # flagged, never unflagged; the oracle, which never labels, is judged on its own losses.
    assert case.low_confidence and case.metrics["lesions_lost_unflagged"] == 0
    assert case.floor_metrics["lesions_lost_unflagged"] == case.floor_metrics["lesions_lost"]
    run_json = json.loads((run.folder / "run.json").read_text())
    assert all(c["passed"] for c in run_json["floor"]), run_json["floor"]
    rows = list(csv.DictReader((run.folder / "cases.csv").open()))
    assert rows[0]["stratum"] == "lesions"
    html = (run.folder / "report.html").read_text()
    assert "lesion detection and characterisation" in html
    assert "one or more liver lesions" in html  # the abdomen-pv strata are listed
