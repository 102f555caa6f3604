"""Small checks and helpers of the catalogue façade."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidParameterError
from ..validation import short_repr

_RESERVED = ("schema_version", "created", "search_encoder")


def setting_name(name: object) -> str:
    if not isinstance(name, str) or not name or name in _RESERVED or name.startswith("index.backend"):
        raise InvalidParameterError(f"A setting name must be a string other than {', '.join(_RESERVED)} and "
                                    f"index.backend* (set with Catalog(backend=...) or --backend, which also "
                                    f"journal every change for it). Got {short_repr(name)}.")
    return name


def check_id(item_id: object) -> str:
    if not isinstance(item_id, str) or not item_id or len(item_id) > 1024 or not item_id.isprintable():
        raise InvalidParameterError(
            f"An item id must be a printable string of 1–1024 characters. Got {short_repr(item_id)}.")
    return item_id


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
