"""Who may write: the API key check behind every write endpoint."""

from __future__ import annotations

import hmac

from fastapi import Request

from ..errors import AuthError, MissingKeyError
from .config import API_KEY_ENV, ServiceConfig

__all__ = ["AuthError", "MissingKeyError", "check_write", "presented_key"]


def presented_key(request: Request) -> str | None:
    """The key a request carries: ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def check_write(config: ServiceConfig, request: Request) -> None:
    """Raise AuthError unless this request may write."""
    if config.api_key is None:
        raise AuthError(f"this service is read-only (start it with {API_KEY_ENV} set to allow writes)")
    key = presented_key(request)
    if key is None:
        raise MissingKeyError("this endpoint writes: send the API key as 'X-API-Key: KEY' or 'Authorization: "
                             "Bearer KEY'")
    if not hmac.compare_digest(key.encode("utf-8", "surrogateescape"), config.api_key.encode()):
        raise AuthError("invalid API key")
