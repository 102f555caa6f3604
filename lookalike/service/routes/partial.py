"""Partial-image search over HTTP: the catalogue images that contain (part of) an uploaded image, and where."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from ...validation import parameter_error, short_repr
from .. import schemas
from ..deps import Prefix, QueryImage, ServiceDep, image_body
from ..errors import ERRORS
from .search import K_FIELD

router = APIRouter(tags=["search"])

PARTIAL_BODY = image_body(
    "The query image (a crop, or a photo containing a catalogue image): a multipart form (field 'image', plus "
    "optional 'box' and 'k'), or the raw image bytes as the body (parameters then in the query string).",
    {"box": {"type": "string", "description": "region 'x,y,w,h' in pixels", "example": "10,20,200,150"},
     "fallback": {"type": "string", "description": "'true': fill up to k with the global search", "example": "true"},
     **K_FIELD})


@router.post("/search/partial", response_model=schemas.PartialResponse, responses=ERRORS,
             openapi_extra=PARTIAL_BODY)
async def search_partial(
    service: ServiceDep, upload: QueryImage, prefix: Prefix,
    k: Annotated[str | None, Query(description="number of results (default 10)")] = None,
    box: Annotated[str | None, Query(description="region 'x,y,w,h' in pixels of the upright image")] = None,
    fallback: Annotated[str | None, Query(description="'true': fill up to k with the global search's results "
                                          "(in 'fallback', after the verified ones)")] = None,
) -> Any:
    """Catalogue images containing the query or part of it, verified by a homography, most inliers first; each
    result has the matched box in the catalogue image and in the query. The catalogue must have been indexed with
    ``--partial`` (else 422)."""
    k_value = service.parse_k(upload.param("k", k))
    box_value = service.parse_box(upload.param("box", box))
    flag = upload.param("fallback", fallback)
    if flag not in (None, "", "true", "false", "1", "0"):
        raise parameter_error("fallback", "'true' or 'false'", short_repr(flag))
    return await run_in_threadpool(service.search_partial, upload.data, k=k_value, box=box_value, prefix=prefix,
                                   fallback=flag in ("true", "1"))
