"""``serve``: the catalogue over HTTP (REST API and web page)."""

from __future__ import annotations

import argparse
import os

from ..errors import InvalidParameterError
from ..validation import Real, check, check_int
from ._common import Commands, catalog_path

MAX_UPLOAD_MB = 1024


def register(commands: Commands) -> None:
    p = commands.add("serve", cmd_serve, "serve the catalogue over HTTP: REST API (/docs) and a web page (/)",
                     with_results=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--read-only", action="store_true",
                   help="serve without write endpoints (else $LOOKALIKE_API_KEY must be set; writes need it)")
    p.add_argument("--max-upload-mb", type=float, default=20.0,
                   help=f"largest image upload in MiB, at most {MAX_UPLOAD_MB} (default 20)")


def cmd_serve(args: argparse.Namespace) -> int:
    check_int("--port", args.port, 0, 65535)
    check("--max-upload-mb", args.max_upload_mb, Real(0, high=MAX_UPLOAD_MB))
    import uvicorn

    from ..service import API_KEY_ENV, ServiceConfig, create_app

    path = catalog_path(args)
    if not args.read_only and not os.environ.get(API_KEY_ENV):
        raise InvalidParameterError(f"set {API_KEY_ENV} to a secret (write requests must send it) or pass "
                                    f"--read-only to serve {path} without write endpoints")
    limits: dict[str, int] = {"max_upload_bytes": int(args.max_upload_mb * 2**20)}
    if getattr(args, "max_pixels", None) is not None:
        limits["max_pixels"] = args.max_pixels
    config = ServiceConfig.from_env(path, read_only=args.read_only, backend=getattr(args, "backend", None), **limits)
    app = create_app(config)
    service = app.state.service
    host = f"[{args.host}]" if ":" in args.host else args.host
    mode = "read-only" if args.read_only else f"writes need ${API_KEY_ENV}"
    index = service.cat.info()["index"]
    print(f"lookalike: serving {path} ({service.cat.count()} items, {service.cat.encoder.spec}, index {index}; "
          f"{mode})\n"
          f"  web page  http://{host}:{args.port}/\n  API docs  http://{host}:{args.port}/docs", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="none")
    return 0
