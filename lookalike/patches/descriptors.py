"""Classical local descriptors from OpenCV (``opencv-contrib-python-headless``), computed on 64×64 patches.

A patch is described as the Brown protocol does: one keypoint at the patch centre, angle 0 (the patches are already
oriented and scaled), with the keypoint size that makes the descriptor's sampling window the whole 64×64 patch
where the descriptor lets the size choose it:

========== ======================= ======= ==========================================================================
name       OpenCV 5.1 (contrib)    output  window on the 64×64 patch
========== ======================= ======= ==========================================================================
brief      xfeatures2d.Brief...    256 b   fixed 48×48 (BRIEF ignores the keypoint size), no orientation
orb        ORB_create              256 b   the learned 31×31 pattern on the patch halved (pyramid level 1, scale 2)
brisk      xfeatures2d.BRISK       512 b   size 18: outer ring radius ≈ 27 px; BRISK always estimates its own angle
latch      xfeatures2d.LATCH       256 b   fixed 48×48 (LATCH ignores the size), angle 0
binboost64 xfeatures2d.BoostDesc   64 b    BINBOOST_64, size 64 × scale_factor 1: the whole patch, resampled to 32×32
binboost128                        128 b   BINBOOST_128, as above
binboost256                        256 b   BINBOOST_256, as above
beblid512  xfeatures2d.BEBLID      512 b   size 64 × scale_factor 1
beblid256                          256 b
teblid256  xfeatures2d.TEBLID      256 b   size 64 × scale_factor 1
teblid512                          512 b
freak      xfeatures2d.FREAK       512 b   size 10: pattern half-extent ≈ 31 px; orientation normalisation off
sift       SIFT_create (cv2.*)     128 f   size 64/6: the 4×4 grid of 3σ cells covers the patch; angle 0; L2
========== ======================= ======= ==========================================================================

In OpenCV 5 SIFT and ORB are in the main module; BRIEF, BRISK, FREAK, LATCH, BoostDesc, BEBLID and TEBLID are in
``cv2.xfeatures2d`` (contrib). BoostDesc's enum values (BINBOOST_64/128/256 = 300/301/302) are not exported to
Python, so they are written here. Binary descriptors are compared by Hamming distance, SIFT by L2.

Patches are computed in mosaics (cells of 128×128: the patch with 32 pixels of mirrored border, so no descriptor
reads a neighbour and no keypoint is dropped at an image border); a keypoint OpenCV drops all the same is reported
in the ``ok`` mask and its pair counts as rejected at every threshold (see :mod:`.runner`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from .pairs import PATCH

__all__ = ["DESCRIPTORS", "Descriptor", "describe", "descriptor", "opencv"]

PAD = 32
CELL = PATCH + 2 * PAD
GRID = 16  # cells per mosaic side: 256 patches per OpenCV call
_BINBOOST = {64: 300, 128: 301, 256: 302}


@dataclass(frozen=True)
class Descriptor:
    """One OpenCV descriptor as the runner uses it.

    Attributes:
        name: the runner's name (``--descriptors``).
        kind: ``"binary"`` (packed uint8 rows, Hamming) or ``"float"`` (float32 rows, L2).
        dim: bits for binary descriptors, floats for float ones.
        size: the keypoint size at the patch centre. octave: the keypoint's octave (ORB: pyramid level 1).
        factory: builds the ``cv2.Feature2D`` (needs ``cv2``).
    """

    name: str
    kind: str
    dim: int
    size: float
    factory: Callable[[], Any]
    octave: int = 0

    @property
    def width(self) -> int:
        """Columns of one row: bytes for binary descriptors, floats for float ones."""
        return self.dim // 8 if self.kind == "binary" else self.dim


def opencv(what: str = "the OpenCV descriptors") -> Any:
    """The ``cv2`` module, or InvalidParameterError saying that ``what`` needs the [patches] extra."""
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - the [patches] extra installs it
        raise InvalidParameterError(f"{what} needs opencv-contrib-python-headless "
                                    "(pip install 'lookalike[patches]')") from err
    return cv2


def _x() -> Any:
    return opencv().xfeatures2d


def _binboost(bits: int) -> Callable[[], Any]:
    return lambda: _x().BoostDesc_create(desc=_BINBOOST[bits], use_scale_orientation=True, scale_factor=1.0)


def _blid(kind: str, bits: int) -> Callable[[], Any]:
    def make() -> Any:
        x = _x()
        create = x.BEBLID_create if kind == "BEBLID" else x.TEBLID_create
        return create(1.0, getattr(x, f"{kind}_SIZE_{bits}_BITS"))

    return make


DESCRIPTORS: dict[str, Descriptor] = {d.name: d for d in (
    Descriptor("brief", "binary", 256, float(PATCH), lambda: _x().BriefDescriptorExtractor_create(32, False)),
    Descriptor("orb", "binary", 256, 31.0 * 2,
               lambda: opencv().ORB_create(nfeatures=1, scaleFactor=2.0, nlevels=2, edgeThreshold=31, patchSize=31),
               octave=1),
    Descriptor("brisk", "binary", 512, 18.0, lambda: _x().BRISK_create()),
    Descriptor("latch", "binary", 256, float(PATCH), lambda: _x().LATCH_create(32, True, 3, 2.0)),
    Descriptor("binboost64", "binary", 64, float(PATCH), _binboost(64)),
    Descriptor("binboost128", "binary", 128, float(PATCH), _binboost(128)),
    Descriptor("binboost256", "binary", 256, float(PATCH), _binboost(256)),
    Descriptor("beblid512", "binary", 512, float(PATCH), _blid("BEBLID", 512)),
    Descriptor("beblid256", "binary", 256, float(PATCH), _blid("BEBLID", 256)),
    Descriptor("teblid256", "binary", 256, float(PATCH), _blid("TEBLID", 256)),
    Descriptor("teblid512", "binary", 256 * 2, float(PATCH), _blid("TEBLID", 512)),
    Descriptor("freak", "binary", 512, 10.0, lambda: _x().FREAK_create(False, True, 22.0, 4)),
    Descriptor("sift", "float", 128, PATCH / 6.0, lambda: opencv().SIFT_create()),
)}


def descriptor(name: str) -> Descriptor:
    """The descriptor called ``name``; InvalidParameterError listing the known ones otherwise."""
    try:
        return DESCRIPTORS[name]
    except KeyError:
        raise InvalidParameterError(f"unknown descriptor {name!r}; known: {', '.join(DESCRIPTORS)}, "
                                    "bingan:MODEL") from None


def describe(name: str | Descriptor, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Describe each (64, 64) uint8 patch at its centre.

    Returns:
        (rows, ok): (n, width) uint8 packed bits or float32 rows, and (n,) bool, False where OpenCV dropped the
        keypoint (that row is zeros).
    """
    d = descriptor(name) if isinstance(name, str) else name
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1:] != (PATCH, PATCH) or patches.dtype != np.uint8:
        raise InvalidParameterError(f"patches must be (n, {PATCH}, {PATCH}) uint8. Got {patches.shape} "
                                    f"{patches.dtype}.")
    cv2 = opencv()
    extractor = d.factory()
    rows = np.zeros((len(patches), d.width), dtype=np.uint8 if d.kind == "binary" else np.float32)
    ok = np.zeros(len(patches), dtype=bool)
    per = GRID * GRID
    for start in range(0, len(patches), per):
        chunk = patches[start:start + per]
        mosaic = _mosaic(chunk)
        kps = [cv2.KeyPoint(float(c % GRID * CELL + PAD + (PATCH - 1) / 2), float(c // GRID * CELL + PAD
                                                                                    + (PATCH - 1) / 2),
                            d.size, 0.0, 0.0, d.octave) for c in range(len(chunk))]
        kept, desc = extractor.compute(mosaic, kps)
        if desc is None or not kept:
            continue
        cells = np.array([int(k.pt[1] // CELL) * GRID + int(k.pt[0] // CELL) for k in kept])
        if desc.shape != (len(kept), d.width):
            raise RuntimeError(f"{d.name}: OpenCV returned descriptors of shape {desc.shape}, expected "
                               f"({len(kept)}, {d.width})")
        rows[start + cells] = desc
        ok[start + cells] = True
    return rows, ok


def _mosaic(chunk: np.ndarray) -> np.ndarray:
    """Up to GRID² patches, each mirrored out by PAD pixels, tiled row-major into one image."""
    padded = np.zeros((GRID * GRID, CELL, CELL), dtype=np.uint8)
    padded[:len(chunk)] = np.pad(chunk, ((0, 0), (PAD, PAD), (PAD, PAD)), mode="reflect")
    return np.ascontiguousarray(padded.reshape(GRID, GRID, CELL, CELL).transpose(0, 2, 1, 3).reshape(GRID * CELL,
                                                                                                    GRID * CELL))
