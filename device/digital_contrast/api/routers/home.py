"""The landing page (what this service is, whether it is ready and why not, where to go) and
the API documentation pages, served from vendored files so that they work offline."""

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from digital_contrast import PRODUCT_NAME, __version__
from digital_contrast.api.deps import Service
from digital_contrast.api.routers.dashboard import TEMPLATES
from digital_contrast.api.routers.health import readiness
from digital_contrast.usecases import use_cases

router = APIRouter(include_in_schema=False)
VENDOR = "/static/vendor"
BANNER = ("Every result is synthetic. The reference model is trained on a procedural phantom "
          "and is not clinically validated.")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}
# The documentation pages run the vendored scripts and their inline start-up code; nothing may
# be fetched from elsewhere (ReDoc would load its logo from its CDN).
DOCS_HEADERS = HEADERS | {"Content-Security-Policy": (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'")}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: Service) -> HTMLResponse:
    ready, reason, _ = readiness(state)
    settings = state.settings
    evidence = " ".join(sorted({case.evidence for case in use_cases().values()}))
    dimse = ({"ae_title": settings.dimse_ae_title, "port": settings.dimse_port}
             if settings.dimse_port else None)
    return TEMPLATES.TemplateResponse(
        request, "home.html", {"banner": BANNER, "version": __version__, "ready": ready,
                               "reason": reason, "evidence": evidence, "dimse": dimse},
        headers=HEADERS)  # a page: readiness for probes is /readyz


def _docs(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    return _docs(get_swagger_ui_html(openapi_url="/openapi.json",
                                     title=f"{PRODUCT_NAME} - API",
                                     swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
                                     swagger_css_url=f"{VENDOR}/swagger-ui.css",
                                     swagger_favicon_url="/static/favicon.svg",
                                     oauth2_redirect_url="/docs/oauth2-redirect"))


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", response_class=HTMLResponse)
def redoc() -> HTMLResponse:
    return _docs(get_redoc_html(openapi_url="/openapi.json", title=f"{PRODUCT_NAME} - API",
                                redoc_js_url=f"{VENDOR}/redoc.standalone.js",
                                redoc_favicon_url="/static/favicon.svg",
                                with_google_fonts=False))
