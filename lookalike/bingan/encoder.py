"""``bingan:PATH``: binary codes straight from pixels by a trained BinGAN discriminator, run by ONNX Runtime.

``PATH`` is a model file written by ``lookalike train bingan --out PATH`` (see :mod:`lookalike.bingan.modelfile`:
an ``.npz`` read without pickle, holding the config and the ONNX graph of the discriminator up to its code layer).
Each image is converted to grey or RGB and padded or resized to 32×32 exactly as in training; the K code-layer
outputs are thresholded at ``>= 0`` (as the reference code does) and packed: K/8 bytes per image, searched by
Hamming distance. Searching needs onnxruntime and numpy, not torch.

Example::

    enc = get_encoder("bingan:models/fmnist-32.bingan")
    codes = enc.encode(["a.png", "b.png"])       # (2, 4) uint8
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


class BinGANEncoder(Encoder):
    """A trained BinGAN model file as a binary encoder.

    Args:
        path: the model file.
        threads: ONNX Runtime intra-op threads; 0 (default) lets it choose.

    Raises:
        EncoderError: the file is missing, not a BinGAN model file, or its ONNX graph does not load.
    """

    name = "bingan"
    kind = "binary"
    batch_size = 256

    def __init__(self, path: str | None = None, threads: int | str = 0) -> None:
        from ..encoders.options import int_option
        from .modelfile import read_model

        if not path:
            raise InvalidParameterError("the bingan encoder needs a model file: --encoder bingan:PATH")
        self.path = Path(path).expanduser().resolve()
        self.threads = int_option("threads", threads, 0, 256, owner=self.name)
        model = read_model(self.path)
        self.config = model.config
        self.meta = model.meta
        self._onnx = model.onnx
        self.dim = model.config.bits
        self.input_size = (32, 32)
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.path}"

    def _prepare(self, image: Image.Image) -> np.ndarray:
        from .data import prepare_image

        return prepare_image(image, self.config)

    def codes(self, batch: np.ndarray) -> np.ndarray:
        """(n, K) float32 code-layer outputs for prepared uint8 (n, C, 32, 32) images."""
        try:
            (out,) = self.session().run(None, {"images": np.ascontiguousarray(batch, dtype=np.uint8)})
        except EncoderError:
            raise
        except Exception as err:  # onnxruntime raises its own exception types
            raise EncoderError(f"{self.spec}: inference failed: {err}") from err
        out = np.asarray(out, dtype=np.float32)
        if out.shape != (len(batch), self.dim):
            raise EncoderError(f"{self.spec}: the ONNX graph returned shape {out.shape}, expected (n, {self.dim})")
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.packbits(self.codes(batch) >= 0, axis=1)

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = onnx_session(self._onnx, self.threads,
                                             f"{self.path}: the BinGAN model's ONNX graph does not load")
            return self._session
