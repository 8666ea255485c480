"""SOUP list: closure from installed metadata, assessments checked both ways, SBOM, audit."""

import csv
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
import yaml
from packageurl import PackageURL
from packaging.requirements import Requirement

import digital_contrast
from digital_contrast.qms.requirements import load_requirements
from digital_contrast.qms.soup import (
    Dist,
    audit_vulnerabilities,
    check_soup,
    load_soup,
    runtime_closure,
    soup_rows,
    write_sbom,
    write_soup_list,
)
from digital_contrast.qms.soup import audit as audit_module
from digital_contrast.qms.soup.assessments import SOUP_FILE
from digital_contrast.qms.soup.audit import parse_audit
from digital_contrast.qms.soup.check import same_release
from digital_contrast.qms.soup.closure import closure_of
from digital_contrast.qms.soup.reviews import REVIEWS_DIR, load_reviews
from digital_contrast.qms.soup.vendored import Vendored, vendored_components
from tests.support.documents import assert_controlled_document

# The day the platform components were measured and reviewed (their records are dated so).
TODAY = date(2026, 12, 7)


@pytest.fixture(scope="module")
def closure() -> dict[str, Dist]:
    return runtime_closure()


@pytest.fixture(scope="module")
def known_items() -> set[str]:
    return set(load_requirements().software_items)


def _entries() -> list[dict]:
    return yaml.safe_load(SOUP_FILE.read_text(encoding="utf-8"))["direct"]


def _platform_entries() -> list[dict]:
    return yaml.safe_load(SOUP_FILE.read_text(encoding="utf-8"))["platform"]


def _write(tmp_path: Path, entries: list[dict], platform: list[dict] | None = None) -> Path:
    """A soup.yaml with these direct entries and the shipped platform section (or `platform`)."""
    path = tmp_path / "soup.yaml"
    data = {"direct": entries, "platform": _platform_entries() if platform is None else platform}
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=200), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _check(path: Path, closure: dict[str, Dist], known_items: set[str], **kwargs) -> list:
    soup, problems = load_soup(path)
    assert soup is not None and not problems, problems
    return check_soup(soup, closure, known_items, today=TODAY, **kwargs)


@pytest.mark.req("SRS-SOUP-002", "SRS-SOUP-003", "SRS-SOUP-004")
def test_shipped_soup_list_matches_the_installed_environment(closure, known_items) -> None:
    soup, problems = load_soup()
    assert soup is not None and problems == []
    assert check_soup(soup, closure, known_items, today=TODAY) == []
    assessed = {name for name in soup.by_name()}
    assert assessed == {name for name, dist in closure.items() if dist.direct} | {
        "chart-js", "swagger-ui-dist", "redoc"}


@pytest.mark.req("SRS-SOUP-001")
def test_closure_follows_installed_metadata(closure) -> None:
    assert closure["fastapi"].direct and closure["torch"].direct
    assert not closure["starlette"].direct and "fastapi" in closure["starlette"].required_by
    assert "starlette" in closure["fastapi"].requires
    # psycopg[binary]: the requested extra is followed
    assert closure["psycopg-binary"].required_by == {"psycopg"}
    for tool in ("pytest", "schemathesis", "playwright", "hypothesis", "httpx",
                 "pip-audit", "cyclonedx-python-lib"):
        assert tool not in closure
    assert all(d.version and d.licence for d in closure.values())
    assert closure["alembic"].licence == "MIT"  # License-Expression
    # a requirement whose marker is false in this environment pulls nothing in
    assert closure_of([Requirement('numpy; python_version < "3"')]) == {}


@pytest.mark.req("SRS-SOUP-004")
def test_version_differing_from_installed_is_reported_at_its_line(tmp_path, closure,
                                                                  known_items) -> None:
    entries = _entries()
    numpy = next(e for e in entries if e["name"] == "numpy")
    numpy["version"] = "1.26.4"
    path = _write(tmp_path, entries)
    problems = _check(path, closure, known_items)
    assert len(problems) == 1
    assert problems[0].line == _line_of(path, "version: 1.26.4")
    assert problems[0].file.endswith("soup.yaml")
    assert "1.26.4" in problems[0].message and closure["numpy"].version in problems[0].message


@pytest.mark.req("SRS-SOUP-004")
def test_a_local_build_label_alone_is_not_a_version_difference() -> None:
    assert same_release("2.13.0", "2.13.0+cpu")
    assert same_release("2.13.0+cpu", "2.13.0+cpu")
    assert not same_release("2.13.0+cu126", "2.13.0+cpu")
    assert not same_release("2.13.0", "2.13.1+cpu")
    assert not same_release("3.0.2", "3.0.20")


@pytest.mark.req("SRS-SOUP-003")
def test_missing_extra_and_duplicate_assessments_are_reported(tmp_path, closure,
                                                              known_items) -> None:
    entries = [e for e in _entries() if e["name"] != "scipy"]
    fastapi = next(e for e in entries if e["name"] == "fastapi")
    entries.append({**fastapi, "name": "starlette", "version": closure["starlette"].version})
    entries.append({**fastapi, "name": "left-pad", "version": "1.0"})
    entries.append({**fastapi, "name": "FastAPI"})  # canonically the same name
    path = _write(tmp_path, entries)
    soup, problems = load_soup(path)
    assert [(p.line, p.message) for p in problems] == [
        (_line_of(path, "name: FastAPI"), "duplicate SOUP entry FastAPI")]
    problems = check_soup(soup, closure, known_items, today=TODAY)
    by_message = {p.message: p.line for p in problems}
    missing = [m for m in by_message if m.startswith("scipy ")]
    assert missing and "without a SOUP assessment" in missing[0]
    assert by_message[missing[0]] is not None
    starlette = next(m for m in by_message if "starlette" in m)
    assert "transitive" in starlette and "fastapi" in starlette
    assert by_message[starlette] == _line_of(path, "name: starlette")
    left_pad = next(m for m in by_message if "left-pad" in m)
    assert "not a runtime dependency" in left_pad
    assert by_message[left_pad] == _line_of(path, "name: left-pad")


@pytest.mark.req("SRS-SOUP-002")
def test_wrong_missing_and_unknown_fields_are_reported_with_their_line(tmp_path) -> None:
    path = tmp_path / "soup.yaml"
    text = SOUP_FILE.read_text(encoding="utf-8")
    text = text.replace('version: "1.17.1"', "version: 1.17", 1)  # a float, not a string
    text = text.replace("    supplier: Pallets\n", "    vendor: Pallets\n", 1)
    path.write_text(text, encoding="utf-8")
    soup, problems = load_soup(path)
    assert soup is not None
    found = {(p.line, p.message.split(":")[0]) for p in problems}
    assert (_line_of(path, "version: 1.17"), "version") in found
    assert (_line_of(path, "vendor: Pallets"), "vendor") in found
    jinja_line = _line_of(path, "name: Jinja2")
    assert (jinja_line, "supplier") in found
    assert all(p.file.endswith("soup.yaml") for p in problems)
    assert len(problems) == 3


@pytest.mark.req("SRS-SOUP-002", "SRS-SOUP-011")
def test_a_review_record_must_say_what_it_did_not_consult(tmp_path) -> None:
    reviews = tmp_path / "reviews"
    shutil.copytree(REVIEWS_DIR, reviews)
    rich = yaml.safe_load((reviews / "rich.yaml").read_text())
    rich["sources_not_consulted"] = []  # "incomplete", yet nothing left out: not honest
    (reviews / "rich.yaml").write_text(yaml.safe_dump(rich, sort_keys=False))
    numpy = yaml.safe_load((reviews / "numpy.yaml").read_text())
    numpy["result"] = "complete"  # complete while sources were not consulted
    (reviews / "numpy.yaml").write_text(yaml.safe_dump(numpy, sort_keys=False))
    records, problems = load_reviews(reviews)
    assert sorted((Path(p.file).name, p.message.split(",")[0]) for p in problems) == [
        ("numpy.yaml", "Value error"), ("rich.yaml", "Value error")]
    assert "incomplete review names the sources" in next(
        p.message for p in problems if p.file.endswith("rich.yaml"))
    assert "sources not consulted is incomplete" in next(
        p.message for p in problems if p.file.endswith("numpy.yaml"))
    assert "rich" not in records and "numpy" not in records


@pytest.mark.req("SRS-SOUP-003")
def test_stale_review_and_unknown_software_item_are_reported(tmp_path, closure,
                                                             known_items) -> None:
    entries = _entries()
    rich = next(e for e in entries if e["name"] == "rich")
    rich["software_items"] = ["SI-SYSTEM", "SI-NOWHERE"]
    path = _write(tmp_path, entries)
    reviews = tmp_path / "reviews"
    shutil.copytree(REVIEWS_DIR, reviews)
    record = reviews / "rich.yaml"
    record.write_text(record.read_text().replace("date: 2026-11-29", "date: 2025-11-02"))
    problems = {(Path(p.file).name, p.line): p.message
                for p in _check(path, closure, known_items, reviews_dir=reviews)}
    assert problems[("rich.yaml", _line_of(record, "date: 2025-11-02"))] == (
        "rich: anomaly review of 2025-11-02 is 400 days old (at most 365)")
    assert problems[("soup.yaml", _line_of(path, "- SI-NOWHERE"))] == \
        "unknown software item SI-NOWHERE"
    assert len(problems) == 2


@pytest.mark.req("SRS-SOUP-004")
def test_vendored_library_version_and_file_hash_are_checked(tmp_path, closure,
                                                            known_items) -> None:
    vendored_file = tmp_path / "chart.umd.min.js"
    vendored_file.write_text("/* not the file the README describes */")
    vendored = vendored_components() | {  # the others as shipped: only Chart.js is off
        "chart.js": Vendored("chart.js", "4.7.0", vendored_file, "0" * 64, "MIT")}
    path = _write(tmp_path, _entries())
    found = _check(path, closure, known_items, vendored=vendored)
    problems = [p for p in found if p.file.endswith("soup.yaml")]
    version_line = _line_of(path, "version: 4.6.1")
    assert [p.line for p in problems] == [version_line, version_line]
    assert "4.6.1" in problems[0].message and "4.7.0" in problems[0].message
    assert "SHA-256" in problems[1].message
    # The anomaly review covers 4.6.1, not the 4.7.0 shipped (SRS-SOUP-011).
    assert [p.message for p in found if p not in problems] == [
        "chart.js: the anomaly review is for version 4.6.1, but 4.7.0 is in use"]


@pytest.mark.req("SRS-SOUP-005")
def test_sbom_is_cyclonedx_with_every_closure_member_and_the_graph(tmp_path, closure) -> None:
    import jsonschema_rs
    from cyclonedx.schema import _res

    bom = json.loads(write_sbom(tmp_path / "bom.json", closure).read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["name"] == "digital-contrast"
    assert bom["metadata"]["component"]["version"] == digital_contrast.__version__
    purls = {c["purl"]: c for c in bom["components"]}
    for dist in closure.values():
        purl = PackageURL("pypi", None, dist.name, dist.version).to_string()
        assert purl in purls and purls[purl]["licenses"], dist.name
    assert "pkg:npm/chart.js@4.6.1" in purls
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    fastapi, starlette = (purls[f"pkg:pypi/{n}@{closure[n].version}"]["bom-ref"]
                          for n in ("fastapi", "starlette"))
    assert fastapi in graph["digital-contrast"] and starlette not in graph["digital-contrast"]
    assert starlette in graph[fastapi]
    # The official schema (shipped with the library): no network needed.
    schemas = Path(_res.__file__).parent
    validator = jsonschema_rs.validator_for(
        json.loads((schemas / "bom-1.6.SNAPSHOT.schema.json").read_text()),
        retriever=lambda uri: json.loads((schemas / uri.rsplit("/", 1)[-1]).read_text()))
    assert validator.is_valid(bom), [str(e) for e in validator.iter_errors(bom)][:3]


@pytest.mark.req("SRS-SOUP-006")
def test_audit_records_unavailable_when_the_service_cannot_be_reached(closure,
                                                                      monkeypatch) -> None:
    small = {name: closure[name] for name in ("fastapi", "torch")}
    # This machine's own network first: it reaches the package index only, so the lookups
    # fail or come back empty; either way the record must not claim a clean result.
    record = audit_vulnerabilities(small, timeout_s=5)
    assert record["tool"].startswith("pip-audit ") and record["checked_at"]
    assert record["status"] in {"completed", "incomplete", "unavailable"}
    if record["status"] == "unavailable":
        assert record["reason"] and "vulnerabilities" not in record
    # Then a service that is unreachable for certain (a refused proxy), wherever this runs.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    record = audit_vulnerabilities(small, timeout_s=5)
    assert record["status"] == "unavailable"
    assert "vulnerabilities" not in record and record["reason"].startswith("pip-audit failed")
    assert any(line.startswith("chart.js 4.6.1") for line in record["not_audited"])
    assert any(line.startswith("cpython ") and "platform (interpreter)" in line
               for line in record["not_audited"])


@pytest.mark.req("SRS-SOUP-006")
def test_audit_parses_a_completed_run(closure, monkeypatch) -> None:
    canned = {"dependencies": [
        {"name": "fastapi", "version": "0.165.0", "vulns": []},
        {"name": "jinja2", "version": "3.1.6", "vulns": [
            {"id": "GHSA-xxxx-yyyy-zzzz", "fix_versions": ["3.1.7"], "aliases": ["CVE-2099-1"],
             "description": "example"}]}], "fixes": []}
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        requirements = Path(command[command.index("-r") + 1]).read_text().split()
        assert "torch==2.13.0" in requirements  # the public release, not the +cpu build
        return subprocess.CompletedProcess(command, 1, json.dumps(canned), "")

    monkeypatch.setattr(audit_module.subprocess, "run", fake_run)
    small = {name: closure[name] for name in ("fastapi", "jinja2", "torch")}
    # No platform measurement: its dpkg-query would meet the fake subprocess.run.
    record = audit_vulnerabilities(small, platform={})
    assert "--no-deps" in calls[0] and "--disable-pip" in calls[0]
    assert record["status"] == "completed" and record["audited"] == 2
    assert record["vulnerabilities"] == [{
        "name": "jinja2", "version": "3.1.6", "id": "GHSA-xxxx-yyyy-zzzz",
        "aliases": ["CVE-2099-1"], "fix_versions": ["3.1.7"], "description": "example"}]


@pytest.mark.req("SRS-SOUP-006")
def test_audit_skips_are_never_a_clean_result() -> None:
    skipped = {"name": "torch", "skip_reason": "Dependency not found on PyPI"}
    some = parse_audit(json.dumps({"dependencies": [
        {"name": "fastapi", "version": "0.165.0", "vulns": []}, skipped]}), "", 2)
    assert some["status"] == "incomplete" and some["skipped"] == [
        "torch: Dependency not found on PyPI"]
    # What this sandbox's registry-only network produces: every lookup skipped, exit status 0.
    none = parse_audit(json.dumps({"dependencies": [skipped], "fixes": []}), "", 1)
    assert none["status"] == "unavailable" and "vulnerabilities" not in none
    assert "none of the 1" in none["reason"]
    broken = parse_audit("", "Traceback ...\nConnectionError: no route\n", 1)
    assert broken == {"status": "unavailable",
                      "reason": "pip-audit failed: ConnectionError: no route"}


@pytest.mark.req("SRS-SOUP-007")
def test_rendered_list_has_title_block_and_every_item(tmp_path, closure) -> None:
    soup, _ = load_soup()
    paths = write_soup_list(tmp_path, soup, closure, today=TODAY)
    assert [p.name for p in paths] == ["soup_list.md", "soup_list.html", "soup_list.pdf",
                                       "soup_list.csv"]
    assert_controlled_document(paths[1], "DC-SOUP", TODAY.isoformat(),
                               ("Author", "Reviewer", "Approver (regulatory)"))
    markdown, html = (p.read_text(encoding="utf-8") for p in paths[:2])
    for text in (markdown, html):
        assert "DC-SOUP" in text and "2026-11-29" in text and "Approvals" in text
        assert f"{digital_contrast.PRODUCT_NAME} {digital_contrast.__version__}" in text
        for _, item in soup.items:
            assert f"{item.name} {item.version}" in text
        assert "starlette" in text and "Open findings" not in text
        assert "pytest" in text.split("Test and technical-file tools")[-1]
    # self-contained: nothing fetched by the browser
    for marker in ("<script", "<link", "src=", "@import", "url("):
        assert marker not in html
    rows = list(csv.DictReader(paths[3].open(encoding="utf-8")))
    sections = {row["name"]: row["section"] for row in rows}
    assert sections["torch"] == "direct" and sections["starlette"] == "transitive"
    assert sections["pytest"] == "test-tool"
    assert len([r for r in soup_rows(soup, closure) if r["section"] == "transitive"]) == len(
        [d for d in closure.values() if not d.direct])
