"""The one table from the exception tree to HTTP statuses: every class of lookalike.errors maps on purpose."""

from __future__ import annotations

import lookalike.errors as E
from lookalike.service.errors import STATUS, UNKNOWN_STATUS, message_of, status_of

EXPECTED = {
    "LookalikeError": 400, "InvalidParameterError": 422, "PayloadTooLargeError": 413, "SourceError": 400,
    "DatasetError": 400, "DatasetNotFoundError": 404, "ImageError": 400, "ImageNotFoundError": 404,
    "ImageUnreadableError": 400, "EmptyImageError": 400, "NotAnImageError": 415, "UnsupportedFormatError": 415,
    "TruncatedImageError": 400, "ImageTooLargeError": 413, "InvalidRegionError": 422, "NotFittedError": 409,
    "EncoderError": 500, "CatalogError": 409, "ItemNotFoundError": 404, "DuplicateItemError": 409,
    "DuplicateImageError": 409, "CalibrationRequiredError": 409, "DuplicateDetectionError": 409,
    "IncompatibleCatalogError": 422, "AuthError": 403, "MissingKeyError": 401, "ReadOnlyCatalogError": 403,
    "IndexBackendError": 503,
}


def test_every_error_class_has_a_deliberate_row() -> None:
    classes = [getattr(E, name) for name in E.__all__]
    rows = dict(STATUS)
    assert set(E.__all__) == set(EXPECTED), "a new error class needs a row in lookalike/service/errors.py"
    for cls in classes:
        assert cls in rows, f"{cls.__name__} has no row of its own"
        assert status_of(cls) == rows[cls] == EXPECTED[cls.__name__], cls.__name__
        # 5xx: the server's fault only (a model that cannot run, an index backend that is down)
        assert (status_of(cls) >= 500) == (cls in (E.EncoderError, E.IndexBackendError)), cls.__name__


def test_the_table_is_most_specific_first() -> None:
    for i, (cls, _) in enumerate(STATUS):
        for earlier, _ in STATUS[:i]:
            assert not issubclass(cls, earlier), f"{cls.__name__} is shadowed by {earlier.__name__}"


def test_instances_and_unknown_errors() -> None:
    assert status_of(E.ImageTooLargeError("x.png", "too many pixels")) == 413
    assert status_of(E.ItemNotFoundError("no item with id 'x'")) == 404
    assert status_of(RuntimeError("boom")) == UNKNOWN_STATUS == 500
    assert status_of(KeyError("k")) == 500  # only the tree's own KeyError is a 404


def test_a_calibration_error_gets_the_hint_by_its_type() -> None:
    assert "POST /duplicates/calibrate" in message_of(E.CalibrationRequiredError("no calibration"))
    assert "POST /duplicates/calibrate" not in message_of(E.DuplicateDetectionError("no calibration"))
