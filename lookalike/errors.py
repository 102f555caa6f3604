"""Exceptions raised by lookalike.

Every error a user can cause derives from :class:`LookalikeError`, so callers can catch one class. The tree::

    LookalikeError
    ├── InvalidParameterError (also ValueError)   a bad argument: unknown encoder, k < 1, malformed box, ...
    │   └── PayloadTooLargeError                   a request field (metadata, filter) over the service's limit
    ├── SourceError                                base of errors about one named file or input (.source, .reason)
    │   ├── DatasetError                           a dataset file is corrupt or not in its format
    │   │   └── DatasetNotFoundError (also FileNotFoundError)   missing; the message says how to get it
    │   └── ImageError                             one image could not be used; names the source and the reason
    │       ├── ImageNotFoundError (also FileNotFoundError)
    │       ├── ImageUnreadableError               permission denied, a directory, an I/O error
    │       ├── EmptyImageError                    zero bytes
    │       ├── NotAnImageError                    the content is not an image at all
    │       ├── UnsupportedFormatError             an image, but not JPEG/PNG/WebP/BMP/GIF/TIFF
    │       ├── TruncatedImageError                the file ends or breaks before the image does
    │       ├── ImageTooLargeError                 more pixels (decompression bomb) or bytes than allowed
    │       └── InvalidRegionError                 a crop box outside the image or empty
    ├── NotFittedError (also AttributeError)      a hasher used (transform, project, to_state) before fit
    ├── EncoderError                               a model could not be built, exported or run
    ├── IndexBackendError                          an external index (Milvus) failed, refused or is unreachable
    ├── AuthError                                  a write without a valid API key, or to a read-only service
    │   └── MissingKeyError                        a write that sent no API key at all
    └── CatalogError                               the catalogue refused an operation
        ├── ReadOnlyCatalogError                   a write to a catalogue opened read-only (read-only media)
        ├── ItemNotFoundError (also KeyError)
        ├── DuplicateItemError                     an id that already exists
        ├── DuplicateImageError                    add(refuse=...) found an exact or near duplicate (.matches)
        ├── CalibrationRequiredError               a near-duplicate verdict without a usable calibration
        ├── DuplicateDetectionError                the catalogue cannot do duplicate detection as it is
        └── IncompatibleCatalogError               wrong schema version, or an encoder the catalogue lacks
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CalibrationRequiredError",
    "CatalogError",
    "DatasetError",
    "DatasetNotFoundError",
    "DuplicateDetectionError",
    "DuplicateImageError",
    "DuplicateItemError",
    "EmptyImageError",
    "EncoderError",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "ImageUnreadableError",
    "IncompatibleCatalogError",
    "IndexBackendError",
    "InvalidParameterError",
    "InvalidRegionError",
    "ItemNotFoundError",
    "LookalikeError",
    "MissingKeyError",
    "NotAnImageError",
    "NotFittedError",
    "PayloadTooLargeError",
    "ReadOnlyCatalogError",
    "SourceError",
    "TruncatedImageError",
    "UnsupportedFormatError",
]


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose."""


class InvalidParameterError(LookalikeError, ValueError):
    """An argument has a value lookalike cannot use; the message says what was expected."""


class PayloadTooLargeError(InvalidParameterError):
    """A request field (metadata, a filter) is larger than the service accepts (HTTP 413)."""


class SourceError(LookalikeError):
    """Something is wrong with one named input; the message is ``"<source>: <reason>"``.

    Attributes:
        source: a printable name of the input (a path, or ``<bytes>``, ``<array>``, ...).
        reason: a short human-readable reason, without the source.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")

    def __str__(self) -> str:  # FileNotFoundError subclasses would otherwise print their errno form
        return f"{self.source}: {self.reason}"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # keep picklable across processes
        return (type(self), (self.source, self.reason))


class DatasetError(SourceError):
    """A dataset file is missing, corrupt or not in the expected format."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset's folder or one of its files does not exist; the message says how to get it."""


class ImageError(SourceError):
    """One image could not be used."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The path does not exist."""


class ImageUnreadableError(ImageError):
    """The path exists but cannot be read (permissions, a directory, an I/O error)."""


class EmptyImageError(ImageError):
    """The file or buffer holds zero bytes."""


class NotAnImageError(ImageError):
    """The content is not an image in any format lookalike knows."""


class UnsupportedFormatError(ImageError):
    """The content is an image, but in a format lookalike does not accept."""


class TruncatedImageError(ImageError):
    """The image data is cut short or corrupt."""


class ImageTooLargeError(ImageError):
    """The image has more pixels or bytes than the configured limit (decompression-bomb guard)."""


class InvalidRegionError(ImageError):
    """A region (box) is empty or lies outside the image."""


class NotFittedError(LookalikeError, AttributeError):
    """A hasher was used (``transform``, ``project``, ``to_state``) before ``fit``."""


class EncoderError(LookalikeError):
    """An encoder could not be built, exported or run."""


class IndexBackendError(LookalikeError):
    """An external index backend (a Milvus server or Milvus Lite) failed, refused a request or cannot be reached;
    the message names the backend and its own error. The catalogue's SQLite is the truth: a change it committed is
    journalled and applied to the backend again on the next write, search or open (see docs/deployment.md)."""


class AuthError(LookalikeError):
    """The HTTP service refused a write: a wrong API key, or a read-only service (403)."""

    status = 403

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingKeyError(AuthError):
    """The HTTP service refused a write that sent no API key (401)."""

    status = 401


class CatalogError(LookalikeError):
    """The catalogue refused an operation."""


class ReadOnlyCatalogError(CatalogError):
    """A write to a catalogue opened read-only (read-only media, or ``read_only=True``)."""


class ItemNotFoundError(CatalogError, KeyError):
    """No item has this id."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "item not found"


class DuplicateItemError(CatalogError):
    """An item with this id already exists."""


class DuplicateImageError(CatalogError):
    """``add(..., refuse=...)`` refused an image: it duplicates catalogue items (``matches``, best first)."""

    def __init__(self, message: str, matches: list | None = None) -> None:
        super().__init__(message)
        self.matches = list(matches or [])


class CalibrationRequiredError(CatalogError):
    """A near-duplicate verdict (``find_duplicates``, ``dedup``, ``add(check_duplicates=True)`` or
    ``refuse="near"``) was asked of a catalogue without a usable duplicate calibration: none yet, one stored in an
    older format or unreadable, or one fitted for another encoder. The message says how to calibrate
    (``Catalog.calibrate_duplicates()`` or ``lookalike dedup --calibrate``)."""


class DuplicateDetectionError(CatalogError):
    """The catalogue cannot do duplicate detection as it is: too few items or image files to calibrate on, or only
    binary codes (duplicate detection needs float vectors). A conflict with the catalogue's state (HTTP 409)."""


class IncompatibleCatalogError(CatalogError):
    """The catalogue was written by an incompatible version or lacks the requested encoder."""
