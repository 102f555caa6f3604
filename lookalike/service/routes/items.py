"""The items: their images and thumbnails, pages of them, and the writes (add, update, delete; need the API key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidParameterError
from .. import schemas
from ..core import DEFAULT_THUMBNAIL, THUMBNAIL_SIZES
from ..deps import Prefix, ServiceDep, Writer, read_upload
from ..errors import ADD_ERRORS, ERRORS, WRITE_ERRORS
from ..output import item_out

router = APIRouter(tags=["items"])

# -- reading ------------------------------------------------------------------------------------------------------


@router.get("/items/{item_id:path}/image", responses={**ERRORS, 200: {"content": {"image/*": {}}}},
            response_class=FileResponse)
def item_image(service: ServiceDep, item_id: str) -> FileResponse:
    """The item's original image file."""
    path, media = service.image_file(item_id)
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/items/{item_id:path}/thumbnail", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
            response_class=Response)
def item_thumbnail(
    request: Request, service: ServiceDep, item_id: str,
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


@router.get("/items", response_model=schemas.ItemPage, responses=ERRORS)
def list_items(
    service: ServiceDep, prefix: Prefix,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    where: Annotated[str | None, Query(description='metadata filter, JSON: {"category": "shoes"}')] = None,
) -> Any:
    """A page of items in insertion order, with the total count."""
    return service.page(offset=offset, limit=limit, where=service.parse_object(where, "where"), prefix=prefix)


@router.get("/items/{item_id:path}", response_model=schemas.ItemOut, responses=ERRORS)
def get_item(service: ServiceDep, prefix: Prefix, item_id: str) -> Any:
    """One item."""
    return item_out(service.get(item_id), prefix)


# -- writing ------------------------------------------------------------------------------------------------------


@router.post("/items", response_model=schemas.AddedItem, response_model_exclude_unset=True, status_code=201,
             responses=ADD_ERRORS, dependencies=[Writer])
async def add_item(
    service: ServiceDep, prefix: Prefix,
    image: Annotated[UploadFile, File(description="the image")],
    id: Annotated[str | None, Form(description="the item id (default: from the content hash)")] = None,  # noqa: A002
    metadata: Annotated[str | None, Form(description="a JSON object")] = None,
    check_duplicates: Annotated[bool | None, Form(
        description="absent: compare the image with its nearest items when the catalogue is calibrated, and "
                    "always report exact copies; true: always compare (needs a calibrated catalogue); false: do "
                    "not check. The verdicts are in 'duplicates'.")] = None,
    refuse: Annotated[str | None, Form(
        description="'exact': do not add an exact copy of an item; 'near': nor a near-duplicate (needs a "
                    "calibrated catalogue). A refusal is a 409 listing the 'duplicates'.",
        json_schema_extra={"enum": ["exact", "near"]})] = None,
) -> Any:
    """Add an image to the catalogue (needs the API key), checked for duplicates first unless told not to."""
    refuse_value = service.parse_refuse(refuse)
    data = await read_upload(image)
    meta = service.parse_object(metadata, "metadata")
    item = await run_in_threadpool(service.add, data, item_id=id or None, metadata=meta,
                                   check_duplicates=check_duplicates, refuse=refuse_value)
    return item_out(item, prefix)


@router.put("/items/{item_id:path}", response_model=schemas.ItemOut, responses=WRITE_ERRORS, dependencies=[Writer])
async def update_item(
    service: ServiceDep, prefix: Prefix, item_id: str,
    image: Annotated[UploadFile | None, File(description="a new image")] = None,
    metadata: Annotated[str | None, Form(description="new metadata, a JSON object (replaces the old)")] = None,
) -> Any:
    """Replace an item's image and/or metadata (needs the API key)."""
    data = await read_upload(image) if image is not None else None
    meta = service.parse_object(metadata, "metadata")
    if data is None and meta is None:
        raise InvalidParameterError("nothing to update: send an 'image' file and/or 'metadata'")
    item = await run_in_threadpool(service.update, item_id, data=data, metadata=meta)
    return item_out(item, prefix)


@router.delete("/items/{item_id:path}", response_model=schemas.Deleted, responses=WRITE_ERRORS,
               dependencies=[Writer])
def delete_item(service: ServiceDep, item_id: str) -> Any:
    """Remove an item (needs the API key)."""
    service.remove(item_id)
    return {"deleted": item_id}
