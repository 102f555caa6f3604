"""A float encoder followed by a fitted hasher: images → packed binary codes.

The catalogue builds these from its own tables (the hasher is fitted on the catalogue's vectors), so they have no
registry name of their own. Their spec, ``"<float spec>+<hasher>:<bits>"`` (``efficientnet-lite0+itq:64``), names
them in ``--encoder`` and in :meth:`Catalog.info`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from .base import Encoder


class HashedEncoder(Encoder):
    """``base`` (a float encoder) then ``hasher`` (fitted, scikit-learn style ``transform`` to packed bits)."""

    kind = "binary"

    def __init__(self, base: Encoder, hasher: Any, name: str) -> None:
        if base.kind != "float":
            raise InvalidParameterError(f"A hasher needs a float encoder. Got {base.spec!r} ({base.kind}).")
        self.base = base
        self.hasher = hasher
        self.hasher_name = name
        self.dim = int(hasher.n_bits)
        self.input_size = base.input_size
        self.batch_size = base.batch_size

    @property
    def spec(self) -> str:
        return hashed_spec(self.base.spec, self.hasher_name, self.dim)

    def _prepare(self, image: Image.Image) -> np.ndarray:
        return self.base.prepare(image)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.codes_of(np.asarray(self.base._run(batch), dtype=np.float32))

    def codes_of(self, vectors: np.ndarray) -> np.ndarray:
        """Codes of float vectors made by ``base``: (n, dim) float32 → (n, bits / 8) uint8."""
        return np.ascontiguousarray(self.hasher.transform(vectors), dtype=np.uint8)


def hashed_spec(base_spec: str, hasher: str, bits: int) -> str:
    return f"{base_spec}+{hasher}:{bits}"


def state_to_bytes(state: dict[str, Any]) -> bytes:
    """A fitted hasher's state (arrays and scalars only) as .npz bytes: no pickle, safe to load."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in state.items()}
    np.savez(buf, **arrays)
    return buf.getvalue()


def state_from_bytes(blob: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}
