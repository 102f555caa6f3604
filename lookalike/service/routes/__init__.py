"""The service's routers, one per resource: search, items, duplicates, and the service itself (health, stats,
metrics, the web page and the offline API docs)."""

from . import duplicates, items, partial, search, system

__all__ = ["duplicates", "items", "partial", "search", "system"]
