"""The error contract: one table from the exception tree (:mod:`lookalike.errors`) to HTTP statuses, and the
handlers that answer every error as JSON ``{"error": {"type": ..., "message": ..., "status": ...}}``.

Anything a client can cause is a 4xx; only :class:`~lookalike.errors.EncoderError` (a model that cannot run) and
exceptions outside the tree are 5xx (logged with their traceback).
"""

from __future__ import annotations

import json
import logging
import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as E
from ..validation import Choice, Integer, Real, parameter_error, short_repr
from . import schemas
from .output import match_out, url_prefix

log = logging.getLogger("lookalike.service")

CALIBRATE_HINT = ("calibrate it first: POST /duplicates/calibrate with the API key (the Calibrate button of the "
                  "Duplicates page), or run 'lookalike dedup --calibrate' on the catalogue")

# exception class → status, most specific first (a subclass before its bases: the first match wins)
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (E.PayloadTooLargeError, 413),       # metadata or a filter over the service's limit
    (E.ImageTooLargeError, 413),         # pixels (decompression bomb) or bytes over the limit
    (E.NotAnImageError, 415),
    (E.UnsupportedFormatError, 415),
    (E.InvalidRegionError, 422),         # a box outside the image
    (E.ImageNotFoundError, 404),         # an item whose image file is gone
    (E.EmptyImageError, 400),
    (E.TruncatedImageError, 400),
    (E.ImageUnreadableError, 400),
    (E.ImageError, 400),
    (E.DatasetNotFoundError, 404),
    (E.DatasetError, 400),
    (E.SourceError, 400),
    (E.ItemNotFoundError, 404),
    (E.DuplicateItemError, 409),         # id taken
    (E.DuplicateImageError, 409),        # refused as a duplicate (the body adds 'duplicates')
    (E.CalibrationRequiredError, 409),   # near-duplicate verdicts without a calibration (the hint is appended)
    (E.DuplicateDetectionError, 409),    # too few items to calibrate, binary codes only
    (E.ReadOnlyCatalogError, 403),       # a write to a catalogue on read-only media
    (E.IncompatibleCatalogError, 422),   # e.g. an 'encoder' the catalogue does not have
    (E.CatalogError, 409),               # any other refusal: a conflict with the catalogue's state
    (E.NotFittedError, 409),             # codes used before their hasher was fitted: the catalogue's state
    (E.InvalidParameterError, 422),      # k, box, where, rerank, id, ...
    (E.MissingKeyError, 401),            # a write without an API key (the answer adds WWW-Authenticate)
    (E.AuthError, 403),                  # a wrong key, or a read-only service
    (E.EncoderError, 500),               # the model could not be built or run: the server's fault
    (E.IndexBackendError, 503),          # Milvus is down or refused: retry later (writes are journalled)
    (E.LookalikeError, 400),
)
UNKNOWN_STATUS = 500

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
UNCALIBRATED = {"model": schemas.ErrorResponse,
                "description": "the catalogue has no near-duplicate calibration (POST /duplicates/calibrate), or "
                               "cannot do duplicate detection (binary codes only)"}
DUP_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 409: UNCALIBRATED}


def status_of(err: BaseException | type[BaseException]) -> int:
    """The HTTP status of an exception (or of an exception class)."""
    cls = err if isinstance(err, type) else type(err)
    return next((code for base, code in STATUS if issubclass(cls, base)), UNKNOWN_STATUS)


def error_body(status: int, message: str, kind: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message, "status": status}}).encode()


# an absolute path on the server: a model file in a server-side error's message (a localiser, a trained encoder)
_SERVER_PATH = re.compile(r"(?<![\w.~])/(?:[\w.\-]+/)*[\w.\-]+")


def message_of(err: BaseException, request: Request | None = None) -> str:
    """The message a client reads: the error's own, with the hint how to calibrate for a CalibrationRequiredError
    and the server's catalogue path replaced by 'the catalogue'; a server-side error (5xx: a model that cannot be
    loaded or run) names no file of the server."""
    message = str(err)
    if isinstance(err, E.CalibrationRequiredError):
        message = f"{message} ({CALIBRATE_HINT})"
    service = getattr(request.app.state, "service", None) if request is not None else None
    if service is not None:
        path = service.cat.path
        for text in sorted({str(path), str(path.absolute()), str(path.resolve())}, key=len, reverse=True):
            message = message.replace(f"catalogue {text}", "the catalogue").replace(text, "<catalogue>")
    if status_of(err) >= 500:
        message = _SERVER_PATH.sub("<server file>", message)
    return message


def answer(request: Request, status: int, message: str, kind: str, **extra: Any) -> JSONResponse:
    """The error response (counted in the metrics); ``extra`` fields go beside ``error``."""
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.metrics.errors.labels(kind, str(status)).inc()
    body = {"error": {"type": kind, "message": message, "status": status}, **extra}
    return JSONResponse(jsonable_encoder(body), status_code=status)


async def on_lookalike_error(request: Request, err: Exception) -> JSONResponse:
    status = status_of(err)
    if status >= 500:
        log.exception("unexpected error", exc_info=err)
    extra: dict[str, Any] = {}
    if isinstance(err, E.DuplicateImageError):  # the items the refused image copies
        extra["duplicates"] = [match_out(m, url_prefix(request)) for m in err.matches]
    return answer(request, status, message_of(err, request), type(err).__name__, **extra)


async def on_auth_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, E.AuthError)
    response = answer(request, err.status, err.message, "AuthError")  # one type name for 401 and 403
    if err.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _fields(dependant: Any) -> Iterator[Any]:
    """Every parameter field of a route's dependant, its dependencies' included."""
    for group in ("path_params", "query_params", "header_params", "cookie_params", "body_params"):
        yield from getattr(dependant, group, ())
    for sub in getattr(dependant, "dependencies", ()):
        yield from _fields(sub)


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None, bool]:
    low = high = None
    inclusive = True
    for rule in metadata:
        for name in ("ge", "gt"):
            if getattr(rule, name, None) is not None:
                low, inclusive = getattr(rule, name), name == "ge"
        for name in ("le", "lt"):
            if getattr(rule, name, None) is not None:
                high = getattr(rule, name)
    return low, high, inclusive


def expected_of(request: Request, name: str) -> str | None:
    """What the route's parameter ``name`` accepts, in the words of :mod:`lookalike.validation` (None: unknown)."""
    route = request.scope.get("route")
    field = next((f for f in _fields(getattr(route, "dependant", None))
                  if name in (getattr(f, "alias", None), getattr(f, "name", None))), None)
    info = getattr(field, "field_info", None)
    if info is None:
        return None
    kind = info.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    low, high, inclusive = _bounds(list(info.metadata))
    if typing.get_origin(kind) is Literal:
        return Choice(typing.get_args(kind)).describe()
    if kind is bool:
        return "true or false"
    if kind is int:
        if low is None:
            return "an integer" if high is None else f"an integer <= {int(high)}"
        return Integer(int(low) + (0 if inclusive else 1), None if high is None else int(high)).describe()
    if kind is float:
        if low is None:
            return "a real number" if high is None else f"a real number <= {high}"
        return Real(float(low), inclusive, None if high is None else float(high)).describe()
    return None


def validation_message(request: Request, error: dict[str, Any]) -> str:
    """One request-validation error of FastAPI in the one wording of :func:`~lookalike.validation.parameter_error`."""
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header", "cookie")]
    name = next((p for p in reversed(loc) if not p.isdigit()), "")  # a JSON body's field, not a list position
    if not name:
        reason = str(error.get("msg", "invalid request"))
        in_body = tuple(error.get("loc", ()))[:1] == ("body",)
        return f"The request body must be a JSON object of the documented fields: {reason.lower()}." if in_body \
            else reason
    if error.get("type") == "missing":
        return f"The {name!r} parameter is required."
    expected = expected_of(request, name)
    if expected is None:
        return f"The {name!r} parameter is invalid: {str(error.get('msg', 'invalid')).lower()}."
    return str(parameter_error(name, expected, short_repr(error.get("input"))))


async def on_validation_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    parts = [validation_message(request, e) for e in err.errors()]
    return answer(request, 422, " ".join(dict.fromkeys(parts)) or "invalid request", "InvalidParameterError")


async def on_http_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, StarletteHTTPException)
    kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(err.status_code, "HTTPError")
    response = answer(request, err.status_code, str(err.detail), kind)
    for name, value in (err.headers or {}).items():
        response.headers[name] = value
    return response


def install_handlers(app: FastAPI) -> None:
    """Answer every error of the app with the JSON error body and the status of :data:`STATUS`."""
    app.add_exception_handler(E.LookalikeError, on_lookalike_error)
    app.add_exception_handler(E.AuthError, on_auth_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
