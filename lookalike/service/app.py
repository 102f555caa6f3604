"""The FastAPI application: REST endpoints, the web page, metrics and the error contract.

Every error answer is JSON ``{"error": {"type": ..., "message": ..., "status": ...}}`` with a 4xx status for
anything a client can cause:

====================================================  ======
cause                                                 status
====================================================  ======
malformed body or multipart, truncated/corrupt image  400
missing API key                                       401
wrong API key, or a read-only service                 403
unknown item id, or an item whose image is gone       404
id already taken                                      409
refused as a duplicate (body adds ``duplicates``)     409
duplicate verdicts on an uncalibrated catalogue       409
image, body, metadata or filter over the limits       413
not an image, or a format lookalike refuses           415
bad parameter (k, box, filter, id), box outside image 422
====================================================  ======

Duplicate detection (``/duplicates``): ``POST /duplicates/check`` compares an upload with the catalogue without
adding it; ``GET /duplicates`` groups the whole catalogue (a kNN pass over every item: seconds on tens of
thousands of items, and writes wait for it); ``POST /duplicates/calibrate`` (a write) fits the near-duplicate
threshold the verdicts need; ``POST /items`` takes ``check_duplicates`` and ``refuse``.

Item ids may contain '/' (folder-indexed items are ``class/name.png``); in URLs they are percent-encoded.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..catalog import Catalog
from ..errors import (
    DuplicateImageError,
    DuplicateItemError,
    EmptyImageError,
    EncoderError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidParameterError,
    InvalidRegionError,
    ItemNotFoundError,
    LookalikeError,
    NotAnImageError,
    UnsupportedFormatError,
)
from . import schemas
from .auth import AuthError, check_write
from .config import ServiceConfig
from .core import (
    CALIBRATE_BOUNDS,
    DEFAULT_THUMBNAIL,
    THUMBNAIL_SIZES,
    CalibrationRequiredError,
    DuplicateDetectionError,
    PayloadTooLargeError,
    Service,
    item_out,
    match_out,
    report_out,
)
from .metrics import CONTENT_TYPE, BodyLimitMiddleware, MetricsMiddleware

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("lookalike.service")

# most specific first
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (PayloadTooLargeError, 413),
    (ImageTooLargeError, 413),
    (NotAnImageError, 415),
    (UnsupportedFormatError, 415),
    (InvalidRegionError, 422),
    (ImageNotFoundError, 404),
    (EmptyImageError, 400),
    (ItemNotFoundError, 404),
    (DuplicateItemError, 409),
    (DuplicateImageError, 409),
    (CalibrationRequiredError, 409),
    (DuplicateDetectionError, 409),
    (InvalidParameterError, 422),
    (EncoderError, 500),
    (LookalikeError, 400),
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse, "description": text} for code, text in (
        (400, "malformed request or image"), (404, "no such item"), (413, "over a size limit"),
        (415, "not an image"), (422, "bad parameter"))
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 401: {"model": schemas.ErrorResponse, "description": "API key missing"},
    403: {"model": schemas.ErrorResponse, "description": "API key invalid, or the service is read-only"},
    409: {"model": schemas.ErrorResponse, "description": "id taken"},
}
ADD_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    409: {"model": schemas.DuplicateRefusal,
          "description": "id taken; or, with 'refuse', the image duplicates items (listed in 'duplicates', nothing "
                         "added); or a near-duplicate check on an uncalibrated catalogue"},
}
_UNCALIBRATED = {"model": schemas.ErrorResponse,
                 "description": "the catalogue has no near-duplicate calibration (POST /duplicates/calibrate), or "
                                "cannot do duplicate detection (binary codes only)"}
DUP_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 409: _UNCALIBRATED}

def _image_body(description: str, fields: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body of an image upload: multipart (field 'image' plus ``fields``) or the raw bytes."""
    binary = {"type": "string", "format": "binary"}
    return {"requestBody": {"required": True, "description": description, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": binary, **fields}}},
        "application/octet-stream": {"schema": binary},
        "image/*": {"schema": binary},
    }}}


_K_FIELD = {"k": {"type": "integer", "minimum": 1, "default": 10}}
_SEARCH_BODY = _image_body(
    "The query image: a multipart form (field 'image', plus optional 'box', 'k', 'where'), or the raw image bytes "
    "as the body (parameters then in the query string).",
    {"box": {"type": "string", "description": "region 'x,y,w,h' in pixels", "example": "10,20,200,150"},
     **_K_FIELD, "where": {"type": "string", "description": "metadata filter, a JSON object"}})
_CHECK_BODY = _image_body(
    "The image to check: a multipart form (field 'image', plus optional 'k'), or the raw image bytes as the body.",
    _K_FIELD)

_PRECISION, _SAMPLE, _SEED = (CALIBRATE_BOUNDS[name] for name in ("target_precision", "sample", "seed"))

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="needed by write endpoints (or send 'Authorization: Bearer KEY')")


def error_body(status: int, message: str, kind: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message, "status": status}}).encode()


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, "status": status}}, status_code=status)


def status_of(err: BaseException) -> int:
    return next((code for cls, code in _STATUS if isinstance(err, cls)), 500)


def create_app(config: ServiceConfig | str | Path, *, catalog: Catalog | None = None,
               warm_up: bool = True) -> FastAPI:
    """The service for one catalogue.

    Args:
        config: settings, or a catalogue path (then read-only, with default limits).
        catalog: an already opened catalogue to serve instead of opening ``config.catalog``.
        warm_up: load the model and the index at startup, not on the first search.
    """
    if not isinstance(config, ServiceConfig):
        config = ServiceConfig(Path(config), read_only=True)
    service = Service(config, catalog)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_up:
            await run_in_threadpool(service.warm_up)
        yield
        if catalog is None:
            service.close()

    app = FastAPI(
        title="lookalike", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Visual similarity search over an image catalogue: search by upload or crop, browse, manage. "
                    "Errors are `{\"error\": {\"type\", \"message\", \"status\"}}`. Write endpoints need the API key.",
    )
    app.state.service = service
    metrics = service.metrics
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes, error_body=error_body)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # -- errors -------------------------------------------------------------------------------------------------

    def answer(status: int, message: str, kind: str) -> JSONResponse:
        metrics.errors.labels(kind, str(status)).inc()
        return _error(status, message, kind)

    @app.exception_handler(LookalikeError)
    async def on_lookalike_error(request: Request, err: LookalikeError) -> JSONResponse:
        status = status_of(err)
        if status >= 500:
            log.exception("unexpected error", exc_info=err)
        return answer(status, str(err), type(err).__name__)

    @app.exception_handler(DuplicateImageError)
    async def on_refused_duplicate(request: Request, err: DuplicateImageError) -> JSONResponse:
        """409 with the standard error body plus ``duplicates``, the items the refused image copies."""
        kind = type(err).__name__
        metrics.errors.labels(kind, "409").inc()
        body = {"error": {"type": kind, "message": str(err), "status": 409},
                "duplicates": [match_out(m, prefix(request)) for m in err.matches]}
        return JSONResponse(jsonable_encoder(body), status_code=409)

    @app.exception_handler(AuthError)
    async def on_auth_error(request: Request, err: AuthError) -> JSONResponse:
        response = answer(err.status, err.message, "AuthError")
        if err.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for e in err.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
        return answer(422, "; ".join(parts) or "invalid request", "InvalidParameterError")

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(err.status_code, "HTTPError")
        response = answer(err.status_code, str(err.detail), kind)
        for name, value in (err.headers or {}).items():
            response.headers[name] = value
        return response

    # -- helpers ------------------------------------------------------------------------------------------------

    def writer(request: Request, key: Annotated[str | None, Depends(_api_key_header)]) -> None:
        check_write(config, request)

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def read_upload(upload: object, field: str = "image") -> bytes:
        if not isinstance(upload, StarletteUploadFile):
            raise InvalidParameterError(f"the {field!r} field must be a file upload (multipart/form-data)")
        return await upload.read()

    async def query_image(request: Request, params: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """The image of a query (a multipart form's 'image' file, or the raw body) and its parameters: from the
        form's fields when multipart, else the query string's (given as ``params``)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        params = dict(params)
        if ctype == "multipart/form-data":
            async with request.form(max_files=1, max_fields=8,
                                    max_part_size=config.max_body_bytes) as form:
                if "image" not in form:
                    raise InvalidParameterError("the multipart form has no 'image' file field")
                data = await read_upload(form["image"])
                for name in params:
                    if name in form:
                        params[name] = form[name]
        elif ctype in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
            raise UnsupportedFormatError(
                "<request>", f"send the image as multipart/form-data (field 'image') or as the raw body, not {ctype}")
        else:
            data = await request.body()
        return data, params

    # -- search -------------------------------------------------------------------------------------------------

    @app.post("/search", response_model=schemas.SearchResponse, responses=ERRORS, openapi_extra=_SEARCH_BODY,
              tags=["search"])
    async def search(
        request: Request,
        k: Annotated[str | None, Query(description="number of results (default 10)")] = None,
        box: Annotated[str | None, Query(description="region 'x,y,w,h' in pixels of the upright image")] = None,
        where: Annotated[str | None, Query(description='metadata filter, JSON: {"category": "shoes"}')] = None,
    ) -> Any:
        """The items most similar to an uploaded image, or to a region (box) of it, best first."""
        data, params = await query_image(request, {"k": k, "box": box, "where": where})
        k_value = service.parse_k(params["k"])
        box_value = service.parse_box(params["box"])
        where_value = service.parse_object(params["where"], "where")
        return await run_in_threadpool(service.search, data, k=k_value, box=box_value, where=where_value,
                                       prefix=prefix(request))

    @app.get("/items/{item_id:path}/similar", response_model=schemas.SearchResponse, responses=ERRORS,
             tags=["search"])
    def similar(request: Request, item_id: str, k: str | None = None, where: str | None = None) -> Any:
        """"More like this": the items most similar to an item of the catalogue, itself excluded."""
        return service.similar(item_id, k=service.parse_k(k), where=service.parse_object(where, "where"),
                               prefix=prefix(request))

    # -- items: reading -----------------------------------------------------------------------------------------

    @app.get("/items/{item_id:path}/image", responses={**ERRORS, 200: {"content": {"image/*": {}}}},
             response_class=FileResponse, tags=["items"])
    def item_image(item_id: str) -> FileResponse:
        """The item's original image file."""
        path, media = service.image_file(item_id)
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/items/{item_id:path}/thumbnail", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
             response_class=Response, tags=["items"])
    def item_thumbnail(
        request: Request, item_id: str,
        size: Annotated[int, Query(ge=THUMBNAIL_SIZES[0], le=THUMBNAIL_SIZES[1])] = DEFAULT_THUMBNAIL,
        v: Annotated[str | None, Query(description="content version (cache key)")] = None,
    ) -> Response:
        """A small JPEG (PNG for tiny images) of the item, at most ``size`` pixels on a side, never enlarged."""
        data, media, sha = service.thumbnail(item_id, size)
        etag = f'"{sha[:16]}-{size}"'
        cache = "public, max-age=31536000, immutable" if v and sha.startswith(v) else "no-cache"
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
        return Response(data, media_type=media, headers={"ETag": etag, "Cache-Control": cache})

    @app.get("/items", response_model=schemas.ItemPage, responses=ERRORS, tags=["items"])
    def list_items(
        request: Request,
        offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        where: Annotated[str | None, Query(description='metadata filter, JSON: {"category": "shoes"}')] = None,
    ) -> Any:
        """A page of items in insertion order, with the total count."""
        return service.page(offset=offset, limit=limit, where=service.parse_object(where, "where"),
                            prefix=prefix(request))

    @app.get("/items/{item_id:path}", response_model=schemas.ItemOut, responses=ERRORS, tags=["items"])
    def get_item(request: Request, item_id: str) -> Any:
        """One item."""
        return item_out(service.get(item_id), prefix(request))

    # -- items: writing -----------------------------------------------------------------------------------------

    @app.post("/items", response_model=schemas.AddedItem, response_model_exclude_unset=True, status_code=201,
              responses=ADD_ERRORS, tags=["items"], dependencies=[Depends(writer)])
    async def add_item(
        request: Request,
        image: Annotated[UploadFile, File(description="the image")],
        id: Annotated[str | None, Form(description="the item id (default: from the content hash)")] = None,  # noqa: A002
        metadata: Annotated[str | None, Form(description="a JSON object")] = None,
        check_duplicates: Annotated[bool, Form(
            description="compare the image with its nearest items first and answer their verdicts in "
                        "'duplicates' (needs a calibrated catalogue)")] = False,
        refuse: Annotated[str | None, Form(
            description="'exact': do not add an exact copy of an item; 'near': nor a near-duplicate (needs a "
                        "calibrated catalogue). A refusal is a 409 listing the 'duplicates'.",
            json_schema_extra={"enum": ["exact", "near"]})] = None,
    ) -> Any:
        """Add an image to the catalogue (needs the API key), optionally checked for duplicates first."""
        refuse_value = service.parse_refuse(refuse)
        data = await read_upload(image)
        meta = service.parse_object(metadata, "metadata")
        item = await run_in_threadpool(service.add, data, item_id=id or None, metadata=meta,
                                       check_duplicates=check_duplicates, refuse=refuse_value)
        out = item_out(item, prefix(request))
        if check_duplicates or refuse_value is not None:
            out["duplicates"] = [match_out(m, prefix(request)) for m in getattr(item, "duplicates", ())]
        return out

    @app.put("/items/{item_id:path}", response_model=schemas.ItemOut, responses=WRITE_ERRORS, tags=["items"],
             dependencies=[Depends(writer)])
    async def update_item(
        request: Request, item_id: str,
        image: Annotated[UploadFile | None, File(description="a new image")] = None,
        metadata: Annotated[str | None, Form(description="new metadata, a JSON object (replaces the old)")] = None,
    ) -> Any:
        """Replace an item's image and/or metadata (needs the API key)."""
        data = await read_upload(image) if image is not None else None
        meta = service.parse_object(metadata, "metadata")
        if data is None and meta is None:
            raise InvalidParameterError("nothing to update: send an 'image' file and/or 'metadata'")
        item = await run_in_threadpool(service.update, item_id, data=data, metadata=meta)
        return item_out(item, prefix(request))

    @app.delete("/items/{item_id:path}", response_model=schemas.Deleted, responses=WRITE_ERRORS, tags=["items"],
                dependencies=[Depends(writer)])
    def delete_item(item_id: str) -> Any:
        """Remove an item (needs the API key)."""
        service.remove(item_id)
        return {"deleted": item_id}

    # -- duplicates ---------------------------------------------------------------------------------------------

    @app.post("/duplicates/check", response_model=schemas.DuplicateCheck, responses=DUP_ERRORS,
              openapi_extra=_CHECK_BODY, tags=["duplicates"])
    async def check_duplicates(
        request: Request,
        k: Annotated[str | None, Query(description="nearest items judged (default 10)")] = None,
    ) -> Any:
        """Exact, near-duplicate and similar items of an uploaded image, which is not added (needs a calibrated
        catalogue)."""
        data, params = await query_image(request, {"k": k})
        k_value = service.parse_k(params["k"])
        return await run_in_threadpool(service.find_duplicates, data, k=k_value, prefix=prefix(request))

    @app.get("/duplicates", response_model=schemas.DedupReportOut, tags=["duplicates"],
             responses={**DUP_ERRORS, 200: {"content": {"text/csv": {}},
                                            "description": "the report (JSON), or one CSV row per grouped item"}})
    def duplicates(
        request: Request,
        k: Annotated[str | None, Query(description="neighbours checked per item (default 10)")] = None,
        format: Annotated[Literal["json", "csv"], Query(  # noqa: A002
            description="json: groups with their pairs; csv: group, id, path, width, height, added, keep")] = "json",
    ) -> Any:
        """The duplicate groups of the whole catalogue, each with its suggested keeper (needs a calibrated
        catalogue). Every item is compared with its k nearest: on a large catalogue this takes seconds, and
        writes wait until it is done."""
        k_value = service.parse_k(k)
        report = service.dedup(k=k_value)
        if format == "csv":
            return Response(report.to_csv(), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="duplicates.csv"'})
        return report_out(report, k_value, prefix(request))

    @app.get("/duplicates/calibration", response_model=schemas.CalibrationOut | None, responses=DUP_ERRORS,
             tags=["duplicates"])
    def calibration() -> Any:
        """The catalogue's near-duplicate calibration, or null when it has none."""
        return service.calibration()

    @app.post("/duplicates/calibrate", response_model=schemas.CalibrationOut,
              responses={**WRITE_ERRORS, 409: _UNCALIBRATED}, tags=["duplicates"], dependencies=[Depends(writer)])
    def calibrate(
        target_precision: Annotated[float, Query(ge=_PRECISION[0], le=_PRECISION[1], description="precision the "
                                                 "threshold aims at on generated copies")] = 0.99,
        sample: Annotated[int, Query(ge=_SAMPLE[0], le=_SAMPLE[1], description="catalogue items edited into "
                                     "copies (each is encoded: the cost)")] = 200,
        seed: Annotated[int, Query(ge=_SEED[0], le=_SEED[1])] = 0,
    ) -> Any:
        """Fit the near-duplicate threshold on edited copies of a sample of the catalogue's own items, and store it
        with the catalogue (needs the API key; writes wait while it runs)."""
        return service.calibrate(target_precision=target_precision, sample=sample, seed=seed)

    # -- service ------------------------------------------------------------------------------------------------

    @app.get("/health", response_model=schemas.Health, tags=["service"])
    def health() -> Any:
        return {"status": "ok", "items": service.cat.count(), "writable": config.writable}

    @app.get("/stats", response_model=schemas.Stats, tags=["service"])
    def stats() -> Any:
        """Counts, encoder, index and sizes."""
        return service.stats()

    @app.get("/metrics", response_class=Response, tags=["service"],
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
    def prometheus() -> Response:
        """Prometheus metrics: request latency per route, time per stage (decode, encode, search, write)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    # -- the web page -------------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    @app.get("/browse", include_in_schema=False)
    @app.get("/review", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _offline_docs(app)
    return app


def _offline_docs(app: FastAPI) -> None:
    """OpenAPI docs at /docs with Swagger UI served from the installed ``swagger-ui-bundle`` package: FastAPI's
    default page loads it from a CDN, which an offline machine cannot reach."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="lookalike API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
