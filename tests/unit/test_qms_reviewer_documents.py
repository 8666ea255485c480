"""Documents a reviewer can use: the traceability summary (statement per requirement, headings on
every printed page, rows never split), the architecture picture in the design record, and the
revision history of generated and hand-written documents."""

import base64
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.architecture import SYSTEM, dependency_diagram
from digital_contrast.qms.design import DIAGRAM, read_detailed_design, write_design
from digital_contrast.qms.diagram import dependency_svg
from digital_contrast.qms.documents import document_header, revision_history_md
from digital_contrast.qms.junit_report import TestCase, TestRun
from digital_contrast.qms.requirements import Records, load_records
from digital_contrast.qms.revisions import (
    NO_GIT,
    SHALLOW,
    check_process_docs,
    revision_history,
)
from digital_contrast.qms.trace import write_trace

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def records() -> Records:
    found, problems = load_records(REPO_ROOT / "qms")
    assert problems == []
    return found


def _no_pdf(html: Path) -> Path:
    """The PDF is laid out by the test itself where it matters (one layout per test)."""
    pdf = html.with_suffix(".pdf")
    pdf.write_bytes(b"%PDF-")
    return pdf


def _boxes(box) -> Iterator:  # weasyprint's layout boxes, depth first
    yield box
    for child in getattr(box, "children", []):
        yield from _boxes(child)


def _summary(html: str) -> str:
    return html[html.index('<table class="summary">'):html.index("</table>",
                                                               html.index('class="summary"'))]


# --- the traceability summary -----------------------------------------------------------------

@pytest.mark.req("SRS-QMS-030")
def test_the_summary_gives_each_requirement_its_statement_tests_result_and_controls(
        records: Records, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digital_contrast.qms.trace.write_pdf", _no_pdf)
    run = TestRun("junit.xml", "2026-12-07T00:00:00", {
        "t.py::test_a": TestCase("t.py::test_a", ("SRS-IMG-001",), "passed", 0.1),
        "t.py::test_b": TestCase("t.py::test_b", ("SRS-IMG-001",), "skipped", 0.1)})
    write_trace(tmp_path, records, run, {"SRS-IMG-001": ["RC-001"]})
    html = (tmp_path / "trace.html").read_text()
    summary = _summary(html)
    assert ("<thead><tr><th>requirement</th><th>statement</th><th>user needs</th>"
            "<th>software items</th><th>tests</th><th>result</th><th>risk controls</th></tr>"
            "</thead>") in summary
    req = records.requirements["SRS-IMG-001"]
    statement = " ".join(req.statement.split())
    row = summary[summary.index('<tr id="summary-SRS-IMG-001">'):]
    row = row[:row.index("</tr>")]
    assert f"<td>{statement}</td>" in row.replace("&#39;", "'").replace("&#34;", '"')
    assert f"<td>{', '.join(req.parents)}</td>" in row
    assert f"<td>{', '.join(req.software_items)}</td>" in row
    assert '<td class="count">2</td>' in row and "1 passed, 1 skipped" in row
    assert "verified" in row and "<td>RC-001</td>" in row
    assert summary.count('<tr id="summary-') == len(records.requirements)
    # The detailed view is kept, after the summary.
    assert html.index('class="summary"') < html.index('<table class="matrix">')
    assert "t.py::test_b" in html[html.index('<table class="matrix">'):]
    md = (tmp_path / "trace.md").read_text()
    assert "## Summary: one row per requirement" in md and "## Detail:" in md
    assert f"| **SRS-IMG-001** {req.title} | {statement} |" in md
    assert "| 2 | verified (1 passed, 1 skipped) | RC-001 |" in md


@pytest.mark.req("SRS-QMS-030")
def test_printed_summary_repeats_its_headings_on_every_page_and_never_splits_a_row(
        records: Records, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from weasyprint import HTML

    monkeypatch.setattr("digital_contrast.qms.trace.write_pdf", _no_pdf)
    write_trace(tmp_path, records, TestRun("junit.xml", None, {}), {})
    html = (tmp_path / "trace.html").read_text()
    assert re.search(r"table\.summary thead \{ display: table-header-group; \}", html)
    assert re.search(r"table\.summary tr \{ page-break-inside: avoid;", html)
    pages = HTML(filename=str(tmp_path / "trace.html")).render().pages
    rows_on: dict[str, list[int]] = {}
    summary_pages = set()
    headings = set()
    for number, page in enumerate(pages):
        for box in _boxes(page._page_box):
            element = getattr(box, "element", None)
            tag = getattr(box, "element_tag", None)
            if tag == "thead" and [th.text for th in element.iter("th")][:2] == \
                    ["requirement", "statement"]:
                headings.add(number)
            elif tag == "tr" and type(box).__name__ == "TableRowBox" and \
                    (element.get("id") or "").startswith("summary-"):
                rows_on.setdefault(element.get("id"), []).append(number)
                summary_pages.add(number)
    assert len(summary_pages) > 1  # the summary is several pages long
    assert summary_pages <= headings  # and each of them has the column headings
    assert len(rows_on) == len(records.requirements)
    assert {rid: on for rid, on in rows_on.items() if len(set(on)) > 1} == {}  # none split


# --- the architecture picture in the design record ----------------------------------------------

def _svg_graph(svg: str) -> tuple[set[str], set[tuple[str, str]]]:
    root = ET.fromstring(svg)
    nodes = {g.get("id") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    edges = {(g.get("data-from"), g.get("data-to")) for g in root.iter(f"{SVG}g")
             if g.get("class") == "edge"}
    return nodes, edges


@pytest.mark.req("SRS-QMS-031")
def test_the_design_record_embeds_a_picture_with_every_item_and_may_use_edge(
        records: Records, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digital_contrast.qms.design.write_pdf", _no_pdf)
    paths = write_design(tmp_path, read_detailed_design(records))
    assert tmp_path / DIAGRAM in paths
    svg = (tmp_path / DIAGRAM).read_text()
    nodes, edges = _svg_graph(svg)
    assert nodes == set(records.items)
    expected = {(item.id, used) for item in records.items.values() for used in item.may_use
                if used != SYSTEM}
    assert edges == expected and len(expected) > 40
    # The same edges as the Mermaid diagram of docs/architecture.md.
    mermaid = set(re.findall(r"^\s+(SI_\w+) --> (SI_\w+)$", dependency_diagram(records), re.M))
    assert {(a.replace("_", "-"), b.replace("_", "-")) for a, b in mermaid} == edges
    html = (tmp_path / "design.html").read_text()
    uri = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert uri and base64.b64decode(uri.group(1)).decode() == svg  # stands alone in HTML, PDF
    assert f"]({DIAGRAM})" in (tmp_path / "design.md").read_text()


@pytest.mark.req("SRS-QMS-031")
def test_the_layout_puts_users_above_what_they_use_and_still_draws_a_circle() -> None:
    def item(item_id: str, *uses: str) -> SimpleNamespace:
        return SimpleNamespace(id=item_id, package=f"digital_contrast.{item_id.lower()}",
                               may_use=[SYSTEM, *uses])

    items = [SimpleNamespace(id=SYSTEM, package="digital_contrast", may_use=["SI-A"]),
             item("SI-A", "SI-B", "SI-C"), item("SI-B", "SI-C"), item("SI-C"),
             item("SI-D", "SI-E", "SI-NOPE"), item("SI-E", "SI-D")]
    svg = dependency_svg(items)
    nodes, edges = _svg_graph(svg)
    assert nodes == {SYSTEM, "SI-A", "SI-B", "SI-C", "SI-D", "SI-E"}
    assert edges == {(SYSTEM, "SI-A"), ("SI-A", "SI-B"), ("SI-A", "SI-C"), ("SI-B", "SI-C"),
                     ("SI-D", "SI-E"), ("SI-E", "SI-D")}  # the unknown item is left out
    root = ET.fromstring(svg)
    top = {g.get("id"): float(g.find(f"{SVG}rect").get("y")) for g in root.iter(f"{SVG}g")
           if g.get("class") == "node"}
    assert top[SYSTEM] < top["SI-A"] < top["SI-B"] < top["SI-C"]
    # SI-A -> SI-C spans a layer: it bends beside SI-B instead of crossing it.
    line = next(g for g in root.iter(f"{SVG}g") if g.get("data-from") == "SI-A"
                and g.get("data-to") == "SI-C").find(f"{SVG}polyline").get("points")
    box = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "SI-B").find(f"{SVG}rect")
    left, right = float(box.get("x")), float(box.get("x")) + float(box.get("width"))
    xs = [float(p.split(",")[0]) for p in line.split()]
    assert len(xs) == 4 and not any(left <= x <= right for x in xs[1:3])
    assert dependency_svg(items) == svg  # deterministic


# --- revision histories ------------------------------------------------------------------------

def _git(repo: Path, *args: str, date: str = "2026-01-01T12:00:00+00:00") -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=Test", "-c",
                    "user.email=test@example.org", "-c", "commit.gpgsign=false", *args],
                   check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with three commits on qms/a.yaml (one of them a second file)."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "qms").mkdir()
    for day, (name, text, subject) in enumerate([
            ("a.yaml", "a: 1\n", "First issue of a"), ("b.yaml", "b: 1\n", "Add b"),
            ("a.yaml", "a: 2\n", "Restate a | with a pipe")], start=1):
        (tmp_path / "qms" / name).write_text(text)
        _git(tmp_path, "add", ".")
        _git(tmp_path, "commit", "-q", "-m", subject, date=f"2026-03-0{day}T12:00:00+00:00")
    return tmp_path


@pytest.mark.req("SRS-QMS-032")
def test_the_history_is_the_sources_commits_newest_first(repo: Path) -> None:
    history = revision_history(["qms/a.yaml"], repo)
    assert history.unavailable is None and history.uncommitted == []
    assert [(r.version.split(" ")[0], r.date, r.summary) for r in history.revisions] == [
        ("r2", "2026-03-03", "Restate a | with a pipe"), ("r1", "2026-03-01", "First issue of a")]
    assert re.fullmatch(r"r2 \([0-9a-f]{7}\)", history.revisions[0].version)
    folder = revision_history(["qms"], repo, shown=2)
    assert [r.summary for r in folder.revisions] == ["Restate a | with a pipe", "Add b"]
    assert folder.earlier == 1 and folder.command == "git log --no-merges -- qms"
    assert revision_history(["qms"], repo, shown=2) == folder  # one checkout, one history
    assert folder.truncated is None
    (repo / "qms" / "b.yaml").write_text("b: 2\n")
    assert revision_history(["qms"], repo).uncommitted == ["qms/b.yaml"]


@pytest.mark.req("SRS-QMS-032")
def test_a_shallow_clone_says_its_history_is_truncated(
        repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    clone = tmp_path_factory.mktemp("shallow") / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    history = revision_history(["qms"], clone)
    assert [r.summary for r in history.revisions] == ["Restate a | with a pipe"]
    assert history.truncated == SHALLOW
    header = document_header("DC-X", "X", source="qms/", approvals=("Quality",),
                             records=("qms",), repo=clone)
    assert f"{SHALLOW}." in revision_history_md(header)


@pytest.mark.req("SRS-QMS-032")
def test_without_git_metadata_the_document_says_so(repo: Path,
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    plain = tmp_path_factory.mktemp("export")  # a copy of the files without .git
    assert revision_history(["qms"], plain / "nowhere").unavailable == NO_GIT
    header = document_header("DC-X", "X", source="qms/", approvals=("Quality",),
                             records=("qms",), repo=plain)
    assert header["revisions"]["unavailable"] == NO_GIT
    assert f"{NO_GIT}." in revision_history_md(header)
    header = document_header("DC-X", "X", source="qms/", approvals=("Quality",),
                             records=("qms",), repo=repo)
    md = revision_history_md(header)
    assert "| version | date | summary of change |" in md
    assert re.search(r"^\| r3 \([0-9a-f]{7}\) \| 2026-03-03 \| Restate a \\\| with a pipe \|$",
                     md, re.M)


@pytest.mark.req("SRS-QMS-032")
def test_generated_documents_carry_the_history_of_their_records(
        records: Records, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digital_contrast.qms.trace.write_pdf", _no_pdf)
    write_trace(tmp_path, records, TestRun("junit.xml", None, {}), {})
    html, md = (tmp_path / "trace.html").read_text(), (tmp_path / "trace.md").read_text()
    expected = revision_history(["qms", "risk"])
    for text in (html, md):
        assert "Revision history" in text and "git log --no-merges -- qms risk" in text
        if expected.unavailable:  # an export without .git
            assert NO_GIT in text
        else:
            assert expected.revisions[0].version in text
    assert '<thead><tr><th>version</th><th>date</th><th>summary of change</th></tr></thead>' \
        in html or NO_GIT in html


# --- the revision-history rule for docs/qms --------------------------------------------------

@pytest.mark.req("SRS-QMS-033")
def test_a_process_document_without_revision_history_is_reported(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "qms"
    docs.mkdir(parents=True)
    (docs / "kept.md").write_text("# DC-K\n\n## Revision history\n\n| version | date | change |\n"
                                  "| --- | --- | --- |\n| 1.0 | 2026-12-07 | First issue. |\n\n"
                                  "## 1. Scope\n")
    (docs / "missing.md").write_text("# DC-M\n\n## 1. Scope\n")
    (docs / "empty.md").write_text("# DC-E\n\n## Approvals\n\n## Revision history\n\n"
                                   "| version | date | change |\n| --- | --- | --- |\n\n"
                                   "## 1. Scope\n\n| 1.0 | 2026-12-07 | not in the section |\n")
    problems = check_process_docs(tmp_path)
    assert [(p.file, p.line, p.message) for p in problems] == [
        ("docs/qms/empty.md", 5, 'its "Revision history" section has no entry (a row | version '
                                 "| YYYY-MM-DD | change |)"),
        ("docs/qms/missing.md", None, 'has no "Revision history" section (a table | version | '
                                      "date | change |)")]


@pytest.mark.req("SRS-QMS-033")
def test_the_repository_process_documents_keep_their_revision_history() -> None:
    assert check_process_docs() == []
    assert len(list((REPO_ROOT / "docs" / "qms").glob("*.md"))) >= 3
