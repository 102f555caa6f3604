"""The guard around Pillow: its warnings ignored safely across threads, its exceptions made typed errors."""

from __future__ import annotations

import contextlib
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator

from PIL import Image

from lookalike.errors import ImageTooLargeError, LookalikeError, TruncatedImageError

try:  # HEIC/HEIF (phone photos) as a Pillow plugin: Image.open(..., formats=["HEIF"])
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_AVAILABLE = True
except ImportError:  # pragma: no cover - pillow-heif is a dependency
    HEIF_AVAILABLE = False

# Pillow raises these (and more) from deep inside its plugins on corrupt data; all mean "this data is broken".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, struct.error,
                  ZeroDivisionError, OverflowError, zlib.error)


class _PillowWarningsIgnored:
    """Ignore warnings raised inside Pillow while any thread decodes.

    ``warnings.catch_warnings`` swaps a process-wide list, and threads that nest it out of order leak their
    filters (one thread's exit restores a list another thread changed), so decoding threads share one: the
    first thread in enters it, the last one out leaves it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._context: warnings.catch_warnings[None] | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._context = warnings.catch_warnings()
                self._context.__enter__()
                warnings.filterwarnings("ignore", module=r"PIL\.")
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._context is not None:
                self._context.__exit__(None, None, None)
                self._context = None


_PILLOW_WARNINGS_IGNORED = _PillowWarningsIgnored()


def _bomb_message(text: str, max_pixels: int | None) -> str:
    """Pillow refused an image before lookalike could read its size: say so in lookalike's terms."""
    found = re.search(r"\((\d+) pixels\)", text)
    pixels = int(found.group(1)) if found else None
    pillow = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if pixels is not None and max_pixels is not None and pixels > max_pixels:
        return f"{pixels:,} pixels, over the limit of {max_pixels:,} (ImageLimits.max_pixels)"
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return (f"{size}, over Pillow's own limit of {pillow:,} (PIL.Image.MAX_IMAGE_PIXELS, which caps "
            "ImageLimits.max_pixels: raise both to decode larger images)")


@contextlib.contextmanager
def _decoding(name: str, fmt: str, max_pixels: int | None = None) -> Iterator[None]:
    """Silence Pillow's warnings; turn whatever it raises on bad data into a typed error naming ``name``.
    ``max_pixels``: lookalike's own limit, which a decompression bomb refused by Pillow is reported against."""
    with _PILLOW_WARNINGS_IGNORED:
        try:
            yield
        except LookalikeError:
            raise
        except Image.DecompressionBombError as err:
            raise ImageTooLargeError(name, _bomb_message(str(err), max_pixels)) from err
        except _DECODE_ERRORS as err:
            unparsed = isinstance(err, Image.UnidentifiedImageError)  # its message holds a BytesIO repr
            detail = "the header cannot be parsed" if unparsed else str(err) or type(err).__name__
            kind = "truncated" if isinstance(err, EOFError) or "truncated" in detail.lower() else "corrupt"
            raise TruncatedImageError(name, f"{kind} {fmt} data ({detail})") from err
