"""Prometheus metrics: request latency per route and status, time per stage (decode, encode, search, write).

Each app has its own registry, so several apps (tests) never collide; ``GET /metrics`` exposes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "lookalike_request_seconds", "HTTP request latency by route template, method and status",
            ["route", "method", "status"], buckets=BUCKETS, registry=self.registry)
        self.stages = Histogram(
            "lookalike_stage_seconds", "Time spent per stage of a request: decode, encode, search, write, thumbnail",
            ["stage"], buckets=BUCKETS, registry=self.registry)
        self.errors = Counter(
            "lookalike_errors", "Error answers by type", ["type", "status"], registry=self.registry)
        self.items = Gauge("lookalike_items", "Items in the catalogue", registry=self.registry)

    @contextlib.contextmanager
    def stage(self, name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
        """Time a block as stage ``name``; also store its milliseconds in ``timings`` if given."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.stages.labels(name).observe(dt)
            if timings is not None:
                timings[name] = round(dt * 1000, 3)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request, labelled by its route template (not the raw path)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
            self.metrics.requests.labels(name, scope["method"], str(status[0])).observe(time.perf_counter() - t0)


class BodyLimitMiddleware:
    """Read request bodies up to ``limit`` bytes before the app sees them: 413 above it, 400 for broken multipart.

    A declared ``Content-Length`` above the limit is refused at once, before any of the body arrives; a body
    without one (chunked) is read up to the limit and then refused, so no request ever holds more than ``limit``
    bytes in memory. A body that stops arriving for ``timeout`` seconds is answered 408. A multipart body must end
    with its closing boundary (Starlette's parser would otherwise accept a truncated body and leave the unfinished
    part's temporary file open), and its form fields must be UTF-8 (Starlette would read other bytes as Latin-1).
    """

    def __init__(self, app: Any, limit: int, error_body: Any, timeout: float = 30.0) -> None:
        self.app = app  # error_body(status, message, kind) -> bytes
        self.limit = limit
        self.error_body = error_body
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 18):
            await self._refuse(send, 400, "invalid Content-Length header")
            return
        if declared is not None and int(declared) > self.limit:
            await self._refuse(send, 413, f"request body of {int(declared)} bytes is over the limit of {self.limit}",
                               receive)
            return
        chunks, total, more = [], 0, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                await self._refuse(send, 408, f"the request body stopped arriving for {self.timeout:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                await self._refuse(send, 413, f"request body is over the limit of {self.limit} bytes",
                                   receive if message.get("more_body", False) else None)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _multipart_problem(headers.get(b"content-type", b""), body)
        if problem:
            await self._refuse(send, 400, f"malformed multipart body: {problem}")
            return
        sent = [False]

        async def replay() -> dict[str, Any]:
            if sent[0]:
                return await receive()
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _drain(self, receive: Any, seconds: float = 2.0) -> None:
        """Read and drop the rest of a refused body (up to 4x the limit, for at most ``seconds``), so a client still
        sending reads the answer (sent already) instead of a reset connection; then the connection closes."""
        total, more = 0, True
        deadline = asyncio.get_running_loop().time() + seconds
        while more and total <= 4 * self.limit:
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except TimeoutError:
                return
            if message["type"] == "http.disconnect":
                return
            total += len(message.get("body", b""))
            more = message.get("more_body", False)

    async def _refuse(self, send: Any, status: int, message: str, drain: Any = None) -> None:
        """Answer with the error; with ``drain`` (the receive channel of a body still arriving), the whole answer is
        sent first, and the response completes only after the rest of the body was drained (:meth:`_drain`)."""
        kind = {413: "PayloadTooLargeError", 408: "RequestTimeoutError"}.get(status, "MalformedRequestError")
        body = self.error_body(status, message, kind)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": drain is not None})
        if drain is not None:
            await self._drain(drain)
            await send({"type": "http.response.body", "body": b""})


def _multipart_problem(content_type: bytes, body: bytes) -> str | None:
    """Why a multipart/form-data body is malformed (no boundary, not closed), or None (also for other types)."""
    kind, _, params = content_type.decode("latin-1").partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    boundary = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary or len(boundary) > 200:
        return "the Content-Type has no valid boundary"
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.rstrip(b"\r\n").endswith(delimiter + b"--"):
        return "it does not end with the closing boundary (truncated?)"
    for part in body.split(delimiter)[1:-1]:
        head, _, data = part.partition(b"\r\n\r\n")
        try:
            head.decode("utf-8")
            if b"filename=" not in head:  # a form field, not a file
                data.removesuffix(b"\r\n").decode("utf-8")
        except UnicodeDecodeError:
            name = head.partition(b'name="')[2].partition(b'"')[0].decode("utf-8", "replace")
            return f"the form field {name!r} is not UTF-8 text"
    return None
