"""The dependencies of the routers: the Service of the app, the write-key check, the URL prefix, and the reader of
a query image (a multipart form's 'image' file with its fields, or the raw body)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.datastructures import UploadFile as StarletteUploadFile

from ..errors import InvalidParameterError, UnsupportedFormatError
from .auth import check_write
from .core import Service
from .output import url_prefix

__all__ = ["Prefix", "QueryImage", "QueryUpload", "ServiceDep", "Writer", "image_body", "read_upload",
           "require_writer"]

MAX_FORM_FIELDS = 8

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="needed by write endpoints (or send 'Authorization: Bearer KEY')")


# The dependencies here are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency on
# a worker thread, and each such hand-off costs a thread wake-up (about 0.1-0.3 ms on 2 busy cores) per request.
async def get_service(request: Request) -> Service:
    """The Service the app serves (``app.state.service``)."""
    service: Service = request.app.state.service
    return service


async def _prefix(request: Request) -> str:
    return url_prefix(request)


ServiceDep = Annotated[Service, Depends(get_service)]
Prefix = Annotated[str, Depends(_prefix)]


async def require_writer(request: Request, service: ServiceDep,
                   key: Annotated[str | None, Depends(_api_key_header)]) -> None:
    """Refuse (AuthError: 401 or 403) a request that may not write."""
    check_write(service.config, request)


Writer = Depends(require_writer)


async def read_upload(upload: object, field: str = "image") -> bytes:
    if not isinstance(upload, StarletteUploadFile):
        raise InvalidParameterError(f"the {field!r} field must be a file upload (multipart/form-data)")
    return await upload.read()


@dataclass(frozen=True)
class QueryUpload:
    """A query image and, when it came as a multipart form, the form's other fields (``fields``; None for a raw
    body, whose parameters are in the query string)."""

    data: bytes
    fields: dict[str, Any] | None

    def param(self, name: str, query_value: object) -> object:
        """A parameter: the form's field when the form has it, else the query string's value."""
        if self.fields is not None and name in self.fields:
            return self.fields[name]
        return query_value


async def query_upload(request: Request, service: ServiceDep) -> QueryUpload:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        async with request.form(max_files=1, max_fields=MAX_FORM_FIELDS,
                                max_part_size=service.config.max_body_bytes) as form:
            if "image" not in form:
                raise InvalidParameterError("the multipart form has no 'image' file field")
            data = await read_upload(form["image"])
            fields = {name: value for name, value in form.multi_items() if name != "image"}
        return QueryUpload(data, fields)
    if ctype in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
        raise UnsupportedFormatError(
            "<request>", f"send the image as multipart/form-data (field 'image') or as the raw body, not {ctype}")
    return QueryUpload(await request.body(), None)


QueryImage = Annotated[QueryUpload, Depends(query_upload)]


def image_body(description: str, fields: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body of an image upload: multipart (field 'image' plus ``fields``) or the raw bytes."""
    binary = {"type": "string", "format": "binary"}
    return {"requestBody": {"required": True, "description": description, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": binary, **fields}}},
        "application/octet-stream": {"schema": binary},
        "image/*": {"schema": binary},
    }}}
