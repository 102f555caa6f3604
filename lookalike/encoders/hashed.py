"""A float encoder followed by a fitted hasher: images → packed binary codes.

The catalogue builds these from its own tables (the hasher is fitted on the catalogue's vectors), so they have no
registry name of their own. Their spec, ``"<float spec>+<hasher>:<bits>"`` (``efficientnet-lite0+itq:64``), names
them in ``--encoder`` and in :meth:`Catalog.info`.
"""

from __future__ import annotations

import abc
import io
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from .base import Encoder


class DerivedEncoder(Encoder):
    """A float encoder (``base``) whose vectors are then transformed by something fitted on the catalogue: learned
    codes (:class:`HashedEncoder`) or a sketch (:class:`SketchEncoder`). A catalogue that stores ``base`` too
    derives these from its vectors (one model run); the transform alone is :meth:`derive`."""

    def __init__(self, base: Encoder, dim: int) -> None:
        if base.kind != "float":
            raise InvalidParameterError(f"A hasher needs a float encoder. Got {base.spec!r} ({base.kind}).")
        self.base = base
        self.dim = int(dim)
        self.input_size = base.input_size
        self.batch_size = base.batch_size

    def _prepare(self, image: Image.Image) -> np.ndarray:
        return self.base.prepare(image)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.derive(np.asarray(self.base._run(batch), dtype=np.float32))

    @abc.abstractmethod
    def derive(self, vectors: np.ndarray) -> np.ndarray:
        """(n, base dim) float32 vectors of ``base`` → (n, width) vectors of this encoder."""


class HashedEncoder(DerivedEncoder):
    """``base`` (a float encoder) then ``hasher`` (fitted, scikit-learn style ``transform`` to packed bits)."""

    kind = "binary"

    def __init__(self, base: Encoder, hasher: Any, name: str) -> None:
        super().__init__(base, int(hasher.n_bits))
        self.hasher = hasher
        self.hasher_name = name

    @property
    def spec(self) -> str:
        return hashed_spec(self.base.spec, self.hasher_name, self.dim)

    def derive(self, vectors: np.ndarray) -> np.ndarray:
        return self.codes_of(vectors)

    def codes_of(self, vectors: np.ndarray) -> np.ndarray:
        """Codes of float vectors made by ``base``: (n, dim) float32 → (n, bits / 8) uint8."""
        return np.ascontiguousarray(self.hasher.transform(vectors), dtype=np.uint8)


SKETCH = "sketch"  # the name a sketch's fit is stored under, beside the hashers' names


class SketchEncoder(DerivedEncoder):
    """``base`` projected on ``basis`` ((base dim, dims) float32, orthonormal columns: the top eigenvectors of
    the catalogue's vectors, :func:`lookalike.index.projection`): a few floats an item whose inner products keep
    most of the cosines. Held in memory for every item, it scores a learned-code shortlist so that only the best
    few candidates are read from the store for the exact re-rank (``Engine.reranker``). Its rows are not
    normalised: searched on its own, its scores are projected inner products, a little below the cosines."""

    kind = "float"

    def __init__(self, base: Encoder, basis: np.ndarray) -> None:
        basis = np.ascontiguousarray(basis, dtype=np.float32)
        if basis.ndim != 2 or basis.shape[0] != base.dim:
            raise InvalidParameterError(f"A sketch of {base.spec!r} needs a ({base.dim}, dims) basis. Got "
                                        f"{basis.shape}.")
        super().__init__(base, basis.shape[1])
        self.basis = basis

    @property
    def spec(self) -> str:
        return sketch_spec(self.base.spec, self.dim)

    def derive(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) <= 8:  # not BLAS: see lookalike.index.composed (its threads spin after a small product)
            return np.ascontiguousarray(np.einsum("nd,dk->nk", vectors, self.basis), dtype=np.float32)
        return np.ascontiguousarray(vectors @ self.basis, dtype=np.float32)


def sketch_spec(base_spec: str, dims: int) -> str:
    return f"{base_spec}+{SKETCH}:{dims}"


def hashed_spec(base_spec: str, hasher: str, bits: int) -> str:
    """``base+name:bits``; a hasher with options (``"adapt:k=60"``) after the bits: ``base+adapt:64,k=60``."""
    name, _, options = hasher.partition(":")
    return f"{base_spec}+{name}:{bits}" + (f",{options}" if options else "")


def state_to_bytes(state: dict[str, Any]) -> bytes:
    """A fitted hasher's state (arrays and scalars only) as .npz bytes: no pickle, safe to load."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in state.items()}
    np.savez(buf, **arrays)
    return buf.getvalue()


def state_from_bytes(blob: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}
