"""Getting images ready for the catalogue: read, hash, decode and prepare one source (run in worker threads
by :func:`lookalike.prefetch.pipelined`, a chunk ahead of the model)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..encoders import Encoder
from ..encoders.hashed import DerivedEncoder
from ..errors import ImageError
from ..images import ImageLimits, ImageSource, describe_source, load_image, read_bytes
from .crop import CROP_FEATURE, crop_loaded
from .extensions import Localiser, registered_features
from .store import NewItem


@dataclass
class Prepared:
    """One image ready to be written: its facts and, per encoder number, the array its model needs."""

    source: str
    path: str | None
    data: bytes | None
    sha256: str
    width: int
    height: int
    format: str | None
    arrays: dict[int, np.ndarray] = field(default_factory=dict)
    features: dict[str, bytes] = field(default_factory=dict)  # of the registered feature extractors

    def new_item(self, path: str | None) -> NewItem:
        return NewItem(path, self.sha256, self.width, self.height)


@dataclass
class Unchanged:
    """A file whose content hash matches what the catalogue already holds for its path."""

    path: str


Outcome = Prepared | Unchanged | ImageError


def _relabel(err: ImageError, source: str) -> ImageError:
    """The same error, naming the file instead of ``<bytes>``."""
    return type(err)(source, err.reason)


def prepare_image(
    source: ImageSource,
    encoders: Sequence[tuple[int, Encoder]],
    limits: ImageLimits,
    *,
    draft: tuple[int, int] | None,
    known: dict[str, str] | None = None,
    crop: Localiser | None = None,
    mask: bool = False,
) -> Outcome:
    """Read, hash, decode and prepare one source; an ImageError is returned, not raised, so a batch goes on.

    ``draft`` is the catalogue's decode hint (``EncoderSet.draft``, the same for queries). ``known`` maps file
    paths to the sha256 the catalogue holds for them: a file with the same hash is Unchanged. ``crop``: the
    catalogue's localiser (setting ``crop.model``): the encoders see the image cut to the box it finds (kept as the
    feature ``crop.box``), the registered features the whole image; ``mask`` (setting ``crop.mask``): with the
    background inside the box removed.
    """
    name = describe_source(source)
    try:
        if isinstance(source, str | os.PathLike):
            path = str(Path(source).absolute())
            data = read_bytes(path, limits)
            sha = hashlib.sha256(data).hexdigest()
            if known is not None and known.get(path) == sha:
                return Unchanged(path)
            try:
                loaded = load_image(data, limits=limits, draft=draft)
            except ImageError as err:
                raise _relabel(err, path) from err
            prepared = Prepared(path, path, None, sha, loaded.width, loaded.height, loaded.format)
        else:
            loaded = load_image(source, limits=limits, draft=draft)
            raw = bytes(source) if isinstance(source, bytes | bytearray | memoryview) else None
            prepared = Prepared(name, None, raw, loaded.sha256, loaded.width, loaded.height, loaded.format)
        prepared.features = {name: fn(loaded.image) for name, fn in registered_features().items()}
        if crop is not None:
            loaded, box = crop_loaded(loaded, crop, mask=mask)
            prepared.features[CROP_FEATURE] = b"" if box is None else str(box).encode()
        prepared.arrays = {num: enc.prepare(loaded.image) for num, enc in encoders if _base_of(enc, encoders) is None}
        return prepared
    except ImageError as err:
        return err


def _base_of(enc: Encoder, encoders: Sequence[tuple[int, Encoder]]) -> int | None:
    """For a derived encoder whose float encoder is also in the list, that encoder's number (its vectors are
    reused)."""
    if not isinstance(enc, DerivedEncoder):
        return None
    return next((num for num, other in encoders if other.spec == enc.base.spec), None)


def run_encoders(prepared: Sequence[Prepared], encoders: Sequence[tuple[int, Encoder]]) -> dict[int, np.ndarray]:
    """Run each encoder's model on the prepared arrays of a chunk: encoder number → (n, width) vectors.

    A derived encoder (codes, sketch) whose float encoder is in the list derives from that encoder's vectors: one
    model run, not two.
    """
    out: dict[int, np.ndarray] = {}
    for num, enc in encoders:
        if _base_of(enc, encoders) is None:
            out[num] = enc.run_prepared([p.arrays[num] for p in prepared])
    for num, enc in encoders:
        base = _base_of(enc, encoders)
        if base is not None:
            assert isinstance(enc, DerivedEncoder)
            out[num] = enc.derive(out[base]) if len(prepared) else enc.run_prepared([])
    return out
