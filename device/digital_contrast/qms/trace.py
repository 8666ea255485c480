"""`digital-contrast qms trace`: the traceability matrix, user need -> requirement -> software
item -> test -> result -> risk control, as HTML, PDF and Markdown for people, CSV for
spreadsheets and `trace.json` for tools. Built from the records and the latest junit report only.

The document has two views: a summary a reviewer reads (one row per requirement with its
statement, user needs, items, how many tests and their result, risk controls; a row is never
split across printed pages and the column headings repeat on each) and the detailed view that
names every test and its outcome."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.junit_report import PASSED, TestRun
from digital_contrast.qms.requirements import Records

DOCUMENT_ID, TITLE = "DC-TRACE", "Traceability matrix"


def trace_rows(records: Records, run: TestRun, controls: dict[str, list[str]]
               ) -> list[dict[str, Any]]:
    """One row per requirement; `controls` maps a requirement id to the risk controls it
    implements."""
    tests = run.requirement_tests()
    rows = []
    for req in records.requirements.values():
        cases = [run.cases[node] for node in sorted(tests.get(req.id, []))]
        outcomes = Counter(c.outcome for c in cases)
        rows.append({
            "id": req.id, "title": req.title, "statement": " ".join(req.statement.split()),
            "user_needs": list(req.parents),
            "derived": req.derived, "software_items": list(req.software_items),
            "risk_control": req.risk_control, "verification": req.verification.value,
            "tests": [{"node_id": c.node_id, "outcome": c.outcome} for c in cases],
            "outcomes": dict(sorted(outcomes.items())),
            "verified": bool(cases) and all(c.outcome != "failed" for c in cases)
            and any(c.outcome == PASSED for c in cases),
            "risk_controls": sorted(controls.get(req.id, []))})
    return rows


def write_trace(out_dir: Path, records: Records, run: TestRun,
                controls: dict[str, list[str]]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = trace_rows(records, run, controls)
    document = document_header(DOCUMENT_ID, TITLE, source=f"qms/, risk/, {Path(run.source).name}",
                               approvals=("Regulatory affairs", "Quality", "Development lead"),
                               records=("qms", "risk"))
    summary = {"requirements": len(rows), "verified": sum(r["verified"] for r in rows),
               "tests": len(run.cases), "run_timestamp": run.timestamp or "unknown",
               "risk_controls": len({c for r in rows for c in r["risk_controls"]})}
    context = {"document": document, "rows": rows, "summary": summary}
    html = render("trace.html.j2", context, out_dir / "trace.html")
    written = [html, write_pdf(html), render("trace.md.j2", context, out_dir / "trace.md")]
    csv_path = out_dir / "trace.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_needs", "requirement", "title", "software_items",
                         "risk_control", "risk_controls", "test", "outcome", "verified"])
        for row in rows:
            for test in row["tests"] or [{"node_id": "", "outcome": ""}]:
                writer.writerow([" ".join(row["user_needs"]), row["id"], row["title"],
                                 " ".join(row["software_items"]), row["risk_control"],
                                 " ".join(row["risk_controls"]), test["node_id"],
                                 test["outcome"], row["verified"]])
    json_path = out_dir / "trace.json"
    json_path.write_text(json.dumps({
        "document": document, "generated_at": datetime.now(UTC).isoformat(),
        "summary": summary, "user_needs": {n.id: n.title for n in records.needs.values()},
        "software_items": {i.id: i.name for i in records.items.values()},
        "requirements": rows}, indent=2) + "\n", encoding="utf-8")
    return [*written, csv_path, json_path]
