"""Bulk encoding on Ray (``lookalike index DIR --ray [ADDRESS]``): decoding and the models run on Ray actors, each
holding its own encoders (one ONNX Runtime session each), and the results stream back to this process, which
commits them chunk by chunk exactly as a local run does (``folder.py``).

- **Work unit**: a chunk of file paths (``CHUNK``, 64) with the content hashes the catalogue holds for them; an
  actor reads, hashes, decodes and prepares each file (``_ingest.prepare_image``, so an unchanged file is
  recognised there and never decoded), runs the catalogue's float encoders on the chunk and returns the images'
  facts, features and vectors (not the model inputs). Learned codes (hashed encoders) are computed here from the
  float vectors, as a local run does.
- **Flow**: at most two chunks in flight per actor, results taken in submission order, so memory stays bounded and
  items are committed in the same order as without Ray.
- **Crash and resume**: what was committed stays (each chunk is one transaction); a rerun finds those files
  unchanged by content hash and encodes only the rest.
- **Where files live**: actors read the paths themselves, so on a cluster every node must see the folder at the
  same path (a shared file system); ``ray.init(address)`` joins an existing cluster, no address starts a local
  Ray with this machine's cores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..encoders import Encoder, get_encoder
from ..encoders.hashed import DerivedEncoder
from ..errors import InvalidParameterError, LookalikeError
from ..images import ImageLimits
from . import _ingest

log = logging.getLogger("lookalike.catalog")


@dataclass
class Encoded:
    """A chunk's outcomes (Prepared without model inputs, Unchanged, ImageError) and, for the Prepared ones in
    order, every encoder's vectors: encoder number → (n, width)."""

    outcomes: list[_ingest.Outcome]
    vectors: dict[int, np.ndarray]


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - a declared dependency of the scale extra
        raise LookalikeError(f"--ray needs Ray (pip install 'lookalike[scale]'): {err}") from err
    return ray


def _one_thread(spec: str) -> Encoder:
    """The encoder of ``spec`` with one intra-op thread where it takes the option: an actor holds one CPU, and
    ONNX Runtime's default (a thread per core) in every actor oversubscribes the machine."""
    try:
        return get_encoder(spec, threads=1)
    except InvalidParameterError:
        return get_encoder(spec)


class _Worker:
    """One Ray actor's state: the catalogue's float encoders, built from their specs in the worker process."""

    def __init__(self, specs: list[tuple[int, str]], limits: ImageLimits, draft: tuple[int, int] | None,
                 features: list[str]) -> None:
        import lookalike  # noqa: F401 - registers the per-item features (lookalike.dedup) as the driver has them

        from .extensions import registered_features

        missing = sorted(set(features) - set(registered_features()))
        if missing:
            raise LookalikeError(f"the Ray worker lacks the per-item features {missing}: import their module there")
        self.encoders = [(num, _one_thread(spec)) for num, spec in specs]
        self.limits, self.draft = limits, draft

    def run(self, paths: list[str], known: dict[str, str]) -> Encoded:
        outcomes = [_ingest.prepare_image(p, self.encoders, self.limits, draft=self.draft, known=known)
                    for p in paths]
        ready = [o for o in outcomes if isinstance(o, _ingest.Prepared)]
        vectors = _ingest.run_encoders(ready, self.encoders)
        for p in ready:
            p.arrays = {}  # the model inputs stay in the worker
        return Encoded(outcomes, vectors)


START_TRIES = 3


def _init(ray: Any, options: dict[str, Any]) -> None:
    """``ray.init`` with up to ``START_TRIES`` tries. Ray gives a starting raylet a fixed 30 s to register, which a
    loaded 2-core machine can miss; the processes of a start that failed are killed and reaped before the next try
    (``ray.shutdown`` does not know them: the failed node never became Ray's global node)."""
    for attempt in range(1, START_TRIES + 1):
        try:
            ray.init(**options)
            return
        except Exception as exc:  # noqa: BLE001 - whatever Ray raises, its processes are cleaned up first
            _kill_failed_node(exc)
            ray.shutdown()
            if attempt == START_TRIES or "address" in options:  # a cluster that refuses us is not retried
                raise LookalikeError(f"Ray did not start ({exc}); see the logs under /tmp/ray") from exc
            log.warning("Ray did not start (%s); trying again (%d of %d)", exc, attempt + 1, START_TRIES)


def _kill_failed_node(exc: BaseException) -> None:
    from ray._private.node import Node

    tb = exc.__traceback__
    while tb is not None:
        node = tb.tb_frame.f_locals.get("self")
        if isinstance(node, Node):
            node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
            return
        tb = tb.tb_next


class RayEncoding:
    """Encoding chunks of paths on ``workers`` Ray actors (see the module doc)."""

    def __init__(self, encoders: Sequence[tuple[int, Encoder]], limits: ImageLimits, draft: tuple[int, int] | None,
                 *, address: str | None = None, workers: int | None = None) -> None:
        self.encoders = list(encoders)
        self.base = [(num, enc) for num, enc in self.encoders if not isinstance(enc, DerivedEncoder)]
        bases = {enc.spec for _, enc in self.base}
        hashed = [enc for _, enc in self.encoders if isinstance(enc, DerivedEncoder)]
        orphans = [enc.spec for enc in hashed if enc.base.spec not in bases]
        if orphans:
            raise InvalidParameterError(f"--ray encodes with the catalogue's float encoders; the codes {orphans} have "
                                        "no float encoder in this catalogue to hash from: index without --ray")
        ray = _ray()
        self._started = not ray.is_initialized()  # a Ray this process started is shut down by close()
        if self._started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            if address not in (None, "", "local"):
                options["address"] = address
            _init(ray, options)
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        from .extensions import registered_features

        actor = ray.remote(num_cpus=1)(_Worker)
        specs = [(num, enc.spec) for num, enc in self.base]
        self.actors = [actor.remote(specs, limits, draft, sorted(registered_features())) for _ in range(count)]
        self._ray = ray
        log.info("encoding on %d Ray actors (%s)", count, address or "a local Ray")

    def map(self, chunks: Iterable[list[str]], known: dict[str, str]) -> Iterator[Encoded]:
        """Each chunk's :class:`Encoded`, in order, with learned codes filled in here."""
        ray, pending = self._ray, []
        it = iter(chunks)
        known_ref = ray.put(known)
        for turn in range(2 * len(self.actors)):  # two chunks in flight per actor
            chunk = next(it, None)
            if chunk is None:
                break
            pending.append(self.actors[turn % len(self.actors)].run.remote(chunk, known_ref))
        turn = len(pending)
        while pending:
            encoded = ray.get(pending.pop(0))
            chunk = next(it, None)
            if chunk is not None:
                pending.append(self.actors[turn % len(self.actors)].run.remote(chunk, known_ref))
                turn += 1
            yield self._with_codes(encoded)

    def _with_codes(self, encoded: Encoded) -> Encoded:
        by_spec = {enc.spec: num for num, enc in self.base}
        for num, enc in self.encoders:
            if isinstance(enc, DerivedEncoder):
                floats = encoded.vectors[by_spec[enc.base.spec]]
                encoded.vectors[num] = enc.derive(floats) if len(floats) else enc.run_prepared([])
        return encoded

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
        if self._started:
            self._ray.shutdown()
