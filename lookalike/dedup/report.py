"""What duplicate detection hands back: matches of one image, groups of the catalogue, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from ..catalog.types import DuplicateMatch, Item, JSONObject, Verdict

__all__ = ["DedupReport", "DuplicateGroup", "DuplicateMatch", "DuplicatePair"]


@dataclass(frozen=True)
class DuplicatePair:
    """Two items of a group judged copies of each other, with the evidence of the verdict."""

    a: str
    b: str
    verdict: Verdict
    evidence: float  # -log10 of the chance a distinct image scores so (the calibration's scale)
    cosine: float
    geometric: float | None = None  # the thumbnails' geometric score, where it was computed

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "verdict": self.verdict, "evidence": self.evidence,
                "cosine": self.cosine, "geometric": self.geometric}


@dataclass
class DuplicateGroup:
    """Items that are copies of each other (connected by exact or near-duplicate pairs), and which to keep."""

    keeper: str
    items: list[Item]
    pairs: list[DuplicatePair] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"keeper": self.keeper, "size": len(self.items),
                "items": [{"id": i.id, "path": i.path, "width": i.width, "height": i.height, "added": i.added,
                           "keep": i.id == self.keeper} for i in self.items],
                "pairs": [p.to_dict() for p in self.pairs]}


@dataclass
class DedupReport:
    """The duplicate groups of a catalogue."""

    groups: list[DuplicateGroup]
    items: int
    pairs_checked: int
    calibration: JSONObject
    seconds: float
    search: str = "exact"  # how the nearest neighbours were found
    geometric_checks: int = 0  # pairs that needed the thumbnail correlation
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (not in to_dict)

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "groups": [g.to_dict() for g in self.groups],
                "duplicates": sum(len(g.items) - 1 for g in self.groups), "pairs_checked": self.pairs_checked,
                "geometric_checks": self.geometric_checks, "search": self.search,
                "seconds": round(self.seconds, 3), "calibration": self.calibration}

    def to_csv(self) -> str:
        """One row per item of a group: group, id, path, width, height, added, keep (1 for the keeper)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["group", "id", "path", "width", "height", "added", "keep"])
        for n, group in enumerate(self.groups, 1):
            for item in group.items:
                writer.writerow([n, item.id, item.path or "", item.width, item.height, f"{item.added:.3f}",
                                 int(item.id == group.keeper)])
        return out.getvalue()
