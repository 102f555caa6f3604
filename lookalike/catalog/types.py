"""The records the catalogue hands out: items, search results, duplicate verdicts and batch reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, Union

from ..images import Skipped

# a value of the user's JSON (metadata, filters) and a JSON object: what json.loads gives
JSONValue: TypeAlias = Union[str, int, float, bool, None, list["JSONValue"], dict[str, "JSONValue"]]  # noqa: UP007
JSONObject: TypeAlias = dict[str, JSONValue]

Verdict = Literal["exact", "near-duplicate", "similar"]
Refuse = Literal["exact", "near"]
REFUSE_CHOICES: tuple[Refuse | None, ...] = (None, "exact", "near")


@dataclass(frozen=True)
class Item:
    """One catalogue item.

    Attributes:
        id: the user-facing id (for folder indexing, the path relative to the folder).
        path: where the image lives: the source file, or the catalogue's own copy for images added as bytes.
        sha256: hex digest of the image's encoded bytes.
        width, height: of the image after EXIF orientation.
        added, updated: Unix times.
        metadata: the user's JSON object.
        key: the catalogue's internal int64 key of the item (what its indexes are keyed by); not part of
            ``to_dict`` or of equality.
    """

    id: str
    path: str | None
    sha256: str
    width: int
    height: int
    added: float
    updated: float
    metadata: JSONObject = field(default_factory=dict)
    key: int = field(default=-1, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "path": self.path, "sha256": self.sha256, "width": self.width, "height": self.height,
            "added": self.added, "updated": self.updated, "metadata": self.metadata,
        }


@dataclass(frozen=True)
class DuplicateMatch:
    """One catalogue item compared with an image.

    Attributes:
        id, path: of the catalogue item.
        verdict: ``"exact"`` (same file content or the same pixels), ``"near-duplicate"`` (an edited copy, by the
            calibrated threshold) or ``"similar"`` (alike, not a copy).
        evidence: summed ``-log10`` distractor rates of the signals (higher is surer; see the calibration).
        cosine: of the embeddings; geometric: best thumbnail NCC (None when a thumbnail is missing).
    """

    id: str
    path: str | None
    verdict: Verdict
    evidence: float
    cosine: float
    geometric: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "verdict": self.verdict, "evidence": round(self.evidence, 3),
                "cosine": round(self.cosine, 4),
                "geometric": None if self.geometric is None else round(self.geometric, 4)}

    @property
    def is_duplicate(self) -> bool:
        return self.verdict != "similar"

    def describe(self) -> str:
        """``an exact duplicate of item 'x'``, ``a near-duplicate of item 'x'`` or ``similar to item 'x'``."""
        kind = {"exact": "an exact duplicate of", "near-duplicate": "a near-duplicate of"}.get(self.verdict,
                                                                                             "similar to")
        return f"{kind} item {self.id!r}"


@dataclass(frozen=True)
class CheckedItem(Item):
    """The item ``Catalog.add(..., check_duplicates=True)`` returns: an :class:`Item` that also carries the
    verdicts on its nearest catalogue items (``duplicates``: exact and near duplicates first, then similar
    items)."""

    duplicates: tuple[DuplicateMatch, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "duplicates": [d.to_dict() for d in self.duplicates]}


@dataclass(frozen=True)
class SearchResult:
    """One hit of a search, best first.

    Attributes:
        id, path, metadata: of the item found.
        score: similarity, higher is better: cosine for float vectors, ``1 - hamming / bits`` for binary codes.
        distance: lower is better: ``1 - cosine``, or the Hamming distance in bits for binary codes.
    """

    id: str
    path: str | None
    score: float
    distance: float
    metadata: JSONObject = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "score": self.score, "distance": self.distance,
                "metadata": self.metadata}


@dataclass
class BatchReport:
    """What a batch operation (``add_many``, ``index_folder``) did.

    ``skipped`` lists every source that could not be used, with the reason; nothing else was lost.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    duplicates: dict[str, list[DuplicateMatch]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "added": len(self.added), "updated": len(self.updated), "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
        }
        if self.refused:
            out["refused"] = [r.to_dict() for r in self.refused]
        if self.duplicates:
            out["duplicates"] = {i: [m.to_dict() for m in ms] for i, ms in self.duplicates.items()}
        return out

    def summary(self) -> str:
        refused = f", {len(self.refused)} refused as duplicates" if self.refused else ""
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed, {len(self.skipped)} skipped{refused}")


@dataclass(frozen=True)
class Refused:
    """A source ``add_many(..., refuse=...)`` did not add: ``duplicates`` are the matches it was refused for
    (best first)."""

    source: str
    duplicates: tuple[DuplicateMatch, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "duplicates": [d.to_dict() for d in self.duplicates]}
