"""Duplicate detection: check an upload without adding it, the report of the whole catalogue, and the
near-duplicate calibration the verdicts need."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import schemas
from ..core import CALIBRATE_BOUNDS
from ..deps import Prefix, QueryImage, ServiceDep, Writer, image_body
from ..errors import DUP_ERRORS, UNCALIBRATED, WRITE_ERRORS
from ..output import report_out
from .search import K_FIELD

router = APIRouter(tags=["duplicates"])

CHECK_BODY = image_body(
    "The image to check: a multipart form (field 'image', plus optional 'k'), or the raw image bytes as the body.",
    K_FIELD)


def _bounds(name: str) -> dict[str, Any]:
    """The bounds of a calibration parameter (the service checks them again for library callers)."""
    low, high = CALIBRATE_BOUNDS[name]
    return {"ge": low, "le": high}


@router.post("/duplicates/check", response_model=schemas.DuplicateCheck, responses=DUP_ERRORS,
             openapi_extra=CHECK_BODY)
async def check_duplicates(
    service: ServiceDep, upload: QueryImage, prefix: Prefix,
    k: Annotated[str | None, Query(description="nearest items judged (default 10)")] = None,
) -> Any:
    """Exact, near-duplicate and similar items of an uploaded image, which is not added (needs a calibrated
    catalogue)."""
    k_value = service.parse_k(upload.param("k", k))
    return await run_in_threadpool(service.find_duplicates, upload.data, k=k_value, prefix=prefix)


@router.get("/duplicates", response_model=schemas.DedupReportOut,
            responses={**DUP_ERRORS, 200: {"content": {"text/csv": {}},
                                           "description": "the report (JSON), or one CSV row per grouped item"}})
def duplicates(
    service: ServiceDep, prefix: Prefix,
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
    return report_out(report, k_value, prefix)


@router.get("/duplicates/calibration", response_model=schemas.CalibrationOut | None, responses=DUP_ERRORS)
def calibration(service: ServiceDep) -> Any:
    """The catalogue's near-duplicate calibration, or null when it has none."""
    return service.calibration()


@router.post("/duplicates/calibrate", response_model=schemas.CalibrationOut,
             responses={**WRITE_ERRORS, 409: UNCALIBRATED}, dependencies=[Writer])
def calibrate(
    service: ServiceDep,
    target_precision: Annotated[float, Query(description="precision the threshold aims at on generated copies",
                                             **_bounds("target_precision"))] = 0.99,
    sample: Annotated[int, Query(description="catalogue items edited into copies (each is encoded: the cost)",
                                 **_bounds("sample"))] = 200,
    seed: Annotated[int, Query(**_bounds("seed"))] = 0,
) -> Any:
    """Fit the near-duplicate threshold on edited copies of a sample of the catalogue's own items, and store it
    with the catalogue (needs the API key; writes wait while it runs)."""
    return service.calibrate(target_precision=target_precision, sample=sample, seed=seed)
