"""The SOUP list (DC-SOUP): assessed direct rows, the measured platform, generated transitive
rows and the tools kept out of scope, as Markdown, HTML, PDF and CSV, each item with its
support status, hashes and anomaly review record, and the open findings of `check_soup`."""

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
from digital_contrast.qms.soup.hashes import dist_hashes, lock_hashes
from digital_contrast.qms.soup.platform import Measured, measure_platform
from digital_contrast.qms.soup.reviews import REVIEWS_DIR, ReviewRecord, load_reviews
from digital_contrast.qms.soup.vendored import Vendored, vendored_components
from digital_contrast.qms.yaml_records import YamlDocument

DOCUMENT_ID, TITLE = "DC-SOUP", "SOUP list"
APPROVALS = ("Author", "Reviewer", "Approver (regulatory)")


def soup_rows(soup: SoupFile, closure: dict[str, Dist], *,
              vendored: dict[str, Vendored] | None = None,
              platform: dict[str, Measured] | None = None,
              reviews: dict[str, ReviewRecord] | None = None) -> list[dict[str, Any]]:
    """Direct rows (assessment joined with installed metadata), platform rows (joined with the
    measurement), then generated transitive rows; each with its hashes and review record."""
    vendored = vendored_components() if vendored is None else vendored
    platform = measure_platform() if platform is None else platform
    reviews = load_reviews()[0] if reviews is None else reviews
    locks = lock_hashes()
    rows = []
    for _, item in sorted(soup.items, key=lambda pair: canonicalize_name(pair[1].name)):
        key = canonicalize_name(item.name)
        dist = closure.get(key)
        shipped = vendored.get(item.name.lower()) if item.ecosystem == "npm" else None
        installed = shipped.version if shipped else (dist.version if dist else None)
        rows.append({
            **item.model_dump(mode="json"),
            "section": "direct",
            "name": item.name,
            "installed_version": installed,
            "metadata_licence": shipped.licence if shipped else (dist.licence if dist else ""),
            "required_by": sorted(dist.required_by) if dist else [],
            **_hash_fields(item.name, installed, shipped, locks),
            "review": _review(reviews, item.name),
        })
    for _, item in sorted(soup.platform, key=lambda pair: pair[1].name):
        measured = platform.get(item.name)
        rows.append({
            **item.model_dump(mode="json"),
            "section": "platform",
            "installed_version": measured.version if measured else None,
            "measured_by": measured.source if measured else "not a measured component",
            "required_by": [],
            "review": _review(reviews, item.name),
        })
    rows += [{"section": "transitive", "name": d.name, "version": d.version,
              "installed_version": d.version, "licence": d.licence, "ecosystem": "pypi",
              "required_by": sorted(d.required_by),
              **_hash_fields(d.name, d.version, None, locks)}
             for d in closure.values() if not d.direct]
    return rows


def _hash_fields(name: str, version: str | None, shipped: Vendored | None,
                 locks: dict[tuple[str, str], list[str]]) -> dict[str, Any]:
    if shipped is not None:
        return {"sha256": [shipped.sha256] if shipped.sha256 else [],
                "hash_source": "SHA-256 of the vendored file (vendor README, checked)"}
    if version is None:
        return {"sha256": [], "hash_source": "none: not installed"}
    found = dist_hashes(name, version, locks)
    return {"sha256": list(found.sha256), "hash_source": found.source}


def _review(reviews: dict[str, ReviewRecord], name: str) -> dict[str, Any] | None:
    record = reviews.get(canonicalize_name(name))
    if record is None:
        return None
    return {**record.review.model_dump(mode="json"), "file": record.doc.name}


_CSV_FIELDS = ("section", "name", "version", "installed_version", "ecosystem", "kind",
               "licence", "supplier", "purpose", "software_items", "required_by",
               "support_status", "support_until", "support_basis", "sha256", "hash_source",
               "anomaly_source", "review_date", "review_version", "review_result",
               "anomalies", "review_file")


def write_soup_list(out_dir: Path, soup: SoupFile | None = None,
                    closure: dict[str, Dist] | None = None, *,
                    pyproject: Path = PYPROJECT, today: date | None = None,
                    platform: dict[str, Measured] | None = None,
                    reviews_dir: Path = REVIEWS_DIR) -> list[Path]:
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
    platform = measure_platform() if platform is None else platform
    reviews, review_problems = load_reviews(reviews_dir)
    rows = soup_rows(soup, closure, vendored=vendored, platform=platform, reviews=reviews)
    tools = tool_closure(pyproject, closure)
    sha256 = hashlib.sha256(soup.doc.text.encode("utf-8")).hexdigest()
    context = {
        "document": document_header(
            DOCUMENT_ID, TITLE, approvals=APPROVALS, date=today, records=(soup.doc.name,),
            source=f"{soup.doc.name} (SHA-256 {sha256}) and the installed distributions' "
                   "metadata"),
        "source_file": soup.doc.name, "source_sha256": sha256,
        "direct": [r for r in rows if r["section"] == "direct"],
        "platform": [r for r in rows if r["section"] == "platform"],
        "incomplete_reviews": [r["name"] for r in rows if r.get("review")
                               and r["review"]["result"] == "incomplete"],
        "transitive": [r for r in rows if r["section"] == "transitive"],
        "tools": list(tools.values()),
        "findings": review_problems + check_soup(
            soup, closure, _known_items(), vendored=vendored, today=today, platform=platform,
            reviews=reviews, reviews_dir=reviews_dir),
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
            review, support = row.get("review") or {}, row.get("support") or {}
            writer.writerow({**row, "software_items": " ".join(row.get("software_items", [])),
                             "required_by": " ".join(row["required_by"]),
                             "support_status": support.get("status", ""),
                             "support_until": support.get("until") or "",
                             "support_basis": support.get("basis", ""),
                             "sha256": " ".join(row.get("sha256", [])),
                             "review_date": review.get("date", ""),
                             "review_version": review.get("version", ""),
                             "review_result": review.get("result", ""),
                             "anomalies": len(review["anomalies"]) if review else "",
                             "review_file": review.get("file", "")})
        for dist in tools.values():
            writer.writerow({"section": "test-tool", "name": dist.name, "version": dist.version,
                             "installed_version": dist.version, "ecosystem": "pypi",
                             "licence": dist.licence})
    return [*paths, csv_path]


def _known_items() -> set[str]:
    doc, _ = YamlDocument.load(QMS_DIR / "software_items.yaml")
    rows = doc.data.get("software_items", []) if doc and isinstance(doc.data, dict) else []
    return {row["id"] for row in rows if isinstance(row, dict) and "id" in row}
