"""A large PNG decoded straight into its reduced size: the one zlib stream inflated in bounded pieces by ISA-L
(``isal``, about twice zlib's speed here; zlib where it is missing) while a second thread undoes the row filters
and box-reduces the rows in C (:mod:`._pngreduce`), so that the two overlap and no full-size pixels are held.

PNG has no reduced decode: every byte must be inflated and unfiltered, and inflating was most of Pillow's time
(BENCHMARKS.md, "Large photos"). Only the common case comes here: 8-bit, non-interlaced grey, grey+alpha, RGB or
RGBA without a transparent colour (``tRNS``). Anything else, and any PNG this reader finds damaged, answers None:
libvips or Pillow then decodes it, or says what is wrong with it, as before.
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any, cast

from PIL import Image

from lookalike.images._pixels import _transposed

_decompressobj: Callable[[], Any] = zlib.decompressobj
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)
try:  # pragma: no cover - import guard; isal is a dependency, zlib the same format inflated slower
    from isal import isal_zlib

    _decompressobj = isal_zlib.decompressobj
    _INFLATE_ERRORS = (cast(type[Exception], isal_zlib.error), zlib.error)
except ImportError:  # pragma: no cover
    pass

try:  # pragma: no cover - import guard
    from lookalike.images._pngreduce import Reducer
except ImportError:  # pragma: no cover - the extension is built by pip install
    Reducer = None

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> channels (8-bit only)
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
PIECE = 1 << 18  # compressed bytes inflated at a time
OUT_PIECE = 1 << 20  # at most this many inflated bytes a step; with the queue's 4, a zip bomb holds ~5 MB


class _Unsupported(Exception):
    """Not a PNG this reader takes (or a damaged one): the caller falls back."""


_FALLBACK: tuple[type[Exception], ...] = (_Unsupported, ValueError, MemoryError, *_INFLATE_ERRORS)


def _chunks(data: bytes):  # noqa: ANN202 - a generator of (type, start, end)
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        start, end = pos + 8, pos + 8 + length
        if end + 4 > len(data):
            raise _Unsupported("a chunk runs past the end of the file")
        yield kind, start, end
        if kind == b"IEND":
            return
        pos = end + 4
    raise _Unsupported("no IEND chunk")


def _checked(data: bytes, kind: bytes, start: int, end: int) -> memoryview:
    (crc,) = struct.unpack_from(">I", data, end)
    body = memoryview(data)[start:end]
    if zlib.crc32(body, zlib.crc32(kind)) != crc:
        raise _Unsupported(f"bad CRC in {kind!r}")
    return body


def _layout(data: bytes) -> tuple[int, int, int, int, list[tuple[int, int]]]:
    """(width, height, channels, orientation, IDAT spans) of a PNG this reader decodes, else _Unsupported."""
    if not data.startswith(SIGNATURE):
        raise _Unsupported("not a PNG")
    header = None
    orientation = 1
    spans: list[tuple[int, int]] = []
    for kind, start, end in _chunks(data):
        if header is None:
            if kind != b"IHDR" or end - start != 13:
                raise _Unsupported("IHDR is not the first chunk")
            header = struct.unpack(">IIBBBBB", _checked(data, kind, start, end))
        elif kind == b"IDAT":
            spans.append((start, end))
        elif kind in (b"tRNS", b"PLTE"):
            raise _Unsupported("a palette or a transparent colour")
        elif kind == b"eXIf":
            orientation = _exif_orientation(bytes(_checked(data, kind, start, end)))
    if header is None or not spans:
        raise _Unsupported("no image data")
    width, height, depth, colour, compression, filtering, interlace = header
    if depth != 8 or colour not in _CHANNELS or compression or filtering or interlace:
        raise _Unsupported("not 8-bit non-interlaced grey/RGB(A)")
    return width, height, _CHANNELS[colour], orientation, spans


def _exif_orientation(raw: bytes) -> int:
    exif = Image.Exif()
    try:
        exif.load(raw)
        value = int(exif.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises many kinds; the image itself is fine
        return 1
    return value if 1 <= value <= 8 else 1


def _inflated(data: bytes, spans: list[tuple[int, int]]):  # noqa: ANN202 - a generator of bytes
    """The IDAT stream inflated, at most OUT_PIECE bytes at a time."""
    stream = _decompressobj()
    view = memoryview(data)
    for start, end in spans:
        for lo in range(start, end, PIECE):
            piece: bytes | memoryview = view[lo:min(end, lo + PIECE)]
            while True:
                out = stream.decompress(piece, OUT_PIECE)
                if out:
                    yield out
                if stream.eof:
                    return
                piece = stream.unconsumed_tail
                if not piece and len(out) < OUT_PIECE:  # a full output may leave more of a match to copy
                    break
    tail = stream.flush()
    if tail:
        yield tail


def _reduce(reducer: Any, data: bytes, spans: list[tuple[int, int]]) -> None:
    """Inflate here and feed ``reducer`` on a second thread (both release the GIL), through a short queue: about
    the time of inflating alone. Raises what the reducer raised."""
    pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    state: dict[str, Any] = {"done": False, "error": None}

    def feed() -> None:
        while (piece := pieces.get()) is not None:
            if state["done"] or state["error"] is not None:
                continue  # drained, so that the producer never blocks
            try:
                state["done"] = reducer.feed(piece)
            except ValueError as err:
                state["error"] = err

    worker = threading.Thread(target=feed, name="lookalike-png", daemon=True)
    worker.start()
    try:
        for out in _inflated(data, spans):
            if state["done"] or state["error"] is not None:
                break
            pieces.put(out)
    finally:
        pieces.put(None)
        worker.join()
    if state["error"] is not None:
        raise state["error"]


def decode_reduced(data: bytes, factor: int) -> tuple[Image.Image, int] | None:
    """The PNG ``data`` box-reduced by ``factor`` (the mean of each factor x factor block, the edge blocks of what
    they hold, as Pillow's ``reduce``; with alpha, the colour weighted by it) in its own mode (L, LA, RGB, RGBA),
    turned upright by its EXIF orientation, with that orientation (1-8), as :func:`._vips.reduced`; None where
    this reader does not take the file (see the module doc) or finds it damaged."""
    if Reducer is None or factor < 2:
        return None
    try:
        width, height, channels, orientation, spans = _layout(data)
        reducer = Reducer(width, height, channels, factor)
        _reduce(reducer, data, spans)
        pixels = reducer.result()
    except _FALLBACK:
        return None
    image = Image.frombuffer(_MODES[channels], reducer.size, pixels, "raw", _MODES[channels], 0, 1)
    return _transposed(image, orientation), orientation
