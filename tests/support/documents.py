"""The controlled-document form every generated QMS report shares (`qms/documents.py` and
`document_base.html.j2`), checked the same way for each of them."""

from pathlib import Path

import digital_contrast


def assert_controlled_document(html: Path, document_id: str, date: str,
                               approvals: tuple[str, ...]) -> None:
    """`html` carries the shared title block (id, version, date, product), the approvals table
    and the page footer, and its PDF rendering lies beside it."""
    text = html.read_text(encoding="utf-8")
    version = digital_contrast.__version__
    assert "<tr><th>document</th><th>version</th><th>date</th><th>product</th>" in text
    assert (f"<tr><td>{document_id}</td><td>{version}</td><td>{date}</td>"
            f"<td>{digital_contrast.PRODUCT_NAME} {version}</td>") in text
    assert "<h2>Approvals</h2>" in text
    assert "<tr><th>role</th><th>name</th><th>signature</th><th>date</th></tr>" in text
    for role in approvals:
        assert f'<tr><td>{role}</td><td class="signature"></td>' in text, role
    # Every printed page names the document, its version and date.
    assert f'content: "{document_id} version {version}, {date}"' in text
    assert html.with_suffix(".pdf").read_bytes().startswith(b"%PDF-")
