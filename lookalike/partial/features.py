"""Keypoints and binary local descriptors of one image, and their stored form (the per-item feature blob).

ORB finds the keypoints (an 8-level pyramid at scale 1.2, FAST corners of threshold ``FAST_THRESHOLD`` ranked by the
Harris score, spread over a grid of cells so a corner of the image keeps some); the descriptor on them is one of

========= ============================================ ====== ==================================================
name      OpenCV 5.1                                    bits   on ORB keypoints
========= ============================================ ====== ==================================================
orb       ORB's own rotated BRIEF (``ORB_create``)     256    the learned 31×31 pattern at the keypoint's level
beblid    ``xfeatures2d.BEBLID_create(0.75, 101)``      256    scale factor 0.75, as OpenCV documents for ORB
teblid    ``xfeatures2d.TEBLID_create(0.75, 102)``      256    the same
========= ============================================ ====== ==================================================

Images are described in grey at a working size: the long side scaled to at most ``MAX_SIDE`` (1024) pixels, and
small images (a query crop) scaled up until the short side is ``MIN_SIDE`` (256), because ORB ignores a 31-pixel
border and needs a few pyramid levels. Keypoint positions are stored in pixels of the decoded image the blob
records (``width``, ``height``), so a box maps to the item's own pixels by one scale.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import CatalogError, InvalidParameterError

__all__ = ["DESCRIPTOR_KINDS", "FAST_THRESHOLD", "Extractor", "Keypoints", "LocalFeatures", "MAX_SIDE", "MIN_SIDE",
           "pack", "unpack"]

DESCRIPTOR_KINDS = ("orb", "beblid", "teblid")
MAX_SIDE = 1024
MIN_SIDE = 256
# FAST's intensity threshold: 5 rather than OpenCV's 20 (or the 12 this module had) finds corners in low-contrast
# regions (a clock face, a moon's surface), where a 10% crop had a handful of keypoints; chosen on the validation
# crops of benchmarks/partial.py (BENCHMARKS.md, "Partial-image search").
FAST_THRESHOLD = 5
BYTES = 32  # 256-bit descriptors
_MAGIC = b"LKP1"
_HEAD = struct.Struct("<4s8sIII32s")  # magic, kind, n, width, height, sha256 (raw)


@dataclass(frozen=True)
class Keypoints:
    """Where an image's keypoints are (``xy`` (n, 2) float32 in pixels of a ``width`` × ``height`` decode): what
    verification needs of a catalogue item once its descriptors are in the index."""

    width: int
    height: int
    xy: np.ndarray


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image: ``xy`` (n, 2) float32 in pixels of a ``width`` × ``height`` decode, ``desc`` (n, 32)
    uint8 packed 256-bit descriptors, the descriptor ``kind`` and the sha256 of the content described."""

    kind: str
    width: int
    height: int
    xy: np.ndarray
    desc: np.ndarray
    sha256: str = ""

    def __len__(self) -> int:
        return int(self.desc.shape[0])

    def keypoints(self) -> Keypoints:
        """The positions alone, copied (not a view that would keep a stored blob's descriptors alive)."""
        return Keypoints(self.width, self.height, np.array(self.xy, dtype=np.float32))


def working_scale(width: int, height: int) -> float:
    """The scale an image is described at: down to MAX_SIDE on the long side; a small one up towards MIN_SIDE on
    the short side (at most 4x), never past MAX_SIDE on the long side (a 16 x 4M strip would be 1 GB of grey)."""
    scale = min(1.0, MAX_SIDE / max(width, height))
    if min(width, height) * scale < MIN_SIDE:
        scale = min(MIN_SIDE / min(width, height), 4.0, max(1.0, MAX_SIDE / max(width, height)))
    return scale


def pack(f: LocalFeatures) -> bytes:
    sha = bytes.fromhex(f.sha256) if f.sha256 else bytes(32)
    head = _HEAD.pack(_MAGIC, f.kind.encode().ljust(8, b"\0"), len(f), f.width, f.height, sha)
    return (head + np.ascontiguousarray(f.xy, dtype="<f4").tobytes()
            + np.ascontiguousarray(f.desc, dtype=np.uint8).tobytes())


def unpack(blob: bytes) -> LocalFeatures:
    """The features of one stored blob; CatalogError for bytes that are not one."""
    if len(blob) < _HEAD.size or blob[:4] != _MAGIC:
        raise CatalogError("a stored partial-search feature is damaged (no LKP1 header)")
    _magic, kind, n, width, height, sha = _HEAD.unpack_from(blob)
    end = _HEAD.size + n * 8 + n * BYTES
    if len(blob) != end:
        raise CatalogError(f"a stored partial-search feature is damaged ({len(blob)} bytes, {end} expected)")
    xy = np.frombuffer(blob, dtype="<f4", count=2 * n, offset=_HEAD.size).reshape(n, 2)
    desc = np.frombuffer(blob, dtype=np.uint8, count=n * BYTES, offset=_HEAD.size + n * 8).reshape(n, BYTES)
    digest = "" if sha == bytes(32) else sha.hex()
    return LocalFeatures(kind.rstrip(b"\0").decode(), width, height, xy, desc, digest)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - the [patches] extra
        raise CatalogError("partial-image search needs OpenCV: pip install 'lookalike[patches]'") from err
    return cv2


class Extractor:
    """ORB keypoints plus one kind of 256-bit descriptor (see the module doc); ``features`` keypoints at most."""

    def __init__(self, kind: str = "orb", features: int = 1000) -> None:
        if kind not in DESCRIPTOR_KINDS:
            raise InvalidParameterError(f"The descriptor must be one of {', '.join(DESCRIPTOR_KINDS)}. "
                                        f"Got {kind!r}.")
        if not isinstance(features, int) or isinstance(features, bool) or not 16 <= features <= 20000:
            raise InvalidParameterError(f"The 'features' parameter must be an integer in [16, 20000]. "
                                        f"Got {features!r}.")
        self.kind, self.features = kind, features
        cv2 = _cv2()
        self._orb = cv2.ORB_create(nfeatures=features * 2, scaleFactor=1.2, nlevels=8, fastThreshold=FAST_THRESHOLD)
        if kind == "beblid":
            self._desc = cv2.xfeatures2d.BEBLID_create(0.75, 101)
        elif kind == "teblid":
            self._desc = cv2.xfeatures2d.TEBLID_create(0.75, 102)
        else:
            self._desc = self._orb

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.features}"

    @classmethod
    def from_spec(cls, spec: str) -> Extractor:
        kind, _, count = spec.partition(":")
        try:
            return cls(kind, int(count) if count else 1000)
        except ValueError as err:
            raise InvalidParameterError(f"A partial descriptor spec is 'KIND:COUNT', e.g. 'orb:1000'. Got {spec!r}."
                                        ) from err

    def describe(self, image: Image.Image, sha256: str = "") -> LocalFeatures:
        """Keypoints and descriptors of a decoded image (any mode; described in grey at the working size)."""
        grey = np.asarray(image.convert("L"))
        h, w = grey.shape
        scale = working_scale(w, h)
        cv2 = _cv2()
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        keypoints = self._spread(self._orb.detect(grey, None), grey.shape)
        desc = None
        if keypoints:
            keypoints, desc = self._desc.compute(grey, keypoints)
        if desc is None or not keypoints:
            return LocalFeatures(self.kind, w, h, np.zeros((0, 2), np.float32), np.zeros((0, BYTES), np.uint8),
                                 sha256)
        sx, sy = w / grey.shape[1], h / grey.shape[0]
        xy = np.array([(k.pt[0] * sx, k.pt[1] * sy) for k in keypoints], dtype=np.float32)
        return LocalFeatures(self.kind, w, h, xy, np.ascontiguousarray(desc, dtype=np.uint8), sha256)

    def _spread(self, keypoints: Any, shape: tuple[int, ...]) -> list[Any]:
        """At most ``features`` keypoints, the strongest of each cell of a 4×4 grid first, then the rest by
        response, so one textured corner does not take them all."""
        if len(keypoints) <= self.features:
            return list(keypoints)
        h, w = shape[:2]
        order = sorted(range(len(keypoints)), key=lambda i: -keypoints[i].response)
        per_cell = self.features // 32
        counts: dict[tuple[int, int], int] = {}
        first, rest = [], []
        for i in order:
            x, y = keypoints[i].pt
            cell = (min(3, int(4 * x / w)), min(3, int(4 * y / h)))
            if counts.get(cell, 0) < per_cell:
                counts[cell] = counts.get(cell, 0) + 1
                first.append(i)
            else:
                rest.append(i)
        return [keypoints[i] for i in (first + rest)[: self.features]]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
