"""Search by an uploaded image (or a region of it), "more like this" from an item, and "more like these, less like
those" from several."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from .. import schemas
from ..deps import Prefix, QueryImage, ServiceDep, image_body
from ..errors import ERRORS

router = APIRouter(tags=["search"])

K_FIELD = {"k": {"type": "integer", "minimum": 1, "default": 10}}
_RERANK = "with learned codes: re-rank this many best candidates by the codes by exact cosine"
_CROP = ("auto: crop the query to the product's box predicted by the catalogue's localiser (setting crop.model; "
         "a box wins); the box is returned as query.box. auto,mask: the same, with the background inside the box "
         "removed (GrabCut; for a catalogue indexed with its background masked, setting crop.mask)")
_ENCODER = "which of the catalogue's encoders to search (its spec; default: the catalogue's default)"
SEARCH_BODY = image_body(
    "The query image: a multipart form (field 'image', plus optional 'box', 'crop', 'k', 'where', 'rerank', "
    "'encoder'), or the raw image bytes as the body (parameters then in the query string).",
    {"box": {"type": "string", "description": "region 'x,y,w,h' in pixels", "example": "10,20,200,150"},
     "crop": {"type": "string", "enum": ["auto", "auto,mask", "none"], "description": _CROP},
     **K_FIELD, "where": {"type": "string", "description": "metadata filter, a JSON object"},
     "rerank": {"type": "integer", "minimum": 1, "description": _RERANK},
     "encoder": {"type": "string", "description": _ENCODER, "example": "efficientnet-lite0"}})

_Where = Annotated[str | None, Query(description='metadata filter, JSON: {"category": "shoes"}')]
_Rerank = Annotated[str | None, Query(description=_RERANK)]
_Encoder = Annotated[str | None, Query(description=_ENCODER)]


@router.post("/search", response_model=schemas.SearchResponse, responses=ERRORS, openapi_extra=SEARCH_BODY)
async def search(
    service: ServiceDep, upload: QueryImage, prefix: Prefix,
    k: Annotated[str | None, Query(description="number of results (default 10)")] = None,
    box: Annotated[str | None, Query(description="region 'x,y,w,h' in pixels of the upright image")] = None,
    where: _Where = None, rerank: _Rerank = None, encoder: _Encoder = None,
    crop: Annotated[str | None, Query(description=_CROP)] = None,
) -> Any:
    """The items most similar to an uploaded image, or to a region (box) of it, best first."""
    k_value = service.parse_k(upload.param("k", k))
    box_value = service.parse_box(upload.param("box", box))
    where_value = service.parse_object(upload.param("where", where), "where")
    rerank_value = service.parse_rerank(upload.param("rerank", rerank))
    encoder_value = service.parse_encoder(upload.param("encoder", encoder))
    crop_value = service.parse_crop(upload.param("crop", crop))
    return await run_in_threadpool(service.search, upload.data, k=k_value, box=box_value, where=where_value,
                                   encoder=encoder_value, rerank=rerank_value, prefix=prefix, crop=crop_value)


@router.get("/items/{item_id:path}/similar", response_model=schemas.SearchResponse, responses=ERRORS)
def similar(service: ServiceDep, prefix: Prefix, item_id: str, k: str | None = None, where: _Where = None,
            rerank: _Rerank = None, encoder: _Encoder = None) -> Any:
    """"More like this": the items most similar to an item of the catalogue, itself excluded."""
    return service.similar(item_id, k=service.parse_k(k), where=service.parse_object(where, "where"),
                           encoder=service.parse_encoder(encoder), rerank=service.parse_rerank(rerank),
                           prefix=prefix)


@router.post("/similar", response_model=schemas.SearchResponse, responses=ERRORS)
def similar_examples(service: ServiceDep, prefix: Prefix, body: schemas.SimilarRequest) -> Any:
    """"More like these, less like those": the items most similar to the liked items (``like``) and least to the
    unliked ones (``unlike``), every example excluded; ``query`` in the answer repeats both lists."""
    where = None if body.where is None else service.parse_object(json.dumps(body.where), "where")
    return service.similar(body.like, unlike=body.unlike, k=service.parse_k(body.k), where=where,
                           encoder=service.parse_encoder(body.encoder), rerank=service.parse_rerank(body.rerank),
                           prefix=prefix)
