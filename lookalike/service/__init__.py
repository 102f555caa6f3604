"""The HTTP service and web page: ``lookalike serve --catalog PATH``.

REST endpoints (OpenAPI at ``/docs``) to search by upload or by a region of it, browse, and manage the catalogue,
a web page at ``/`` that does the same in a browser, and Prometheus metrics at ``/metrics``. Importing this
package imports FastAPI; ``import lookalike`` never does.

Example::

    from lookalike.service import ServiceConfig, create_app
    app = create_app(ServiceConfig("shop.lookalike", api_key="a long secret"))   # then: uvicorn.run(app)
"""

from .app import create_app
from .config import API_KEY_ENV, ServiceConfig

__all__ = ["API_KEY_ENV", "ServiceConfig", "create_app"]
