"""``triplet:PATH``: embeddings learned from triplets, run by ONNX Runtime.

``PATH`` is a model file written by ``lookalike train triplet --out PATH`` (see :mod:`lookalike.triplet.modelfile`:
an ``.npz`` read without pickle). Each image is resized to 224×224 as for ``efficientnet-lite0``; a model trained on
the frozen backbone runs the ``efficientnet-lite0`` encoder (its cached ONNX graph) and then the head's graph, a
fine-tuned model runs its own whole-network graph. The result is ``dim`` (512 by default) float32 unit rows,
compared by cosine like any float encoder: codes (``--hash``) and the BinGAN head can be fitted on them.
Searching needs onnxruntime and numpy, not torch.

Example::

    enc = get_encoder("triplet:models/fmnist.triplet")
    vectors = enc.encode(["a.png", "b.png"])       # (2, 512) float32, unit rows
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..encoders.base import Encoder
from ..encoders.efficientnet import onnx_session
from ..errors import EncoderError, InvalidParameterError


class TripletEncoder(Encoder):
    """A trained triplet model file as a float encoder.

    Args:
        path: the model file.
        threads: ONNX Runtime intra-op threads; 0 (default) lets it choose.

    Raises:
        EncoderError: the file is missing, not a triplet model file or truncated (its ONNX graph is loaded on
            first use, and an unloadable one is an EncoderError then).
    """

    name = "triplet"
    kind = "float"
    batch_size = 16  # as efficientnet-lite0's (see there)
    input_size = (224, 224)

    def __init__(self, path: str | None = None, threads: int | str = 0) -> None:
        from ..encoders import get_encoder
        from ..encoders.options import int_option
        from .modelfile import read_model

        if not path:
            raise InvalidParameterError("the triplet encoder needs a model file: --encoder triplet:PATH")
        self.path = Path(path).expanduser().resolve()
        self.threads = int_option("threads", threads, 0, 256, owner=self.name)
        model = read_model(self.path)
        self.config = model.config
        self.meta = model.meta
        self.graph = model.graph
        self._onnx = model.onnx
        self.dim = model.config.dim
        self.backbone = get_encoder(model.config.backbone, threads=self.threads)
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.path}"

    def _prepare(self, image: Image.Image) -> np.ndarray:
        return self.backbone.prepare(image)

    def embed_features(self, features: np.ndarray) -> np.ndarray:
        """(n, 1280) efficientnet-lite0 features → (n, dim) unit rows (a model on the frozen backbone only)."""
        if self.graph != "head":
            raise EncoderError(f"{self.spec}: a fine-tuned model embeds images, not backbone features")
        return self._run_graph("features", np.ascontiguousarray(features, dtype=np.float32))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.session()  # an unloadable graph fails before the backbone's work
        if self.graph == "head":
            return self.embed_features(self.backbone.run_prepared(list(batch)))
        return self._run_graph("images", np.ascontiguousarray(batch, dtype=np.uint8))

    def _run_graph(self, name: str, x: np.ndarray) -> np.ndarray:
        try:
            (out,) = self.session().run(None, {name: x})
        except EncoderError:
            raise
        except Exception as err:  # onnxruntime raises its own exception types
            raise EncoderError(f"{self.spec}: inference failed: {err}") from err
        out = np.asarray(out, dtype=np.float32)
        if out.shape != (len(x), self.dim):
            raise EncoderError(f"{self.spec}: the ONNX graph returned shape {out.shape}, expected (n, {self.dim})")
        return out

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = onnx_session(self._onnx, self.threads,
                                             f"{self.path}: the triplet model's ONNX graph does not load")
            return self._session
