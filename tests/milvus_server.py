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


class MilvusServer:
    """Milvus Lite's own server binary listening on a loopback TCP port: the gRPC API a Milvus standalone or
    cluster serves, reached by a ``milvus://127.0.0.1:PORT`` URI (the server code path), and open to several
    processes at once (a Lite file is one process's)."""

    def __init__(self, folder: Path) -> None:
        import socket
        import warnings

        with warnings.catch_warnings():  # milvus-lite 2.5 imports setuptools' deprecated pkg_resources
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            from milvus_lite.server import Server

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._server = Server(str(folder / "server.db"), address=f"127.0.0.1:{self.port}")
        if not (self._server.init() and self._server.start()):
            raise RuntimeError("Milvus Lite's server did not start")
        self.uri = f"milvus://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.stop()
