"""The SOUP list (DC-SOUP): assessed direct rows, generated transitive rows and the tools kept
out of scope, as Markdown, HTML, PDF and CSV, with the open findings of `check_soup`."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.records import QMS_DIR, QmsRecordError
from digital_contrast.qms.soup.assessments import SoupFile, load_soup
from digital_contrast.qms.soup.check import check_soup
from digital_contrast.qms.soup.closure import PYPROJECT, Dist, runtime_closure, tool_closure
from digital_contrast.qms.soup.vendored import Vendored, vendored_components
from digital_contrast.qms.yaml_records import YamlDocument

DOCUMENT_ID, TITLE = "DC-SOUP", "SOUP list"
APPROVALS = ("Author", "Reviewer", "Approver (regulatory)")


def soup_rows(soup: SoupFile, closure: dict[str, Dist], *,
              vendored: dict[str, Vendored] | None = None) -> list[dict[str, Any]]:
    """Direct rows (assessment joined with installed metadata), then generated transitive rows."""
    vendored = vendored_components() if vendored is None else vendored
    rows = []
    for _, item in sorted(soup.items, key=lambda pair: canonicalize_name(pair[1].name)):
        key = canonicalize_name(item.name)
        dist = closure.get(key)
        shipped = vendored.get(item.name.lower()) if item.ecosystem == "npm" else None
        rows.append({
            **item.model_dump(mode="json"),
            "section": "direct",
            "name": item.name,
            "installed_version": shipped.version if shipped else (dist.version if dist else None),
            "metadata_licence": shipped.licence if shipped else (dist.licence if dist else ""),
            "required_by": sorted(dist.required_by) if dist else [],
        })
    rows += [{"section": "transitive", "name": d.name, "version": d.version,
              "installed_version": d.version, "licence": d.licence, "ecosystem": "pypi",
              "required_by": sorted(d.required_by)}
             for d in closure.values() if not d.direct]
    return rows


_CSV_FIELDS = ("section", "name", "version", "installed_version", "ecosystem", "licence",
               "supplier", "purpose", "software_items", "required_by", "anomaly_source",
               "anomalies_reviewed", "anomalies")


def write_soup_list(out_dir: Path, soup: SoupFile | None = None,
                    closure: dict[str, Dist] | None = None, *,
                    pyproject: Path = PYPROJECT, today: date | None = None) -> list[Path]:
    """`soup_list.md`, `soup_list.html` (self-contained), its `.pdf` and `soup_list.csv` under
    `out_dir`.

    Open findings of `check_soup` are printed in the document rather than hidden.
    """
    if soup is None:
        soup, problems = load_soup()
        if soup is None or problems:
            raise QmsRecordError(detail="; ".join(map(str, problems)))
    closure = runtime_closure(pyproject) if closure is None else closure
    today = today or date.today()
    vendored = vendored_components()
    rows = soup_rows(soup, closure, vendored=vendored)
    tools = tool_closure(pyproject, closure)
    sha256 = hashlib.sha256(soup.doc.text.encode("utf-8")).hexdigest()
    context = {
        "document": document_header(
            DOCUMENT_ID, TITLE, approvals=APPROVALS, date=today, records=(soup.doc.name,),
            source=f"{soup.doc.name} (SHA-256 {sha256}) and the installed distributions' "
                   "metadata"),
        "source_file": soup.doc.name, "source_sha256": sha256,
        "direct": [r for r in rows if r["section"] == "direct"],
        "transitive": [r for r in rows if r["section"] == "transitive"],
        "tools": list(tools.values()),
        "findings": check_soup(soup, closure, _known_items(), vendored=vendored, today=today),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, html = (render(f"soup_list.{suffix}.j2", context, out_dir / f"soup_list.{suffix}",
                       compact=True) for suffix in ("md", "html"))
    paths = [md, html, write_pdf(html)]
    csv_path = out_dir / "soup_list.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "software_items": " ".join(row.get("software_items", [])),
                             "required_by": " ".join(row["required_by"]),
                             "anomalies": len(row["anomalies"]) if "anomalies" in row else ""})
        for dist in tools.values():
            writer.writerow({"section": "test-tool", "name": dist.name, "version": dist.version,
                             "installed_version": dist.version, "ecosystem": "pypi",
                             "licence": dist.licence})
    return [*paths, csv_path]


def _known_items() -> set[str]:
    doc, _ = YamlDocument.load(QMS_DIR / "software_items.yaml")
    rows = doc.data.get("software_items", []) if doc and isinstance(doc.data, dict) else []
    return {row["id"] for row in rows if isinstance(row, dict) and "id" in row}
