"""Bounded producer/consumer over a thread pool: prepare the next chunk while the caller works on this one.

Decoding and resizing (Pillow) and inference (ONNX Runtime) both release the GIL, so threads overlap them.
At most two chunks are in flight, so memory stays bounded however long the input is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def pipelined(jobs: Iterable[T], fn: Callable[[T], R], chunk_size: int, workers: int = 2) -> Iterator[list[R]]:
    """Yield ``[fn(job) for job in chunk]`` chunk by chunk, computing the next chunk while the caller works.

    One job (a query) runs on the caller's thread: starting a pool and handing the job to it cost more than the
    job (0.3-1 ms against a 0.2 ms resize, on 2 busy cores)."""
    if isinstance(jobs, Sequence) and len(jobs) <= 1:
        if jobs:
            yield [fn(jobs[0])]
        return
    it = iter(jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit() -> list[Future[R]]:
            return [pool.submit(fn, job) for job in islice(it, chunk_size)]

        pending = submit()
        while pending:
            following = submit()
            yield [f.result() for f in pending]
            pending = following
