"""The service's one partial-image retriever: made on first use, or loaded in the background at start.

Loading the descriptor index reads every described image's descriptors (77 s for 10,000 photographs at the default
spec, BENCHMARKS.md "Partial-image search at 10,000 photographs"). A service that did that on its first partial
query made that query wait a minute; one that did it before answering anything would look down for a minute. So
:meth:`PartialState.preload` (called by ``Service.warm_up`` when the catalogue has partial descriptors) loads it on a
background thread while the global search is already served; a partial query that arrives meanwhile waits for the
load (the retriever's lock), then finds nothing left to load.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..partial import PartialSearch

__all__ = ["PartialState"]
log = logging.getLogger("lookalike.service")


class PartialState:
    """Holds the catalogue's :class:`~lookalike.partial.PartialSearch` (thread-safe).

    ``ready`` is set once the index is loaded (by :meth:`preload` or a first query); ``error`` is the preload's
    failure, if it failed (queries then load the index themselves and report their own error); ``load_seconds`` how
    long the preload took.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.load_seconds: float | None = None
        self._retriever: PartialSearch | None = None
        self._lock = threading.Lock()

    def get(self) -> PartialSearch:
        """The retriever (made now if it was not)."""
        from ..partial import PartialSearch

        with self._lock:
            if self._retriever is None:
                self._retriever = PartialSearch(self.catalog)
            return self._retriever

    def enabled(self) -> bool:
        """Whether the catalogue has partial-search descriptors (``lookalike index --partial``)."""
        from ..partial import SETTING

        return self.catalog.setting(SETTING) is not None

    def preload(self) -> threading.Thread | None:
        """Start loading the index on a daemon thread (returned); None when the catalogue has no partial
        descriptors."""
        if not self.enabled():
            return None
        thread = threading.Thread(target=self._load, name="lookalike-partial-preload", daemon=True)
        thread.start()
        return thread

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self.get().refresh()
        except Exception as err:  # a closed catalogue, an unreadable store: the first query reports it
            self.error = err
            log.warning("partial-search index not preloaded: %s", err)
            return
        self.load_seconds = time.perf_counter() - t0
        self.ready.set()
        log.info("partial-search index loaded in %.1f s", self.load_seconds)
