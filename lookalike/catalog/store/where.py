"""Metadata filters: ``{"brand": "acme", "size": 42}`` → an SQL WHERE clause over the items' JSON metadata."""

from __future__ import annotations

import json
from typing import Any

from ...errors import InvalidParameterError
from ...validation import short_repr

__all__ = ["metadata_json", "where_clause"]


def metadata_json(metadata: object) -> str:
    """Validate user metadata (a JSON-serialisable dict with string keys) and serialise it."""
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidParameterError(f"metadata must be a dict with string keys. Got {type(metadata).__name__}.")
    try:
        return json.dumps(metadata, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(f"metadata must be JSON-serialisable: {err}") from err


def _json_path(key: object) -> str:
    if not isinstance(key, str) or not key or any(c in key for c in '"\\') or not key.isprintable():
        raise InvalidParameterError(
            f"A metadata filter key must be a printable string without quotes. Got {short_repr(key)}.")
    return f'$."{key}"'


def where_clause(where: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """SQL for an equality filter on metadata keys, all of which must match."""
    if not where:
        return "", []
    if not isinstance(where, dict):
        raise InvalidParameterError(f"A metadata filter must be a dict. Got {type(where).__name__}.")
    terms: list[str] = []
    params: list[Any] = []
    for key, value in where.items():
        path = _json_path(key)
        if value is None:
            terms.append("json_type(metadata, ?) = 'null'")
            params.append(path)
        elif isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise InvalidParameterError(
                f"A metadata filter integer must be within the 64-bit range [-2**63, 2**63 - 1]. Got "
                f"{short_repr(value)} for {key!r}.")
        elif isinstance(value, str | int | float):
            terms.append("json_extract(metadata, ?) = ?")
            params += [path, value]
        else:
            raise InvalidParameterError(
                f"A metadata filter value must be a string, number, bool or None. Got {short_repr(value)} for "
                f"{key!r}.")
    return "WHERE " + " AND ".join(terms), params
