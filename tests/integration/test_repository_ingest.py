"""`repository ingest`: a phantom CT series de-identified at the site through the command line
(its own process, as a site runs it), valid for dciodvfy, idempotent, keyed per site, with a
refused series written nowhere and nothing identifying in its output or log."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from typer.testing import CliRunner

from digital_contrast.batch_manifest import folder_instance_set
from digital_contrast.cli import app
from digital_contrast.keys.folder import keys_folder
from tests.support.dciodvfy import dciodvfy_errors
from tests.support.ingest_source import UNREADABLE_DATE, ingest_source


@pytest.fixture
def source(tmp_path: Path, phantom_series: dict) -> Path:
    """The phantom NCCT series, a second series with burned-in text on one instance, and a
    file that is not DICOM."""
    return ingest_source(phantom_series, tmp_path / "source", phases=("ncct",))


pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DA")


def _command(*args: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digital_contrast", "repository", *args],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "DC_DATA_DIR": str(data)})


def _ingest(source: Path, out: Path, site: str = "site-a") -> subprocess.CompletedProcess:
    return _command("ingest", str(source), "--site", site, "--out", str(out),
                    data=out.parent / "data")


@pytest.mark.req("SRS-REPO-005", "SRS-REPO-001", "SRS-REPO-002", "SRS-REPO-003",
                 "SRS-REPO-006", "SRS-REPO-007")
def test_ingest_deidentifies_a_series_and_refuses_one(source: Path, tmp_path: Path) -> None:
    originals = {dcmread(p).SOPInstanceUID: dcmread(p) for p in (source / "ncct").glob("*.dcm")}
    identifying = {str(next(iter(originals.values())).PatientID),
                   str(next(iter(originals.values())).StudyInstanceUID),
                   str(next(iter(originals.values())).PatientName)}
    out = tmp_path / "repository"
    result = _ingest(source, out)
    assert result.returncode == 0, result.stderr
    assert f"{len(originals)} instances of 1 series" in result.stdout
    assert "refused 1 series: DEID_BURNED_IN" in result.stdout
    assert "skipped 1 files" in result.stdout
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == len(originals)  # nothing of the refused series
    assert not list(out.rglob("*.part"))
    key_file = keys_folder().file("secrets", "deid-site-site-a.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    first = dcmread(written[0])
    assert first.PatientIdentityRemoved == "YES"
    assert {dcmread(p).StudyInstanceUID for p in written} == {first.StudyInstanceUID}
    assert first.StudyInstanceUID not in identifying
    assert first.PatientID == written[0].parent.parent.parent.name
    source_pixels = {o.pixel_array.tobytes() for o in originals.values()}
    assert all(dcmread(p).pixel_array.tobytes() in source_pixels for p in written[:5])
    for path in (written[0], written[len(written) // 2]):
        assert dciodvfy_errors(path) == [], path
    # the unreadable date is removed, the others shifted
    assert sum("AcquisitionDate" not in dcmread(p) for p in written) == 1
    for value in (*identifying, UNREADABLE_DATE):
        assert value not in result.stdout + result.stderr

    # the same study sent again: the same files, not duplicates
    before = {p.relative_to(out): p.read_bytes() for p in written}
    again = _ingest(source, out)
    assert again.returncode == 0, again.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.dcm")} == before

    # one index row for the series, labelled at the site from its source headers
    found = _command("search", "--json", data=tmp_path / "data")
    assert found.returncode == 0, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and "1 series match" in found.stdout
    row = rows[0]
    assert row["series_uid"] == first.SeriesInstanceUID == written[0].parent.name
    assert (row["phase"], row["region"], row["instances"], row["quality"], row["site"]) == (
        "native", "abdomen", len(originals), "complete", "site-a")
    assert row["kvp"] == float(next(iter(originals.values())).KVP)
    # the series is named as a batch manifest names it
    assert (row["series_uid"], row["instance_set_sha256"]) == folder_instance_set(
        written[0].parent)

    # another site's key: unlinkable pseudonyms
    other = tmp_path / "other"
    assert _ingest(source, other, site="site-b").returncode == 0
    theirs = dcmread(next(other.rglob("*.dcm")))
    assert theirs.StudyInstanceUID != first.StudyInstanceUID
    assert theirs.PatientID != first.PatientID


@pytest.mark.req("SRS-REPO-005", "SRS-REPO-002")
def test_an_unusable_site_id_writes_nothing(source: Path, tmp_path: Path) -> None:
    result = _ingest(source, tmp_path / "out", site="../x")
    assert result.returncode == 2
    assert "DEID_SITE_INVALID" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.req("SRS-REPO-002")
def test_rotating_the_site_key_breaks_linkage_only_when_confirmed(
        source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert _ingest(source, tmp_path / "before").returncode == 0
    refused = runner.invoke(app, ["repository", "rotate-key", "--site", "site-a"])
    assert refused.exit_code == 1 and "nothing rotated" in refused.output
    rotated = runner.invoke(app, ["repository", "rotate-key", "--site", "site-a",
                                  "--break-linkage"])
    assert rotated.exit_code == 0, rotated.output
    assert keys_folder().retired_secrets("deid-site-site-a")
    assert _ingest(source, tmp_path / "after").returncode == 0
    before = dcmread(next((tmp_path / "before").rglob("*.dcm")))
    after = dcmread(next((tmp_path / "after").rglob("*.dcm")))
    assert before.PatientID != after.PatientID
    assert before.StudyInstanceUID != after.StudyInstanceUID
