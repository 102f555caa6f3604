"""The JSON the service speaks (pydantic models; they make the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    type: str = Field(description="the error class, e.g. NotAnImageError, ImageTooLargeError, ItemNotFoundError")
    message: str = Field(description="what went wrong, for a human")
    status: int = Field(description="the HTTP status, repeated")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer has this body."""

    error: ErrorDetail


class ItemOut(BaseModel):
    id: str
    sha256: str
    width: int
    height: int
    added: float
    updated: float
    metadata: dict[str, Any]
    image_url: str = Field(description="the original image")
    thumbnail_url: str = Field(description="a small JPEG of it")
    similar_url: str = Field(description="GET: the items most like it")


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int = Field(description="items matching the filter")
    offset: int
    limit: int


class Hit(BaseModel):
    rank: int
    id: str
    score: float = Field(description="similarity, higher is better (cosine, or 1 - hamming/bits)")
    distance: float
    metadata: dict[str, Any]
    image_url: str
    thumbnail_url: str
    similar_url: str


class QueryInfo(BaseModel):
    width: int | None = None
    height: int | None = None
    format: str | None = None
    box: str | None = Field(None, description="the region searched, 'x,y,w,h' in pixels")
    item: str | None = Field(None, description="the item searched from (similar)")


class SearchResponse(BaseModel):
    query: QueryInfo
    k: int
    encoder: str
    results: list[Hit]
    timings_ms: dict[str, float] = Field(description="time per stage: decode, encode, search")


class Deleted(BaseModel):
    deleted: str


class Health(BaseModel):
    status: str
    items: int
    writable: bool


class Stats(BaseModel):
    items: int
    encoder: str
    encoders: list[dict[str, Any]]
    index: dict[str, Any]
    bytes_on_disk: int
    catalog: str
    writable: bool
    limits: dict[str, int]
    uptime_s: float
