"""Images in: turn a path, encoded bytes, an array or a PIL image into one checked RGB picture.

Accepted encodings are JPEG, PNG, WebP, HEIC/HEIF (phone photos, through ``pillow-heif``), AVIF, BMP, GIF and
TIFF (:data:`SUPPORTED_FORMATS`), decided from the content (:func:`sniff_format`), never from the file name. With a
``draft`` size, large images never decode at full size: JPEG through libjpeg's DCT scaling, WebP and PNG through
libvips' shrink-on-load (:mod:`._vips`). Animated GIF/WebP and multi-page TIFF give their
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

from lookalike.images._decode import (
    MIN_REGION,
    ImageSource,
    LoadedImage,
    check_region,
    crop,
    describe_source,
    load_image,
    read_bytes,
)
from lookalike.images._folders import Skipped, find_images, is_image_file
from lookalike.images._formats import IMAGE_EXTENSIONS, SUPPORTED_FORMATS, sniff_format
from lookalike.images._params import DEFAULT_LIMITS, Box, ImageLimits

__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "Box",
    "ImageLimits",
    "ImageSource",
    "LoadedImage",
    "Skipped",
    "MIN_REGION",
    "check_region",
    "crop",
    "describe_source",
    "find_images",
    "is_image_file",
    "load_image",
    "read_bytes",
    "sniff_format",
]
