"""Locating the product in a photo with a trained localiser model (onnxruntime and numpy; no torch).

For each image: resize to ``size`` x ``size``, run efficientnet-lite0 up to the config's layer (its cached ONNX
graph of the unpooled feature map), build the features of every crop of the map (:mod:`.windows`), run the model
file's graph for p(object) and the regressed box of each crop, and combine them by TiefVision's rule: the mean of
the boxes of the crops with ``p >= threshold`` (0.995); when none passes, the best crop's box if its p reaches
``min_score``; otherwise nothing looks like an object and there is no box (``--crop auto`` then searches or indexes
the whole image).

Example::

    loc = Localiser("models/products.localiser")
    found = loc.locate("shelf.jpg")        # Located(box=Box(x, y, w, h), score=0.97, trusted=12)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..encoders.efficientnet import onnx_session
from ..errors import EncoderError
from ..images import DEFAULT_LIMITS, Box, ImageLimits, ImageSource, load_image
from ..validation import check_real
from .data import backbone_maps, prepare
from .modelfile import read_model
from .windows import average_boxes, crop_cells, crop_coords, crop_features, integral, to_pixels

__all__ = ["Located", "Localiser"]


@dataclass(frozen=True)
class Located:
    """Where the product is: ``box`` in pixels of the image given (None: nothing looks like an object),
    ``score`` the best crop's p(object), ``trusted`` how many crops passed the threshold and were averaged (0:
    the best crop's box alone, or no box)."""

    box: Box | None
    score: float
    trusted: int

    def to_dict(self) -> dict[str, Any]:
        return {"box": None if self.box is None else str(self.box), "score": round(self.score, 4),
                "trusted": self.trusted}


class Localiser:
    """A trained localiser model file (``lookalike train localiser``).

    Args:
        path: the model file.
        threshold, min_score: override the model's (see :class:`~.config.LocaliserConfig`).
        threads: ONNX Runtime intra-op threads (0: its choice).

    Raises:
        EncoderError: missing, not a localiser model file, damaged, or a graph that does not load.
    """

    def __init__(self, path: str | Path, *, threshold: float | None = None, min_score: float | None = None,
                 threads: int = 0) -> None:
        self.path = Path(path).expanduser().resolve()
        model = read_model(self.path)
        self.config, self.meta, self.threads = model.config, model.meta, threads
        self.threshold = self.config.threshold if threshold is None else check_real("threshold", threshold, 0, 1)
        self.min_score = self.config.min_score if min_score is None else check_real("min_score", min_score, 0, 1)
        self.cells = crop_cells(self.config)
        self.coords = crop_coords(self.cells, self.config.grid)
        self._onnx = model.onnx
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = onnx_session(self._onnx, self.threads,
                                             f"{self.path}: the localiser's ONNX graph does not load")
            return self._session

    def crops(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Every crop's (p(object), box as shares of the image's sides): arrays (n, m) and (n, m, 4)."""
        session = self.session()
        if not images:
            return np.empty((0, len(self.cells)), np.float32), np.empty((0, len(self.cells), 4), np.float32)
        ii = integral(backbone_maps(np.stack([prepare(im, self.config) for im in images]), self.config))
        m = len(self.cells)
        img = np.repeat(np.arange(len(images)), m)
        feats = crop_features(ii, img, np.tile(self.cells, (len(images), 1)), self.config)
        try:
            p, boxes = session.run(None, {"features": feats, "crops": np.tile(self.coords, (len(images), 1))})
        except Exception as err:
            raise EncoderError(f"{self.path}: localiser inference failed: {err}") from err
        return np.asarray(p, np.float32).reshape(len(images), m), np.asarray(boxes, np.float32).reshape(-1, m, 4)

    def locate_many(self, images: Sequence[Image.Image], batch: int = 16) -> list[Located]:
        """:meth:`locate` for decoded RGB images, ``batch`` at a time."""
        out = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            p, boxes = self.crops(chunk)
            for image, pi, bi in zip(chunk, p, boxes, strict=True):
                share, score, trusted = average_boxes(pi, bi, self.threshold, self.min_score)
                box = None if share is None else to_pixels(share, image.width, image.height)
                out.append(Located(box, score, trusted))
        return out

    def locate(self, image: ImageSource, *, limits: ImageLimits = DEFAULT_LIMITS) -> Located:
        """Where the product is in one image (a path, bytes, an array or a PIL image), in its upright pixels."""
        if isinstance(image, Image.Image) and image.mode == "RGB":
            return self.locate_many([image])[0]
        loaded = load_image(image, limits=limits, draft=(self.config.size, self.config.size))
        found = self.locate_many([loaded.image])[0]
        if found.box is None or loaded.image.size == (loaded.width, loaded.height):
            return found
        sx, sy = loaded.width / loaded.image.width, loaded.height / loaded.image.height
        b = found.box
        x, y = min(int(b.x * sx), loaded.width - 1), min(int(b.y * sy), loaded.height - 1)
        box = Box(x, y, min(round(b.w * sx), loaded.width - x), min(round(b.h * sy), loaded.height - y))
        return Located(box, found.score, found.trusted)

    def crop_box(self, image: Image.Image) -> Box | None:
        """The catalogue's crop stage (``--crop auto``): the box of the product in a decoded RGB image, or None."""
        return self.locate_many([image])[0].box

    def mask_crop(self, image: Image.Image, box: Box) -> Image.Image:
        """The crop stage with ``,mask`` (``--crop auto,mask``): ``image`` cut to ``box``, the background GrabCut
        finds in it painted out, with the knobs chosen on validation composites (:func:`.mask.mask_background`)."""
        from .mask import mask_background

        return mask_background(image, box)

    def __repr__(self) -> str:
        return f"<Localiser {str(self.path)!r} {self.config.layer}@{self.config.size} threshold={self.threshold}>"
