"""The service itself: health, stats, Prometheus metrics, the web page and its static files, and the OpenAPI docs
at /docs with Swagger UI served from the installed ``swagger-ui-bundle`` package (FastAPI's default page loads it
from a CDN, which an offline machine cannot reach)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import schemas
from ..deps import ServiceDep
from ..metrics import CONTENT_TYPE

STATIC = Path(__file__).parent.parent / "static"

router = APIRouter(tags=["service"])


@router.get("/health", response_model=schemas.Health)
def health(service: ServiceDep) -> Any:
    return {"status": "ok", "items": service.cat.count(), "writable": service.writable}


@router.get("/stats", response_model=schemas.Stats)
def stats(service: ServiceDep) -> Any:
    """Counts, encoder, index and sizes."""
    return service.stats()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
def prometheus(service: ServiceDep) -> Response:
    """Prometheus metrics: request latency per route, time per stage (decode, encode, search, write)."""
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


# -- the web page and the docs (not in the OpenAPI schema) ----------------------------------------------------------

pages = APIRouter(include_in_schema=False)


@pages.get("/")
@pages.get("/browse")
@pages.get("/review")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@pages.get("/docs")
def docs(request: Request) -> HTMLResponse:
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url=request.app.openapi_url or "/openapi.json", title="lookalike API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/docs-assets/favicon-32x32.png")


def mount_files(app: FastAPI) -> None:
    """The web page's static files at /static and Swagger UI's at /docs-assets."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
