"""Generated documents: the title block every record carries (document id, version, date,
product, approvals), rendering of the Jinja2 templates, and PDF renderings of the HTML.

Templates live in `templates/` of the package that owns the document; they extend
`document_base.html.j2` here, so every report has the same title block and print layout.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from digital_contrast import PRODUCT_NAME, __version__

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
    return environment


def document_header(document_id: str, title: str, *, source: str,
                    approvals: tuple[str, ...], version: str | None = None,
                    date: dt.date | None = None) -> dict[str, Any]:
    """The title block; `date` defaults to today (UTC), fixed by callers that reproduce one."""
    return {"id": document_id, "title": title, "version": version or __version__,
            "date": (date or dt.datetime.now(dt.UTC).date()).isoformat(), "product": PRODUCT_NAME,
            "product_version": __version__, "source": source, "approvals": list(approvals)}


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
