"""The JSON of each record, in one place: the record's own ``to_dict()`` plus the service's links, without the
server's file paths of items and hits (a duplicate verdict keeps its ``path``, as the library's does)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request

from ..catalog import Item, SearchResult


def url_prefix(request: Request) -> str:
    """The URL prefix the app is mounted under (``root_path``), without a trailing '/'."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def urls(item_id: str, sha256: str | None, prefix: str = "") -> dict[str, str]:
    """The links of an item. Ids are fully percent-encoded ('/' too), so no id forms a '..' path segment."""
    base = f"{prefix}/items/{quote(item_id, safe='')}"
    version = f"?v={sha256[:12]}" if sha256 else ""
    return {"image_url": f"{base}/image{version}", "thumbnail_url": f"{base}/thumbnail{version}",
            "similar_url": f"{base}/similar"}


def item_out(item: Item, prefix: str = "") -> dict[str, Any]:
    """An Item (without its path); a checked item (``CheckedItem``) adds its ``duplicates`` verdicts."""
    out = {k: v for k, v in item.to_dict().items() if k not in ("path", "duplicates")}
    out.update(urls(item.id, item.sha256, prefix))
    if hasattr(item, "duplicates"):
        out["duplicates"] = [match_out(m, prefix) for m in item.duplicates]
    return out


def hit_out(rank: int, hit: SearchResult, prefix: str = "") -> dict[str, Any]:
    """One search result (without its path), ranked from 1."""
    return {"rank": rank, **{k: v for k, v in hit.to_dict().items() if k != "path"}, **urls(hit.id, None, prefix)}


def match_out(match: Any, prefix: str = "") -> dict[str, Any]:
    """A DuplicateMatch, with the matched item's links."""
    return {**match.to_dict(), **urls(match.id, None, prefix)}


def report_out(report: Any, k: int, prefix: str = "") -> dict[str, Any]:
    """A DedupReport, each group's items with their links."""
    out = dict(report.to_dict())
    shas = {item.id: item.sha256 for group in report.groups for item in group.items}
    for group in out["groups"]:
        group["items"] = [{**item, **urls(item["id"], shas.get(item["id"]), prefix)} for item in group["items"]]
    return {"k": k, **out}
