"""The JSON the service speaks (pydantic models; they make the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..catalog.query import MAX_EXAMPLES


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
    box: str | None = Field(None, description="the region searched, 'x,y,w,h' in pixels (with crop=auto: the "
                            "predicted box; null when nothing looked like an object and the whole image was searched)")
    crop: str | None = Field(None, description="'auto' when the region was predicted by the localiser ('auto,mask': "
                             "and its background removed)")
    item: str | None = Field(None, description="the item searched from (GET /items/{id}/similar)")
    like: list[str] | None = Field(None, description="the items searched from (POST /similar): more like these")
    unlike: list[str] | None = Field(None, description="and less like these (POST /similar)")


class SearchResponse(BaseModel):
    query: QueryInfo
    k: int
    encoder: str
    results: list[Hit]
    timings_ms: dict[str, float] = Field(description="time per stage: decode, encode, search")


class SimilarRequest(BaseModel):
    """``POST /similar``: the items most like the ``like`` items and least like the ``unlike`` ones."""

    model_config = ConfigDict(extra="forbid")

    like: list[str] = Field(max_length=MAX_EXAMPLES, description="item ids: more like these (at least one)",
                            examples=[["shoe-1", "shoe-7"]])
    unlike: list[str] = Field([], max_length=MAX_EXAMPLES, description="item ids: less like these (the query is "
                              "the liked items' mean vector minus a weight times the unliked ones' mean); at most "
                              f"{MAX_EXAMPLES} ids in all, none in both lists, every one left out of the results",
                              examples=[["boot-3"]])
    k: StrictInt | None = Field(None, ge=1, description="number of results (default 10)")
    where: dict[str, Any] | None = Field(None, description='metadata filter, e.g. {"category": "shoes"}')
    encoder: str | None = Field(None, description="which of the catalogue's encoders to search (default: the "
                                "catalogue's default)")
    rerank: StrictInt | None = Field(None, ge=0, description="with learned codes: re-rank this many best candidates "
                                     "by exact cosine (0: the codes' own order)")


class BoxOut(BaseModel):
    x: int
    y: int
    w: int
    h: int


class PartialHit(BaseModel):
    rank: int
    id: str
    score: float = Field(description="RANSAC inliers / the query's keypoints: the share of the query explained "
                         "(method 'dense': the correlation of the query's pixels with the box)")
    inliers: int
    matches: int = Field(description="descriptor matches before geometric verification")
    box: BoxOut = Field(description="where the query matched, in the catalogue image's pixels")
    query_box: BoxOut = Field(description="the part of the query that lies on the item, in the query's pixels")
    metadata: dict[str, Any]
    method: str = Field("keypoints", description="'keypoints' (verified by RANSAC) or 'dense' (a textureless "
                        "query found by correlation among the global search's first items; inliers 0)")
    image_url: str
    thumbnail_url: str
    similar_url: str


class PartialResponse(BaseModel):
    query: QueryInfo
    k: int
    keypoints: int = Field(description="keypoints described in the query")
    reason: str | None = Field(None, description="why there are no results (tiny or featureless query, no "
                               "candidate, none verified)")
    results: list[PartialHit]
    timings_ms: dict[str, float] = Field(description="time per stage: search (describe, vote, verify)")
    fallback: list[Hit] = Field(default_factory=list, description="with fallback=true: the global search's results "
                                "that are not among the verified ones, ranked after them, up to k in all")


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


# -- duplicates ---------------------------------------------------------------------------------------------------


class DuplicateMatchOut(BaseModel):
    """A catalogue item compared with an image."""

    id: str
    path: str | None = Field(None, description="the item's stored image file")
    verdict: str = Field(description="'exact' (same content or pixels), 'near-duplicate' (an edited copy, by the "
                                     "calibrated threshold) or 'similar' (alike, not a copy)")
    evidence: float = Field(description="summed -log10 distractor rates of the signals: higher is surer")
    cosine: float = Field(description="cosine of the embeddings")
    geometric: float | None = Field(None, description="best crop/pad/mirror-aware thumbnail correlation (null: "
                                                      "not measured)")
    image_url: str
    thumbnail_url: str
    similar_url: str


class AddedItem(ItemOut):
    duplicates: list[DuplicateMatchOut] | None = Field(
        None, description="with check_duplicates or refuse: the verdicts on the nearest items, duplicates first")


class DuplicateRefusal(ErrorResponse):
    """``POST /items`` with ``refuse``: the image was not added; ``duplicates`` are the items it copies."""

    duplicates: list[DuplicateMatchOut]


class DuplicateCheck(BaseModel):
    k: int
    duplicates: list[DuplicateMatchOut] = Field(description="exact, near-duplicate, then similar items, best first")
    timings_ms: dict[str, float]


class GroupItem(BaseModel):
    id: str
    path: str | None = None
    width: int
    height: int
    added: float
    keep: bool = Field(description="the suggested keeper of its group")
    image_url: str
    thumbnail_url: str
    similar_url: str


class DuplicatePair(BaseModel):
    a: str
    b: str
    verdict: str
    evidence: float
    cosine: float
    geometric: float | None = None


class DuplicateGroupOut(BaseModel):
    keeper: str = Field(description="the item to keep (the largest, then the oldest)")
    size: int
    items: list[GroupItem]
    pairs: list[DuplicatePair] = Field(description="the exact or near-duplicate pairs that join the group")


class CalibrationOut(BaseModel):
    """How the near-duplicate threshold was fitted, and what it is expected to achieve."""

    model_config = ConfigDict(extra="allow")

    encoder: str
    target_precision: float
    threshold: float = Field(description="evidence from which a pair is a near-duplicate")
    precision: float = Field(description="expected on generated copies (out of fold)")
    recall: float = Field(description="expected on generated copies (out of fold)")
    recall_by_edit: dict[str, float]
    sample: int
    k: int
    seed: int
    created: float
    signals: list[str] = []
    notes: list[str] = []


class DedupReportOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    k: int = Field(description="neighbours checked per item")
    items: int
    groups: list[DuplicateGroupOut]
    duplicates: int = Field(description="items that are not their group's keeper")
    pairs_checked: int
    seconds: float
    calibration: CalibrationOut


class JudgementOut(BaseModel):
    reference: str
    item: str
    similar: bool = Field(description="true: similar to the reference; false: not similar")
    added: float


class JudgementCounts(BaseModel):
    judgements: int
    references: int = Field(description="items judged against")
    triplets: int = Field(description="(reference, similar, not similar) triplets: similar x not similar per "
                                      "reference")


class JudgementPage(BaseModel):
    judgements: list[JudgementOut]
    counts: JudgementCounts = Field(description="of the reference asked about, or of the whole catalogue")
    offset: int
    limit: int


class JudgeIn(BaseModel):
    """Judgements about one reference item (each replaces an earlier one of the same pair)."""

    model_config = ConfigDict(extra="forbid")
    reference: str = Field(description="the reference item's id")
    similar: list[str] = Field(default=[], description="ids of items similar to the reference")
    dissimilar: list[str] = Field(default=[], description="ids of items not similar to it")
    clear: list[str] = Field(default=[], description="ids whose judgement to forget")


class Judged(BaseModel):
    reference: str
    counts: JudgementCounts = Field(description="the reference's, after this write")
