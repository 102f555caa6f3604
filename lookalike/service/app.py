"""The FastAPI application: REST endpoints, the web page, metrics and the error contract.

Every error answer is JSON ``{"error": {"type": ..., "message": ..., "status": ...}}`` with a 4xx status for
anything a client can cause:

=======================================================  ======
cause                                                    status
=======================================================  ======
malformed body or multipart, truncated/corrupt image     400
missing API key                                          401
wrong API key, or a read-only service                    403
unknown item id, or an item whose image is gone          404
id already taken                                         409
refused as a duplicate (body adds ``duplicates``)        409
duplicate verdicts on an uncalibrated catalogue          409
image, body, metadata or filter over the limits          413
not an image, or a format lookalike refuses              415
bad parameter (k, box, filter, id, rerank)               422
a box outside the image, an encoder it lacks             422
the model cannot run, or an unexpected error             500
=======================================================  ======

The mapping is one table, :data:`lookalike.service.errors.STATUS`.

Duplicate detection (``/duplicates``): ``POST /duplicates/check`` compares an upload with the catalogue without
adding it; ``GET /duplicates`` groups the whole catalogue (a kNN pass over every item: seconds on tens of
thousands of items, and writes wait for it); ``POST /duplicates/calibrate`` (a write) fits the near-duplicate
threshold the verdicts need; ``POST /items`` takes ``check_duplicates`` and ``refuse``.

Similarity judgements (``/triplets``): ``POST /triplets`` (a write) marks items as similar or not similar to a
reference item; ``GET /triplets`` lists them, or exports every triplet as CSV (``format=csv``).

Item ids may contain '/' (folder-indexed items are ``class/name.png``); in URLs they are percent-encoded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..catalog import Catalog
from .config import ServiceConfig
from .core import Service
from .errors import error_body, install_handlers
from .metrics import BodyLimitMiddleware, MetricsMiddleware
from .routes import duplicates, items, partial, search, system, triplets

__all__ = ["create_app"]


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
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes, error_body=error_body,
                       timeout=config.body_timeout)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    install_handlers(app)
    for router in (search.router, partial.router, items.router, duplicates.router, triplets.router, system.router,
                   system.pages):
        app.include_router(router)
    system.mount_files(app)
    return app
