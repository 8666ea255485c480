"""The landing page and the API documentation in a real browser (Debian's chromium), with
every request outside the service refused: Swagger UI and ReDoc must render from the files
the service serves itself."""

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.test_dashboard_browser import browser  # noqa: F401 (fixture)
from tests.support.service import live_server, make_settings, running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("docs-browser"), empty_registry_db)
    with running_service(settings) as running:
        yield running


@pytest.mark.req("SRS-API-020")
def test_docs_render_offline_and_the_landing_page_links_them(service,
                                                             browser: Browser) -> None:  # noqa: F811
    with live_server(service.app) as base:
        context = browser.new_context()
        outside: list[str] = []

        def only_ours(route) -> None:
            if route.request.url.startswith(base):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_ours)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/")
        assert "Digital Contrast" in page.title() and page.locator("a[href='/docs']").count()
        page.click("a[href='/docs']")
        page.wait_for_selector(".opblock-summary-path")  # operations rendered by Swagger UI
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/dicomweb/studies" in p for p in paths) and len(paths) > 20
        page.goto(f"{base}/redoc")
        page.wait_for_selector("[data-section-id]")  # ReDoc's rendered sections
        assert "Digital Contrast" in page.content()
        context.close()
    assert outside == []
