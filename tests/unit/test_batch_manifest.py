"""The batch manifest (version 1): what it accepts, and each way it is refused before anything
is submitted, with a stable code and the line at fault."""

import json
from pathlib import Path

import pytest

from digital_contrast.batch_manifest import (
    ManifestCase,
    ManifestError,
    ManifestHeader,
    read_manifest,
    write_manifest,
)

HEADER = {"format": "digital-contrast/batch-manifest", "version": 1, "name": "cohort",
          "use_case": "aaa-cta", "created": "2026-12-06T00:00:00+00:00",
          "provenance": {"source": "test"}}
CASE = {"case_id": "c1", "series_instance_uid": "1.2.3.4", "instance_set_sha256": "a" * 64}


def _write(path: Path, *lines: object) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))
    return path


@pytest.mark.req("SRS-BATCH-001")
def test_a_written_manifest_reads_back_with_its_hash(tmp_path: Path) -> None:
    cases = [ManifestCase(**CASE), ManifestCase(case_id="c2", series_instance_uid="1.2.5",
                                                folder="patients/002")]
    path = tmp_path / "m.jsonl"
    assert write_manifest(path, ManifestHeader(**HEADER), cases) == 2
    manifest = read_manifest(path)
    assert manifest.cases == cases and manifest.header.use_case == "aaa-cta"
    assert manifest.root == tmp_path.resolve() and len(manifest.sha256) == 64
    path.write_text(path.read_text() + "\n")  # other bytes: another batch
    assert read_manifest(path).sha256 != manifest.sha256


@pytest.mark.req("SRS-BATCH-001")
@pytest.mark.parametrize(("lines", "code", "where"), [
    ([], "MANIFEST_EMPTY", ""),
    ([HEADER], "MANIFEST_EMPTY", ""),
    (["not json", CASE], "MANIFEST_INVALID", "line 1"),
    ([HEADER | {"version": 2}, CASE], "MANIFEST_VERSION_UNSUPPORTED", "version 2"),
    ([HEADER | {"format": "other"}, CASE], "MANIFEST_INVALID", "line 1"),
    ([HEADER | {"extra": 1}, CASE], "MANIFEST_INVALID", "line 1"),
    ([HEADER, CASE, "[1, 2"], "MANIFEST_INVALID", "line 3"),
    ([HEADER, CASE, CASE], "MANIFEST_DUPLICATE_CASE", "line 3"),
    ([HEADER, CASE | {"series_instance_uid": "1.2.x"}], "MANIFEST_INVALID", "line 2"),
    ([HEADER, CASE | {"case_id": "../etc"}], "MANIFEST_INVALID", "line 2"),
    ([HEADER, CASE | {"instance_set_sha256": "ABC"}], "MANIFEST_INVALID", "line 2"),
    ([HEADER, CASE | {"folder": "../outside"}], "MANIFEST_INVALID", "line 2"),
    ([HEADER, CASE | {"folder": "/abs/path"}], "MANIFEST_INVALID", "line 2"),
    ([HEADER, {"case_id": "c1", "series_instance_uid": "1.2"}], "MANIFEST_INVALID", "line 2"),
    ([HEADER, CASE | {"patient_name": "x"}], "MANIFEST_INVALID", "line 2"),
])
def test_bad_manifests_are_refused_naming_the_line(tmp_path: Path, lines: list, code: str,
                                                   where: str) -> None:
    with pytest.raises(ManifestError) as refused:
        read_manifest(_write(tmp_path / "m.jsonl", *lines))
    assert refused.value.code == code and where in refused.value.detail
    assert "x" not in refused.value.detail.split("line")[0]  # no value is quoted back


@pytest.mark.req("SRS-BATCH-001")
def test_an_unreadable_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\xff\xfe\x00 not utf-8")
    with pytest.raises(ManifestError) as refused:
        read_manifest(path)
    assert refused.value.code == "MANIFEST_UNREADABLE"
    with pytest.raises(ManifestError) as missing:
        read_manifest(tmp_path / "absent.jsonl")
    assert missing.value.code == "MANIFEST_UNREADABLE"
