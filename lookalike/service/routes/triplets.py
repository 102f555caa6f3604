"""People's similarity judgements, the triplets of deep ranking (issue 14, part 3): read them (JSON, or the
triplets as CSV for ``lookalike train triplet --data``), and judge (needs the API key)."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidParameterError, PayloadTooLargeError
from ...validation import short_repr
from .. import schemas
from ..deps import ServiceDep, Writer
from ..errors import ERRORS, WRITE_ERRORS

router = APIRouter(tags=["triplets"])

MAX_JUDGE_BODY = 256 * 2**10  # bytes of JSON: 1,000 ids (the most one judgement names) of up to ~250 characters
_FIELDS = ("reference", "similar", "dissimilar", "clear")
JUDGE_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": schemas.JudgeIn.model_json_schema(),
    "example": {"reference": "shirts/12.jpg", "similar": ["shirts/40.jpg"], "dissimilar": ["dresses/3.jpg"]}}}}}


@router.get("/triplets", response_model=schemas.JudgementPage, responses={
    **ERRORS, 200: {"content": {"text/csv": {}}, "description": "the judgements (JSON), or every triplet (CSV)"}})
def list_judgements(
    service: ServiceDep,
    reference: Annotated[str | None, Query(description="only the judgements about this item")] = None,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "csv"], Query(  # noqa: A002
        description="json: a page of judgements; csv: every triplet as query,positive,negative item ids (the "
                    "rows `lookalike train triplet --data FILE.csv` reads, with the ids as paths under the "
                    "indexed folder)")] = "json",
) -> Any:
    """The similarity judgements people made (a reference item, an item, similar or not), and their counts."""
    judgements = service.cat.judgements
    if format == "csv":
        if reference is not None:
            raise InvalidParameterError("the CSV export is every triplet of the catalogue: it takes no 'reference'")
        out = io.StringIO()
        judgements.write_csv(out)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="triplets.csv"'})
    page = judgements.list(reference, offset=offset, limit=limit)
    return {"judgements": [j.to_dict() for j in page], "counts": judgements.counts(reference), "offset": offset,
            "limit": limit}


@router.post("/triplets", response_model=schemas.Judged, responses=WRITE_ERRORS, dependencies=[Writer],
             openapi_extra=JUDGE_BODY)
async def judge(service: ServiceDep, request: Request) -> Any:
    """Mark items as similar or not similar to a reference item, or forget such marks (needs the API key). A
    pair judged again takes the new verdict. Nothing is written when any id is bad."""
    body = await request.body()
    if len(body) > MAX_JUDGE_BODY:
        raise PayloadTooLargeError(f"a judgement's JSON body must be at most {MAX_JUDGE_BODY} bytes. Got "
                                   f"{len(body)} bytes instead.")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InvalidParameterError(f"the body must be a JSON object {{'reference': ID, 'similar': [IDS], "
                                    f"'dissimilar': [IDS], 'clear': [IDS]}}. Got {short_repr(body)}.") from err
    if not isinstance(obj, dict):
        raise InvalidParameterError(f"the body must be a JSON object with 'reference'. Got {short_repr(obj)}.")
    unknown = sorted(set(obj) - set(_FIELDS))
    if unknown or "reference" not in obj:
        raise InvalidParameterError(f"the body takes {', '.join(_FIELDS)} ('reference' required). Got "
                                    f"{short_repr(sorted(obj))}.")
    lists = {name: obj.get(name, []) for name in _FIELDS[1:]}
    counts = await run_in_threadpool(service.judge, obj["reference"], **lists)
    return {"reference": obj["reference"], "counts": counts}
