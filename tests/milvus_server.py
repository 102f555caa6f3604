"""One Milvus Lite server for the test session (started by pymilvus on the first client of its file, stopped with
the process), and a fresh collection name for each index a test builds."""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from pathlib import Path

_DIR: Path | None = None
_NAMES = itertools.count()


def milvus_uri() -> str:
    """``milvus:///<session temp dir>/milvus.db``: the same file (and so one Lite server) all session."""
    global _DIR
    if _DIR is None:
        _DIR = Path(tempfile.mkdtemp(prefix="lookalike-milvus-"))
        atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
    return f"milvus://{_DIR / 'milvus.db'}"


def fresh_collection(prefix: str = "t") -> str:
    return f"{prefix}{next(_NAMES)}"
