"""Combined encoders: several float encoders' vectors side by side, ``"efficientnet-lite0++pixels:size=28"``.

The seed talk on CNN-layer search: shallow layers carry texture, shape and layout, deep layers semantics, and
search can use both. A combined encoder runs each part on the same image, L2-normalises each part's vector, scales
it by the part's ``weight`` option (default 1) and L2-normalises the concatenation, so the cosine of two combined
vectors is the weighted mean of the parts' cosines (``sum w_i^2 cos_i / sum w_i^2``).

On Fashion-MNIST the deep efficientnet-lite0 embedding confuses whole groups (shirt, T-shirt, pullover, coat) that
the raw silhouette tells apart more often, and the two together make a better neighbourhood graph than either:
float mAP@1000 on a validation split of the training set 0.760 (efficientnet-lite0), 0.689 (pixels), 0.781
(``efficientnet-lite0++pixels:size=28,weight=0.7``); the codes that ``adapt`` / ``adapt-spectral`` learn from the
combination are the best this package has (BENCHMARKS.md, "Codes from a combined encoder").

Spec: the parts' specs joined by ``++`` (a single ``+`` names a hasher or sketch after a float spec). Each part may
carry ``weight=W`` (a positive number) among its options; the other options are the part's own. Only float
encoders combine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from .base import Encoder

SEPARATOR = "++"
_MAX_PARTS = 8


def split_parts(spec: str) -> list[str]:
    """The part specs of a combined spec (``[spec]`` when it is not one)."""
    return [part.strip() for part in spec.split(SEPARATOR)]


def parse_weight(value: object, spec: str) -> float:
    try:
        weight = float(str(value))
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight) or weight <= 0 or weight > 1e6:
        raise InvalidParameterError(f"weight must be a positive number up to 1e6 in {spec!r}. Got {value!r}.")
    return weight


class CombinedEncoder(Encoder):
    """Float encoders' unit vectors, each scaled by its weight, concatenated and L2-normalised (module docstring).

    Args:
        parts: (encoder, weight) pairs, two or more, every encoder a float one.
    """

    name = "combined"
    kind = "float"

    def __init__(self, parts: Sequence[tuple[Encoder, float]]) -> None:
        parts = list(parts)
        if not 2 <= len(parts) <= _MAX_PARTS:
            raise InvalidParameterError(f"A combined encoder joins 2 to {_MAX_PARTS} encoders. Got {len(parts)}.")
        for enc, _ in parts:
            if enc.kind != "float" or isinstance(enc, CombinedEncoder):
                raise InvalidParameterError(f"Only float encoders combine. Got {enc.spec!r} ({enc.kind}).")
        self.parts = [(enc, parse_weight(w, enc.spec)) for enc, w in parts]
        self.dim = sum(enc.dim for enc, _ in self.parts)
        sizes = [enc.input_size for enc, _ in self.parts]
        self.input_size = None if any(s is None for s in sizes) else max(s for s in sizes if s is not None)
        self.batch_size = min(enc.batch_size for enc, _ in self.parts)
        probes = [np.asarray(enc.prepare(Image.new("RGB", (8, 8)))) for enc, _ in self.parts]
        self._layouts = [(p.shape, p.dtype, p.nbytes) for p in probes]  # fixed by each part's resize

    @property
    def spec(self) -> str:
        return SEPARATOR.join(_with_weight(enc.spec, w) for enc, w in self.parts)

    def _prepare(self, image: Image.Image) -> np.ndarray:
        """The parts' prepared arrays as one row of bytes (each keeps its own dtype: uint8 pixels for a network,
        float32 for ``pixels``)."""
        arrays = []
        for (enc, _), (shape, dtype, _) in zip(self.parts, self._layouts, strict=True):
            a = np.ascontiguousarray(enc.prepare(image), dtype=dtype)
            if a.shape != shape:
                raise InvalidParameterError(f"{enc.spec!r} prepared a {a.shape} array, not {shape}: it cannot be "
                                            "combined")
            arrays.append(a.reshape(-1).view(np.uint8))
        return np.concatenate(arrays)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        out, col = [], 0
        for (enc, weight), (shape, dtype, size) in zip(self.parts, self._layouts, strict=True):
            prepared = np.ascontiguousarray(batch[:, col:col + size]).view(dtype).reshape((n, *shape))
            col += size
            out.append(np.float32(weight) * unit(np.asarray(enc.run_prepared(list(prepared)), dtype=np.float32)))
        return unit(np.concatenate(out, axis=1))

    def combine(self, vectors: Sequence[np.ndarray]) -> np.ndarray:
        """The combined vectors of the parts' own vectors (one (n, part dim) array per part, in order): what
        ``encode`` returns for the same images, without running the models again."""
        if len(vectors) != len(self.parts):
            raise InvalidParameterError(f"{self.spec!r} combines {len(self.parts)} parts. Got {len(vectors)} arrays.")
        out = []
        for (enc, weight), v in zip(self.parts, vectors, strict=True):
            v = np.asarray(v, dtype=np.float32)
            if v.ndim != 2 or v.shape[1] != enc.dim or len(v) != len(vectors[0]):
                raise InvalidParameterError(f"{enc.spec!r} vectors must be (n, {enc.dim}). Got {v.shape}.")
            out.append(np.float32(weight) * unit(v))
        return unit(np.concatenate(out, axis=1))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


def _with_weight(spec: str, weight: float) -> str:
    if weight == 1.0:
        return spec
    return f"{spec}{',' if ':' in spec else ':'}weight={weight:g}"


def build(spec: str, make: Callable[[str], Encoder],
          parse_spec: Callable[[str], tuple[str, dict[str, str]]]) -> CombinedEncoder:
    """The combined encoder of ``spec`` (parts joined by ``++``), each part built by ``make`` from its spec without
    its ``weight`` option (``parse_spec``: the registry's)."""
    texts = split_parts(spec)
    if len(texts) > _MAX_PARTS:
        raise InvalidParameterError(f"A combined encoder joins 2 to {_MAX_PARTS} encoders. Got {len(texts)}.")
    parts = []
    for text in texts:
        if not text:
            raise InvalidParameterError(f"An empty part in the combined encoder spec {spec[:200]!r}.")
        name, opts = parse_spec(text)
        if "weight" not in opts:
            parts.append((make(text), 1.0))
            continue
        weight = parse_weight(opts.pop("weight"), text)
        rest = ",".join(f"{k}={v}" for k, v in opts.items())
        parts.append((make(f"{name}:{rest}" if rest else name), weight))
    return CombinedEncoder(parts)
