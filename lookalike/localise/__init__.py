"""Product localisation: a crop classifier and a box regressor on efficientnet-lite0's feature map.

TiefVision's recipe: encode the whole photo once, read every crop's encoding off the spatial feature map, classify
each crop as object or background, regress the product's box from each, and average the boxes of the crops the
classifier trusts (p(object) >= 0.995 by default, chosen on validation composites; TiefVision used 0.8).

- :mod:`.config`: :class:`LocaliserConfig` (torch-free, stored as JSON in model files);
- :mod:`.windows`: crops, their features, IoU, box targets, the averaging rule (numpy);
- :mod:`.data`: a strict ``boxes.csv`` reader and the backbone's feature maps (onnxruntime);
- :mod:`.nets`, :mod:`.trainer`: the network and its training (torch; ``lookalike train localiser``);
- :mod:`.modelfile`: the ``.npz`` model file with its ONNX graph, read without pickle;
- :mod:`.localiser`: :class:`Localiser`, inference with onnxruntime and numpy only;
- :mod:`.mask`: GrabCut background removal inside the box (``--crop auto,mask``; OpenCV, the ``[patches]``
  extra, imported only when used).

Importing this package (``import lookalike`` does) registers :func:`open_localiser` as the catalogue's
localiser: the crop stage of ``--crop auto`` at index and query time (``lookalike.catalog.crop``). It loads
neither torch nor onnxruntime.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..catalog.extensions import register_localiser
from .config import LocaliserConfig
from .localiser import Localiser, Located

__all__ = ["Located", "Localiser", "LocaliserConfig", "open_localiser"]


def open_localiser(path: str | os.PathLike[str]) -> Localiser:
    """The :class:`Localiser` of a model file, one per file (and version of it) per process."""
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (0, 0)  # Localiser raises the clear error
    return _cached(str(resolved), version)


@functools.lru_cache(maxsize=8)
def _cached(path: str, version: tuple[int, int]) -> Localiser:
    return Localiser(path)


register_localiser(open_localiser)
