"""Generated documents: the title block every record carries (document id, version, date,
product, approvals) and rendering of the Jinja2 templates in `templates/`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from digital_contrast import PRODUCT_NAME, __version__

_ENV = Environment(loader=PackageLoader("digital_contrast.qms", "templates"),
                   autoescape=select_autoescape(["html.j2"]), undefined=StrictUndefined,
                   trim_blocks=False, keep_trailing_newline=True)


def document_header(document_id: str, title: str, *, source: str,
                    approvals: tuple[str, ...], version: str | None = None) -> dict[str, Any]:
    return {"id": document_id, "title": title, "version": version or __version__,
            "date": datetime.now(UTC).date().isoformat(), "product": PRODUCT_NAME,
            "product_version": __version__, "source": source, "approvals": list(approvals)}


def render(template: str, context: dict[str, Any], path: Path) -> Path:
    path.write_text(_ENV.get_template(template).render(**context), encoding="utf-8")
    return path
