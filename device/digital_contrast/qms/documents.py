"""Generated documents: the title block every record carries (document id, version, date,
product, approvals, revision history of its source records), rendering of the Jinja2 templates,
and PDF renderings of the HTML.

Templates live in `templates/` of the package that owns the document; they extend
`document_base.html.j2` here, so every report has the same title block and print layout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from digital_contrast import PRODUCT_NAME, __version__
from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.revisions import revision_history

QMS_PACKAGE = "digital_contrast.qms"


def _cell(value: object) -> str:
    """A value fit for one Markdown table cell: no column separator, no line break."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@cache
def _environment(package: str, compact: bool) -> Environment:
    loaders = [PackageLoader(package, "templates")]
    if package != QMS_PACKAGE:
        loaders.append(PackageLoader(QMS_PACKAGE, "templates"))  # the shared base
    environment = Environment(loader=ChoiceLoader(loaders),
                              autoescape=select_autoescape(["html.j2"]),
                              undefined=StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=compact, lstrip_blocks=compact)
    environment.filters["cell"] = _cell
    environment.filters["revision_history_md"] = revision_history_md
    return environment


def document_header(document_id: str, title: str, *, source: str,
                    approvals: tuple[str, ...], records: Sequence[str | Path],
                    version: str | None = None, date: dt.date | None = None,
                    repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The title block; `date` defaults to today (UTC), fixed by callers that reproduce one.
    `records` are the files or folders (from the repository root) the document is generated
    from: its revision history is theirs in git."""
    return {"id": document_id, "title": title, "version": version or __version__,
            "date": (date or dt.datetime.now(dt.UTC).date()).isoformat(), "product": PRODUCT_NAME,
            "product_version": __version__, "source": source, "approvals": list(approvals),
            "revisions": revision_history(records, repo).as_dict()}


def revision_history_md(document: dict[str, Any]) -> str:
    """The "Revision history" section of a Markdown rendering (the HTML base template draws the
    same table): one filter, so that templates written compact or not render it alike."""
    history = document["revisions"]
    lines = ["## Revision history", "",
             f"Commits touching the source records: `{history['command']}`.", ""]
    if history["unavailable"]:
        return "\n".join([*lines, history["unavailable"] + ".", "", ""])
    lines += ["| version | date | summary of change |", "| --- | --- | --- |"]
    if history["uncommitted"]:
        lines.append(f"| working tree | {document['date']} | uncommitted changes to "
                     f"{_cell(', '.join(history['uncommitted']))} |")
    lines += [f"| {r['version']} | {r['date']} | {_cell(r['summary'])} |"
              for r in history["revisions"]]
    if history["earlier"]:
        lines += ["", f"{history['earlier']} earlier revision(s): `{history['command']}`."]
    if history["truncated"]:
        lines += ["", history["truncated"] + "."]
    return "\n".join([*lines, "", ""])


def render(template: str, context: dict[str, Any], path: Path, *,
           package: str = QMS_PACKAGE, compact: bool = False) -> Path:
    """Render `template` of `package` to `path`. `compact` (trim_blocks, lstrip_blocks) is for
    templates written with each block tag on a line of its own, so that the tags leave no blank
    lines (Markdown tables break on them)."""
    path.write_text(_environment(package, compact).get_template(template).render(**context),
                    encoding="utf-8")
    return path


def write_pdf(html: Path) -> Path:
    """The PDF rendering of a generated HTML document, beside it (WeasyPrint: the same
    template, laid out by the print rules of the base template)."""
    import logging

    from weasyprint import HTML

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting chatter
    pdf = html.with_suffix(".pdf")
    HTML(filename=str(html)).write_pdf(str(pdf))
    return pdf
