"""The service layer without HTTP: batched concurrent searches give what one search at a time gives."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.catalog import Catalog
from lookalike.errors import InvalidParameterError
from lookalike.service.core import SearchBatcher


def test_concurrent_searches_are_batched_and_exact(photo_catalog: Path) -> None:
    with Catalog(photo_catalog) as cat:
        rng = np.random.default_rng(0)
        queries = rng.standard_normal((24, cat.encoder.dim)).astype(np.float32)
        filters = [None, {"part": "whole"}, {"photo": "coffee"}]
        expected = [cat.search_vectors(q[None], k=3 + i % 5, where=filters[i % 3])[0] for i, q in enumerate(queries)]
        batcher = SearchBatcher(cat, max_batch=5)
        got: dict[int, list] = {}

        def run(i: int) -> None:
            got[i] = batcher.search(cat.pipeline.vectors(queries[i][None]), 3 + i % 5, filters[i % 3])[0]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(queries))]
        with batcher._scan_lock:  # a scan in progress: every search queues behind it
            for t in threads:
                t.start()
            while len(batcher._queue) < len(queries):
                time.sleep(0.01)
        for t in threads:
            t.join()
        # batches of up to 5 queries, one retrieval per filter in each: fewer retrievals than queries
        assert batcher.scanned == len(queries) and batcher.scans <= 15 and batcher.scans < len(queries)
        assert [[h.id for h in got[i]] for i in range(len(queries))] == [[h.id for h in e] for e in expected]


def test_a_failing_search_raises_in_its_caller(photo_catalog: Path) -> None:
    with Catalog(photo_catalog) as cat:
        batcher = SearchBatcher(cat)
        query = np.ones((1, cat.encoder.dim), dtype=np.float32)
        with pytest.raises(InvalidParameterError):
            batcher.search(cat.pipeline.vectors(query), 3, {"bad": [1, 2]})
        assert len(batcher.search(cat.pipeline.vectors(query), 3, None)[0]) == 3


def test_one_pixel_limit_for_the_library_the_cli_and_the_service(tmp_path: Path) -> None:
    """Issue 11.8: the CLI accepted 49 M pixels that the server refused (64 M vs 40 M defaults)."""
    import argparse

    from lookalike.cli._common import image_limits
    from lookalike.images import ImageLimits
    from lookalike.service import ServiceConfig

    library = ImageLimits().max_pixels
    assert ServiceConfig(tmp_path, read_only=True).max_pixels == library
    assert image_limits(argparse.Namespace()).max_pixels == library


def test_every_dependency_of_every_route_runs_on_the_event_loop() -> None:
    # FastAPI runs a plain `def` dependency on a worker thread: a thread hand-off per dependency per request,
    # which cost the service's search by upload measurable time (benchmarks/service.py)
    import inspect

    from fastapi.routing import APIRoute

    from lookalike.service.routes import duplicates, items, partial, search, system

    def calls(dependant: object) -> list[object]:
        found = []
        for sub in dependant.dependencies:  # type: ignore[attr-defined]
            found.append(sub.call)
            found.extend(calls(sub))
        return found

    routers = (search.router, partial.router, items.router, duplicates.router, system.router, system.pages)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 10
    deps = [(r.path, c) for r in routes for c in calls(r.dependant)]
    assert len(deps) > 20
    sync = {f"{path}: {getattr(c, '__qualname__', c)}" for path, c in deps
            if not (inspect.iscoroutinefunction(c) or inspect.iscoroutinefunction(type(c).__call__))}
    assert not sync
