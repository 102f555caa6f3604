"""Images in: turn a path, encoded bytes, an array or a PIL image into one checked RGB picture.

Accepted encodings are JPEG, PNG, WebP, BMP, GIF and TIFF (:data:`SUPPORTED_FORMATS`), decided from the
content (:func:`sniff_format`), never from the file name. Animated GIF/WebP and multi-page TIFF give their
first frame. EXIF orientation is applied, and every pixel mode becomes RGB: alpha is composited onto white
(transparent pixels often hold black); 16-bit and float data are scaled, not clipped; CMYK uses Pillow's
conversion.

Every failure is an :class:`~lookalike.errors.ImageError` subclass naming the source and the reason; no raw
Pillow exception escapes. Limits (:class:`ImageLimits`) are checked before the work they protect: the byte
count before a file is read, the pixel count from the header before anything is decoded. Warnings raised
inside Pillow (corrupt EXIF, odd TIFF tags, its decompression-bomb warning, which our pixel limit replaces)
are ignored while decoding, safely across threads; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never touched: a
truncated image is an error. Pillow's hard limit (``2 * Image.MAX_IMAGE_PIXELS``) still applies above ours.

Arrays that are not images (wrong shape or dtype, empty, NaN, floats outside [0, 1]) raise
:class:`~lookalike.errors.NotAnImageError` like any other bad content, so a batch can skip them; arguments
wrong whatever the image (a bad ``box``, ``draft`` or source type) raise ``InvalidParameterError``.

Example::

    loaded = load_image("photos/cat.jpg", box=Box.parse("10,20,200,150"))
    loaded.image.size, loaded.width, loaded.format   # ((200, 150), 4032, 'JPEG')
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.errors import (
    EmptyImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageUnreadableError,
    InvalidParameterError,
    InvalidRegionError,
    LookalikeError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "Box",
    "ImageLimits",
    "ImageSource",
    "LoadedImage",
    "Skipped",
    "crop",
    "describe_source",
    "find_images",
    "is_image_file",
    "load_image",
    "read_bytes",
    "sniff_format",
]

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | np.ndarray | Image.Image

SUPPORTED_FORMATS = frozenset({"BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP"})
IMAGE_EXTENSIONS = frozenset({".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"})
_HEADER_BYTES = 16
_MAX_COORD = 2**31 - 1
_BOX_PATTERN = r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*"
# Pillow raises these (and more) from deep inside its plugins on corrupt data; all mean "this data is broken".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, struct.error,
                  ZeroDivisionError, OverflowError, zlib.error)
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"),
    # Recognised so that the error can say what the file is, then refused.
    (b"\x00\x00\x01\x00", "ICO"), (b"\x00\x00\x02\x00", "CUR"), (b"%PDF-", "PDF"), (b"8BPS", "PSD"),
    (b"%!PS", "EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"), (b"icns", "ICNS"), (b"qoif", "QOI"), (b"DDS ", "DDS"), (b"v/1\x01", "EXR"),
    (b"gimp xcf", "XCF"), (b"#?RADIANCE", "HDR"), (b"#?RGBE", "HDR"), (b"/* XPM */", "XPM"),
    (b"SIMPLE  =", "FITS"), (b"<svg", "SVG"),
)
_NETPBM = {b"1": "PBM", b"2": "PGM", b"3": "PPM", b"4": "PBM", b"5": "PGM", b"6": "PPM", b"7": "PAM"}
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF",
                b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}
_BMP_DIBS = {12, 16, 40, 52, 56, 64, 108, 124}
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
              7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def _check_int(owner: str, name: str, value: object, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
        bound = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise InvalidParameterError(f"The {name!r} parameter of {owner} must be {bound}. Got {value!r}.")
    return value


@dataclass(frozen=True)
class ImageLimits:
    """Decompression-bomb guards: pixels (width * height, read from the header) and encoded bytes."""

    max_pixels: int = 64_000_000
    max_bytes: int = 100 * 2**20

    def __post_init__(self) -> None:
        _check_int("ImageLimits", "max_pixels", self.max_pixels)
        _check_int("ImageLimits", "max_bytes", self.max_bytes)


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class Box:
    """A region of an image in pixels: top-left corner ``(x, y)``, width ``w`` and height ``h``.

    A box may be empty (``w`` or ``h`` 0) as the result of :meth:`clip`; :func:`crop` refuses empty boxes.
    """

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            _check_int("Box", name, getattr(self, name), low=0, high=_MAX_COORD)

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``"X,Y,W,H"``: non-negative integers, W and H positive, e.g. ``"10,20,200,150"``."""
        found = re.fullmatch(_BOX_PATTERN, text, re.ASCII) if isinstance(text, str) else None
        if found is None:
            raise InvalidParameterError(
                f"A box must be 'X,Y,W,H': four non-negative integers in pixels, e.g. '10,20,200,150'. "
                f"Got {_shorten(text)} instead.")
        if any(len(part) > 10 or int(part) > _MAX_COORD for part in found.groups()):
            raise InvalidParameterError(f"Box values must be at most {_MAX_COORD}. Got {_shorten(text)}.")
        x, y, w, h = (int(part) for part in found.groups())
        if w == 0 or h == 0:
            raise InvalidParameterError(f"A box needs a positive width and height. Got {_shorten(text)}.")
        return cls(x, y, w, h)

    @property
    def is_empty(self) -> bool:
        return self.w == 0 or self.h == 0

    def clip(self, width: int, height: int) -> Box:
        """The part of this box inside a ``width`` x ``height`` image; empty when they do not overlap."""
        x0, y0 = min(self.x, width), min(self.y, height)
        return Box(x0, y0, min(self.x + self.w, width) - x0, min(self.y + self.h, height) - y0)

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``image`` is RGB, upright, cropped; ``width``/``height`` are before crop and draft."""

    image: Image.Image
    sha256: str
    width: int
    height: int
    format: str | None
    source: str


@dataclass(frozen=True)
class Skipped:
    """A file :func:`find_images` left out, and why."""

    source: str
    reason: str


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_source(source: ImageSource) -> str:
    """A printable name: the path itself, or ``<bytes>``, ``<array>``, ``<PIL image>``."""
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(os.fspath(source))
    if isinstance(source, bytes | bytearray | memoryview):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    if isinstance(source, Image.Image):
        return "<PIL image>"
    return f"<{type(source).__name__}>"


def sniff_format(header: bytes) -> str | None:
    """The image format the first bytes announce (see module doc), a refused format's name, or None."""
    header = bytes(header[:_HEADER_BYTES])
    for magic, name in _SIGNATURES:
        if header.startswith(magic):
            return name
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "WEBP"
    if header[:2] == b"BM" and len(header) >= 16 and int.from_bytes(header[14:16], "little") in _BMP_DIBS:
        return "BMP"  # "BM" alone would catch text; the DIB header size at byte 14 confirms
    if header[4:8] == b"ftyp" and header[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[header[8:12]]
    if len(header) >= 3 and header[:1] == b"P" and header[1:2] in _NETPBM and header[2:3].isspace():
        return _NETPBM[header[1:2]]
    if len(header) >= 3 and header[0] == 0x0A and header[1] in (0, 2, 3, 4, 5) and header[2] == 1:
        return "PCX"
    return None


def _supported_format(name: str, header: bytes) -> str:
    """The format of ``header`` if we decode it; else raise for empty, non-image or refused content."""
    if not header:
        raise EmptyImageError(name, "empty (0 bytes)")
    fmt = sniff_format(header)
    if fmt is None:
        raise NotAnImageError(name, "not an image (the content matches no known image format)")
    if fmt not in SUPPORTED_FORMATS:
        accepted = ", ".join(sorted(SUPPORTED_FORMATS))
        raise UnsupportedFormatError(name, f"unsupported format {fmt} (accepted: {accepted})")
    return fmt


def _os_error(name: str, err: OSError) -> ImageError:
    if isinstance(err, FileNotFoundError | NotADirectoryError):
        return ImageNotFoundError(name, "no such file or directory")
    if isinstance(err, PermissionError):
        return ImageUnreadableError(name, "permission denied")
    if isinstance(err, IsADirectoryError):
        return ImageUnreadableError(name, "is a directory, not a file")
    return ImageUnreadableError(name, f"cannot read: {err.strerror or err}")


def read_bytes(path: str | os.PathLike[str], limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """The whole file, refusing missing, unreadable, non-regular, empty or over-``max_bytes`` files first."""
    name = describe_source(path)
    try:  # O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise _os_error(name, err) from err
    except ValueError as err:  # a NUL byte in the path
        raise ImageNotFoundError(name, "no such file (the path contains a NUL byte)") from err
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageUnreadableError(name, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageUnreadableError(name, "not a regular file")
        if info.st_size > limits.max_bytes:
            raise ImageTooLargeError(name, f"{info.st_size:,} bytes, over the limit of {limits.max_bytes:,} "
                                           "(ImageLimits.max_bytes)")
        with os.fdopen(fd, "rb", closefd=False) as file:  # one byte past the limit: files can grow
            data = file.read(limits.max_bytes + 1)
    except OSError as err:
        raise _os_error(name, err) from err
    finally:
        os.close(fd)
    _check_bytes(name, len(data), limits)
    return data


def _check_bytes(name: str, size: int, limits: ImageLimits) -> None:
    if size > limits.max_bytes:
        raise ImageTooLargeError(name, f"more than {limits.max_bytes:,} bytes (ImageLimits.max_bytes)")
    if size == 0:
        raise EmptyImageError(name, "empty (0 bytes)")


def _check_pixels(name: str, width: int, height: int, limits: ImageLimits) -> None:
    if width < 1 or height < 1:
        raise TruncatedImageError(name, f"the header declares an empty {width}x{height} image")
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(name, f"{width}x{height} is {width * height:,} pixels, over the limit of "
                                       f"{limits.max_pixels:,} (ImageLimits.max_pixels)")


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


@contextlib.contextmanager
def _decoding(name: str, fmt: str) -> Iterator[None]:
    """Silence Pillow's warnings; turn whatever it raises on bad data into a typed error naming ``name``."""
    with _PILLOW_WARNINGS_IGNORED:
        try:
            yield
        except LookalikeError:
            raise
        except Image.DecompressionBombError as err:
            raise ImageTooLargeError(name, f"{err} (Pillow's Image.MAX_IMAGE_PIXELS)") from err
        except _DECODE_ERRORS as err:
            unparsed = isinstance(err, Image.UnidentifiedImageError)  # its message holds a BytesIO repr
            detail = "the header cannot be parsed" if unparsed else str(err) or type(err).__name__
            kind = "truncated" if isinstance(err, EOFError) or "truncated" in detail.lower() else "corrupt"
            raise TruncatedImageError(name, f"{kind} {fmt} data ({detail})") from err


def _orientation(img: Image.Image) -> int:
    value = img.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


def _scale_wide(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit or float pixels to uint8 by scaling, not clipping ("I" holds 16-bit data in Pillow)."""
    if mode != "F":
        return ((np.clip(pixels.astype(np.int64), 0, 65535) + 128) // 257).astype(np.uint8)
    values = pixels.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    low, high = values[finite].min(), values[finite].max()
    if low >= 0 and high <= 1:  # the usual convention; anything else is stretched to the full range
        scaled = values * 255
    else:
        scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
    return np.rint(np.where(finite, scaled, 0)).clip(0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode to RGB; alpha and palette/colour-key transparency are composited onto white."""
    if img.mode in _WIDE_MODES:
        return Image.fromarray(_scale_wide(np.asarray(img), img.mode)).convert("RGB")
    try:
        if img.mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = (img.convert("LA") if img.mode == "La" else img).convert("RGBA")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")
    except ValueError as err:
        raise UnsupportedFormatError(name, f"unsupported pixel mode {img.mode} ({err})") from err


def _upright_rgb(img: Image.Image, name: str) -> Image.Image:
    orientation = _orientation(img)
    upright = img.transpose(_TRANSPOSE[orientation]) if orientation != 1 else img
    return _to_rgb(upright, name)


def _decode(data: bytes, name: str, limits: ImageLimits, box: Box | None,
            draft: tuple[int, int] | None) -> LoadedImage:
    fmt = _supported_format(name, data[:_HEADER_BYTES])
    with _decoding(name, fmt):
        img = Image.open(io.BytesIO(data), formats=[fmt])
        _check_pixels(name, img.width, img.height, limits)
        size = img.size
        if draft is not None and box is None and fmt == "JPEG":  # JPEG keeps EXIF in its header
            img.draft("RGB", _upright_size(draft, _orientation(img)))
        img.load()
        width, height = _upright_size(size, _orientation(img))
        rgb = _upright_rgb(img, name)
    return _finish(rgb, hashlib.sha256(data).hexdigest(), (width, height), fmt, name, box)


def _finish(rgb: Image.Image, digest: str, size: tuple[int, int], fmt: str | None, name: str,
            box: Box | None) -> LoadedImage:
    image = crop(rgb, box, name) if box is not None else rgb
    return LoadedImage(image=image, sha256=digest, width=size[0], height=size[1], format=fmt, source=name)


def _array_to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "u" and itemsize == 1:
        return array.astype(np.uint8, copy=False)
    if kind == "u" and itemsize == 2:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind != "f":
        raise NotAnImageError(name, f"unsupported dtype {array.dtype}; expected uint8, uint16, bool or float")
    if not np.isfinite(array).all():
        raise NotAnImageError(name, "the float array holds NaN or infinity")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise NotAnImageError(name, f"float values must lie in [0, 1]; got [{low:g}, {high:g}] "
                                    "(divide 0-255 data by 255)")
    return np.rint(array.astype(np.float64) * 255).astype(np.uint8)


def _from_array(array: np.ndarray, name: str, limits: ImageLimits, box: Box | None) -> LoadedImage:
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise NotAnImageError(name, f"expected shape (H, W), (H, W, 1|3|4); got {array.shape}")
    if array.size == 0:
        raise NotAnImageError(name, f"the array is empty (shape {array.shape})")
    height, width = array.shape[:2]
    _check_pixels(name, width, height, limits)
    pixels = _array_to_uint8(array, name)
    pixels = np.ascontiguousarray(pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    digest = hashlib.sha256(f"{array.shape}|{array.dtype.str}|".encode())
    digest.update(np.ascontiguousarray(array).data)
    rgb = _to_rgb(Image.fromarray(pixels), name)
    return _finish(rgb, digest.hexdigest(), (width, height), None, name, box)


def _from_pil(img: Image.Image, name: str, limits: ImageLimits, box: Box | None) -> LoadedImage:
    with _decoding(name, img.format or "image"):
        _check_pixels(name, img.width, img.height, limits)
        img.load()  # a lazily opened image decodes here
        digest = hashlib.sha256(f"{img.mode}|{img.size}|".encode())
        digest.update(img.tobytes())
        if img.palette is not None:
            digest.update(img.palette.tobytes())
        width, height = _upright_size(img.size, _orientation(img))
        rgb = _upright_rgb(img, name)
    return _finish(rgb, digest.hexdigest(), (width, height), img.format, name, box)


def _check_draft(draft: object) -> None:
    if draft is None:
        return
    if not (isinstance(draft, tuple) and len(draft) == 2):
        raise InvalidParameterError(f"The 'draft' parameter must be a (width, height) tuple. Got {draft!r}.")
    _check_int("load_image", "draft width", draft[0])
    _check_int("load_image", "draft height", draft[1])


def load_image(source: ImageSource, *, limits: ImageLimits = DEFAULT_LIMITS, box: Box | None = None,
               draft: tuple[int, int] | None = None) -> LoadedImage:
    """Decode ``source`` into an upright RGB image, cropped to ``box`` if given (see the module doc).

    ``draft`` is the size the caller will resize to: a JPEG without ``box`` is then decoded at a reduced scale
    (1/2, 1/4 or 1/8, never below ``draft``); ``width``/``height`` still report the full size.

    Raises:
        ImageError: a subclass naming the source and the reason (missing, unreadable, empty, not an image,
            unsupported format, truncated or corrupt, too large, box outside the image).
        InvalidParameterError: ``source`` of an unknown type, or a malformed ``limits``/``box``/``draft``.
    """
    if not isinstance(limits, ImageLimits):
        raise InvalidParameterError(f"The 'limits' parameter must be an ImageLimits. Got {_shorten(limits)}.")
    if box is not None and not isinstance(box, Box):
        raise InvalidParameterError(f"The 'box' parameter must be a Box (Box.parse). Got {_shorten(box)}.")
    _check_draft(draft)
    name = describe_source(source)
    if isinstance(source, Image.Image):
        return _from_pil(source, name, limits, box)
    if isinstance(source, np.ndarray):
        return _from_array(source, name, limits, box)
    if isinstance(source, bytes | bytearray | memoryview):
        _check_bytes(name, memoryview(source).nbytes, limits)
        data = source if isinstance(source, bytes) else memoryview(source).tobytes()  # a snapshot
    elif isinstance(source, str | os.PathLike):
        data = read_bytes(source, limits)
    else:
        kind = type(source).__name__
        raise InvalidParameterError(f"A source must be a path, bytes, an array or a PIL image. Got {kind}.")
    return _decode(data, name, limits, box, draft)


def crop(image: Image.Image, box: Box, source: str = "<image>") -> Image.Image:
    """``image`` cut to ``box`` clipped to its bounds; InvalidRegionError naming ``source`` if empty."""
    clipped = box.clip(image.width, image.height)
    if clipped.is_empty:
        size = f"{image.width}x{image.height}"
        raise InvalidRegionError(source, f"box {box} (x,y,w,h) lies outside the {size} image")
    with _PILLOW_WARNINGS_IGNORED:  # Pillow's bomb warning; the crop lies within the image
        return image.crop((clipped.x, clipped.y, clipped.x + clipped.w, clipped.y + clipped.h))


def _read_header(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(_HEADER_BYTES)


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a regular file whose first bytes announce a supported format (by content)."""
    path = Path(path)
    try:
        return path.is_file() and sniff_format(_read_header(path)) in SUPPORTED_FORMATS
    except (OSError, ValueError):
        return False


def _classify(path: Path, found: list[Path], skipped: list[Skipped]) -> None:
    """Add ``path`` to ``found`` if supported by content, to ``skipped`` if only its extension says image."""
    claims_image = path.suffix.lower() in IMAGE_EXTENSIONS
    try:
        if not path.is_file():  # FIFOs, devices, broken links: opening some of them would block
            if claims_image:
                broken = path.is_symlink() and not path.exists()
                skipped.append(Skipped(str(path), "broken symbolic link" if broken else "not a regular file"))
            return
        header = _read_header(path)
    except OSError as err:
        if claims_image:
            skipped.append(Skipped(str(path), _os_error(str(path), err).reason))
        return
    try:
        _supported_format(str(path), header)
    except ImageError as err:
        if claims_image:
            skipped.append(Skipped(str(path), err.reason))
        return
    found.append(path)


def _list_dir(folder: Path, visited: set[tuple[int, int]]) -> list[os.DirEntry[str]]:
    info = folder.stat()
    if (info.st_dev, info.st_ino) in visited:  # reached again through a symlink: a loop or a second route
        return []
    visited.add((info.st_dev, info.st_ino))
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def find_images(root: str | os.PathLike[str]) -> tuple[list[Path], list[Skipped]]:
    """Supported image files under ``root`` (recursive, sorted, by content) and the files that were skipped.

    Files and folders whose name starts with "." (``.git``, ``.lookalike``, macOS ``._x.jpg``) are ignored.
    Directory symlinks are followed once per directory (loops end). A file with an image extension that is
    not a supported image, and an unreadable folder, are reported in the second list; other files are ignored
    silently. Only the header is checked: a truncated image is listed and fails later in :func:`load_image`.

    Raises:
        ImageNotFoundError: ``root`` does not exist.
        ImageUnreadableError: ``root`` cannot be listed.
        InvalidParameterError: ``root`` is not a directory.
    """
    top, name = Path(root), describe_source(root)
    try:
        is_dir = stat.S_ISDIR(top.stat().st_mode)
    except OSError as err:
        raise _os_error(name, err) from err
    if not is_dir:
        raise InvalidParameterError(f"find_images needs a directory; {name!r} is a file.")
    found: list[Path] = []
    skipped: list[Skipped] = []
    visited: set[tuple[int, int]] = set()
    real: list[Path] = [top]
    linked: list[Path] = []  # symlinked folders go last: a folder reached both ways keeps its real path
    while real or linked:
        folder = real.pop() if real else linked.pop(0)
        try:
            entries = _list_dir(folder, visited)
        except OSError as err:
            if folder is top:
                raise _os_error(name, err) from err
            skipped.append(Skipped(str(folder), _os_error(str(folder), err).reason))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue
            if not _is_dir(entry):
                _classify(path, found, skipped)
            else:
                (linked if entry.is_symlink() else real).append(path)
    return sorted(found), sorted(skipped, key=lambda item: item.source)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
