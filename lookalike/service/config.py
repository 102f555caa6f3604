"""Settings of the HTTP service: which catalogue, who may write, and how large an upload may be."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidParameterError
from ..images import DEFAULT_LIMITS
from ..validation import Real, check

API_KEY_ENV = "LOOKALIKE_API_KEY"


@dataclass(frozen=True)
class ServiceConfig:
    """How :func:`~lookalike.service.create_app` serves a catalogue.

    Writing is never open by accident: give ``api_key`` (write requests must then send it as ``X-API-Key`` or
    ``Authorization: Bearer``), or say ``read_only=True``; with neither, the service refuses to start.

    Attributes:
        catalog: the catalogue directory (it must exist).
        api_key: the key write requests must carry; None for none.
        read_only: serve without any write endpoint enabled (they answer 403).
        max_upload_bytes: largest encoded image accepted (413 beyond).
        max_pixels: largest image accepted, width * height from the header (413 beyond; decompression bombs);
            the library's default, :class:`~lookalike.images.ImageLimits`.
        max_metadata_bytes: largest metadata or filter JSON accepted (413 beyond).
        max_k: most results one request may ask for.
        thumbnail_cache: how many thumbnails are kept in memory.
        body_timeout: seconds a request body may stop arriving before the request is answered 408.
        backend: the catalogue's index backend for this server (a Milvus URI, ``"local"``); None: the one the
            catalogue keeps as its setting (docs/deployment.md).
    """

    catalog: Path
    api_key: str | None = None
    read_only: bool = False
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = DEFAULT_LIMITS.max_pixels  # the one default of the library, the CLI and the service
    max_metadata_bytes: int = 16 * 2**10
    max_k: int = 200
    thumbnail_cache: int = 4096
    body_timeout: float = 30.0
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.api_key is not None and (not isinstance(self.api_key, str) or len(self.api_key) < 8):
            raise InvalidParameterError("The API key must be a string of at least 8 characters.")
        if self.api_key is None and not self.read_only:
            raise InvalidParameterError(
                f"Refusing to serve writable without an API key: set {API_KEY_ENV} (write requests must then send "
                f"it) or serve read-only (--read-only).")
        if self.api_key is not None and self.read_only:
            raise InvalidParameterError("Give an API key or read_only=True, not both.")
        for name in ("max_upload_bytes", "max_pixels", "max_metadata_bytes", "max_k", "thumbnail_cache"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameterError(f"The {name!r} setting must be an int >= 1. Got {value!r}.")
        check("body_timeout", self.body_timeout, Real(0.0, high=3600.0), owner="ServiceConfig")

    @classmethod
    def from_env(cls, catalog: str | os.PathLike[str], *, read_only: bool = False, backend: str | None = None,
                 **kwargs: int) -> ServiceConfig:
        """Settings with the API key from ``$LOOKALIKE_API_KEY`` (ignored when ``read_only``)."""
        key = None if read_only else (os.environ.get(API_KEY_ENV) or None)
        return cls(Path(catalog), api_key=key, read_only=read_only, backend=backend, **kwargs)

    @property
    def writable(self) -> bool:
        return self.api_key is not None

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: one image plus its form fields."""
        return self.max_upload_bytes + 2 * self.max_metadata_bytes + 64 * 2**10
