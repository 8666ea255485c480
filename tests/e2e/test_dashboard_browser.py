"""The sustainability dashboard in a real browser: Debian's chromium driven by Playwright
(never a browser Playwright downloads). Log in through the form, read the tiles against the
summary API, check the charts were drawn, download the CSV, log out; the page must not reach
outside the service. A full-page screenshot is left in build/ for review."""

import csv
import io
import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from digital_contrast.api import web_session
from digital_contrast.api.routers.sustainability import CSV_COLUMNS
from digital_contrast.store import Role
from tests.integration.test_dashboard import resolve, seed_footprints
from tests.support.service import live_server, make_settings, running_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "dashboard-sustainability.png"
CHARTS = ("chart-timeseries", "chart-model-version", "chart-use-case", "chart-energy")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("dashboard-browser"), empty_registry_db)
    with running_service(settings) as running:
        seed_footprints(running.state.sessions, settings.site)
        yield running


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():  # a failure, not a skip: the dashboard must be tested
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (as root), "
                    "or run `apt-get install chromium`; `playwright install` is not used")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.mark.req("SRS-CARB-030", "SRS-CARB-031", "SRS-CARB-024")
def test_dashboard_in_a_browser(service, browser: Browser) -> None:
    key = service.keys[Role.SUSTAINABILITY]
    with live_server(service.app) as base:
        context = browser.new_context(accept_downloads=True,
                                      viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        requested: list[str] = []
        problems: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))

        # Not signed in: the page sends the browser to the login form.
        page.goto(f"{base}/dashboard/sustainability")
        assert page.url == f"{base}/dashboard/login"
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dashboard/sustainability")
        cookie = next(c for c in context.cookies() if c["name"] == web_session.COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert web_session.COOKIE not in page.evaluate("document.cookie")

        # Every tile carries exactly the summary API's figure.
        summary = httpx.get(f"{base}/v1/sustainability/summary",
                            headers={"X-API-Key": key}).json()
        tiles = page.eval_on_selector_all(
            "li.tile", "tiles => tiles.map(t => [t.dataset.path, t.dataset.value])")
        assert len(tiles) == 11
        for path, value in tiles:
            assert json.loads(value) == resolve(summary, path), path
        assert summary["counts"]["jobs"] == 5
        scans = page.locator('li.tile[data-path="counts.jobs"] .value').inner_text()
        assert scans.split()[0] == "5"

        # Each chart was drawn by Chart.js on a canvas of non-zero size.
        for chart in CHARTS:
            drawn = page.evaluate("""id => {
                const canvas = document.getElementById(id);
                const chart = Chart.getChart(canvas);
                return {width: canvas.width, height: canvas.height,
                        points: chart ? chart.data.datasets
                            .reduce((n, d) => n + d.data.length, 0) : 0};
            }""", chart)
            assert drawn["width"] > 0 and drawn["height"] > 0 and drawn["points"] > 0, chart
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # The CSV link works with the session cookie: one row per job.
        with page.expect_download() as download:
            page.click("#download-csv")
        assert download.value.suggested_filename == f"footprint-{service.settings.site}.csv"
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert len(rows) == 1 + summary["counts"]["jobs"]

        # Logging out ends the session: the page goes back to the login form.
        page.click("form.logout button")
        page.wait_for_url(f"{base}/dashboard/login")
        assert not [c for c in context.cookies() if c["name"] == web_session.COOKIE]
        page.goto(f"{base}/dashboard/sustainability")
        assert page.url == f"{base}/dashboard/login"
        context.close()

    assert requested and all(url.startswith(f"{base}/") for url in requested), \
        [url for url in requested if not url.startswith(f"{base}/")]
    assert f"{base}/static/vendor/chart.umd.min.js" in requested
    assert problems == []  # no script error and no Content-Security-Policy violation
