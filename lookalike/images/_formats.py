"""Image formats by content: what we decode, the magic numbers of formats we name and refuse, and headers."""

from __future__ import annotations

import functools
from pathlib import Path

from lookalike.errors import EmptyImageError, NotAnImageError, UnsupportedFormatError

SUPPORTED_FORMATS = frozenset({"AVIF", "BMP", "GIF", "HEIC", "HEIF", "JPEG", "PNG", "TIFF", "WEBP"})
IMAGE_EXTENSIONS = frozenset({".avif", ".bmp", ".gif", ".heic", ".heif", ".jpeg", ".jpg", ".png", ".tif", ".tiff",
                              ".webp"})
PILLOW_FORMATS = {"HEIC": "HEIF"}  # our name → Pillow's plugin name, where they differ (HEIF: pillow-heif)
_HEADER_BYTES = 16
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
    if fmt not in decodable():
        raise UnsupportedFormatError(name, f"{fmt} needs a Pillow plugin that is not installed (pillow-heif)")
    return fmt


@functools.cache
def decodable() -> frozenset[str]:
    """The :data:`SUPPORTED_FORMATS` this installation's Pillow can decode (HEIF needs pillow-heif, AVIF a Pillow
    built with libavif)."""
    from PIL import Image, features

    from lookalike.images import _pillow  # registers pillow-heif

    missing = set()
    if not _pillow.HEIF_AVAILABLE or "HEIF" not in Image.registered_extensions().values():
        missing |= {"HEIC", "HEIF"}
    if not features.check("avif"):
        missing.add("AVIF")
    return SUPPORTED_FORMATS - missing


def _read_header(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(_HEADER_BYTES)
