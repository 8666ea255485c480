"""The landing page says what the service is and whether it is ready (and why not); the
documentation pages load their scripts from the service, never from a CDN."""

import hashlib
import shutil
from pathlib import Path

import pytest

from digital_contrast.api.routers.dashboard import STATIC_DIR
from tests.support.service import make_settings, running_service


@pytest.mark.req("SRS-API-020")
def test_the_landing_page_is_public_and_says_why_it_is_not_ready(tmp_path: Path,
                                                                  empty_registry_db: Path):
    settings = make_settings(tmp_path / "ready", empty_registry_db, dimse_port=11112)
    with running_service(settings) as service:
        page = service.client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "Ready" in page.text and "DIGCONTRAST" in page.text and "11112" in page.text
        assert "not clinically validated" in page.text
    (tmp_path / "empty" / "data").mkdir(parents=True)
    shutil.copy(empty_registry_db, tmp_path / "empty" / "data" / "mlflow.db")
    bare = settings.model_copy(update={"data_dir": tmp_path / "empty" / "data",
                                       "mlflow_uri": f"sqlite:///{tmp_path}/empty/data/mlflow.db",
                                       "database_url": "", "dimse_port": None})
    bare = type(settings)(**{k: v for k, v in bare.model_dump().items()
                             if k != "database_url"})
    with running_service(bare) as service:
        page = service.client.get("/")
        assert "Not ready" in page.text and "no use case has a validated production model" \
            in page.text and "DIMSE" not in page.text


@pytest.mark.req("SRS-API-020")
@pytest.mark.parametrize(("page", "asset"), [
    ("/docs", "swagger-ui-bundle.js"), ("/docs", "swagger-ui.css"),
    ("/redoc", "redoc.standalone.js")])
def test_documentation_pages_use_the_vendored_files(tmp_path: Path, empty_registry_db: Path,
                                                    page: str, asset: str) -> None:
    with running_service(make_settings(tmp_path, empty_registry_db)) as service:
        response = service.client.get(page)
        html = response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert f"/static/vendor/{asset}" in html
        assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
        served = service.client.get(f"/static/vendor/{asset}")
        assert served.status_code == 200
        assert hashlib.sha256(served.content).digest() == \
            hashlib.sha256((STATIC_DIR / "vendor" / asset).read_bytes()).digest()


@pytest.mark.req("SRS-API-022")
def test_every_operation_documents_its_problems_as_the_server_sends_them(
        tmp_path: Path, empty_registry_db: Path) -> None:
    with running_service(make_settings(tmp_path, empty_registry_db)) as service:
        schema = service.client.get("/openapi.json").json()
        problem = schema["components"]["schemas"]["Problem"]
        assert "HTTPValidationError" not in schema["components"]["schemas"]
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
                assert {"500", "503"} <= set(errors), (method, path)
                for status, response in errors.items():
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"}, (method, path, status)
        assert {"401", "403"} <= set(schema["paths"]["/v1/jobs"]["post"]["responses"])
        assert "401" not in schema["paths"]["/healthz"]["get"]["responses"]
        sent = service.client.post("/v1/jobs", json={"use_case": 3}, headers=service.headers())
        assert sent.status_code == 422
        assert sent.headers["content-type"] == "application/problem+json"
        body = sent.json()
        assert set(problem["required"]) <= set(body) <= set(problem["properties"])
        assert all(isinstance(body[k], {"string": str, "integer": int, "array": list}[
            problem["properties"][k]["type"]]) for k in body)
        assert sent.json()["code"] == "REQUEST_INVALID" and sent.json()["errors"]
