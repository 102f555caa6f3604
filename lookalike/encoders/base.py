"""The encoder protocol and the registry that finds encoders by name.

An encoder turns images into fixed-size vectors: float32 rows (L2-normalised, compared by cosine) or packed binary
codes (uint8 rows, compared by Hamming distance). Subclasses write two small methods:

- ``_prepare(image)``: one RGB PIL image → one array (runs in worker threads, must not touch shared state);
- ``_run(batch)``: the stacked prepared arrays → an (n, width) array.

The base class does the rest: loading any image source, batching, progress.

Encoders are named by a *spec* string, ``name`` or ``name:key=value,key=value`` (or ``name:PATH`` for model files),
so that a user can type ``--encoder efficientnet-lite0:layer=stage4,pool=gram``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image

from ..images import DEFAULT_LIMITS, ImageLimits, ImageSource, load_image
from ..prefetch import pipelined
from ..validation import check_int

Kind = Literal["float", "binary"]
T = TypeVar("T")


class Encoder(abc.ABC):
    """Base class of all encoders.

    Attributes:
        name: the registry name, e.g. ``"efficientnet-lite0"``.
        kind: ``"float"`` (L2-normalised float32 rows, cosine) or ``"binary"`` (packed uint8 rows, Hamming).
        dim: the vector length for float encoders, the number of bits for binary ones.
        input_size: the (width, height) the encoder resizes to, used as a decode hint; None if it does not resize.
        batch_size: the default number of images per model call.
    """

    name: str = ""
    kind: Kind = "float"
    dim: int = 0
    input_size: tuple[int, int] | None = None
    batch_size: int = 64

    @property
    def spec(self) -> str:
        """The canonical spec string that rebuilds this encoder with :func:`get_encoder`."""
        opts = self.options()
        if not opts:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in opts.items())

    def options(self) -> dict[str, str]:
        """The options that make this encoder differ from its defaults, as strings (for :attr:`spec`)."""
        return {}

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self.kind == "float" else np.dtype(np.uint8)

    @property
    def width(self) -> int:
        """Columns of one encoded row: ``dim`` floats, or ``dim / 8`` bytes for binary codes."""
        return self.dim if self.kind == "float" else self.dim // 8

    def encode(
        self,
        images: ImageSource | Iterable[ImageSource],
        *,
        batch_size: int | None = None,
        progress: bool = False,
        limits: ImageLimits = DEFAULT_LIMITS,
    ) -> np.ndarray:
        """Encode images.

        Args:
            images: one image source or an iterable of them (paths, bytes, arrays, PIL images).
            batch_size: images per model call (default: the encoder's ``batch_size``).
            progress: show a progress bar on stderr.
            limits: pixel and byte limits for decoding.

        Returns:
            (n, width) array: float32 for float encoders, uint8 packed bits for binary ones.
            A single source gives n = 1.

        Raises:
            ImageError: the first image that cannot be loaded (a subclass names the reason).
        """
        sources: list[ImageSource] = [images] if _is_single(images) else list(images)  # type: ignore[list-item,arg-type]
        hint = self.input_size

        def load_and_prepare(source: ImageSource) -> np.ndarray:
            return self._prepare(load_image(source, limits=limits, draft=hint).image)

        return self._encode_stream(sources, load_and_prepare, batch_size, progress)

    def encode_pil(
        self, images: Sequence[Image.Image], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """Encode already-loaded RGB PIL images: (n, width) array."""
        return self._encode_stream(images, self._prepare, batch_size, progress)

    def _encode_stream(
        self, items: Sequence[T], prepare: Callable[[T], np.ndarray], batch_size: int | None, progress: bool
    ) -> np.ndarray:
        """Prepare items in threads a batch ahead of the model, run the model batch by batch."""
        bs = _check_batch_size(self.batch_size if batch_size is None else batch_size)
        out = np.empty((len(items), self.width), dtype=self.dtype)
        bar = progress_bar(len(items), progress, f"encoding ({self.name})")
        start = 0
        for prepared in pipelined(items, prepare, bs):
            out[start : start + len(prepared)] = self.run_prepared(prepared)
            start += len(prepared)
            bar.update(len(prepared))
        bar.close()
        return out

    def prepare(self, image: Image.Image) -> np.ndarray:
        """Public form of ``_prepare``: one RGB image → the array ``run_prepared`` expects."""
        return self._prepare(image)

    def run_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Run the model on prepared arrays, :attr:`batch_size` at a time: (n, width). (The writer hands it a whole
        64-image chunk: in one model call that held ~800 MiB of activations and ran slower.)"""
        if not prepared:
            return np.empty((0, self.width), dtype=self.dtype)
        step = self.batch_size
        parts = [self._run(np.stack(prepared[i : i + step])) for i in range(0, len(prepared), step)]
        return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0], dtype=self.dtype)

    @abc.abstractmethod
    def _prepare(self, image: Image.Image) -> np.ndarray:
        """One RGB PIL image → one array (resized, converted); thread-safe."""

    @abc.abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Stacked prepared arrays → (n, width) vectors."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r} kind={self.kind} dim={self.dim}>"


def _is_single(images: object) -> bool:
    return isinstance(images, str | bytes | bytearray | memoryview | np.ndarray | Image.Image) or hasattr(
        images, "__fspath__"
    )


def _check_batch_size(batch_size: int) -> int:
    return check_int("batch_size", batch_size, 1)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool, desc: str) -> Any:
    """A tqdm bar on stderr when enabled and worth showing, else a no-op object with the same two methods."""
    if not enabled or total < 2:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False)
