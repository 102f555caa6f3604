"""Parsing of encoder options, which arrive as strings from spec strings and the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidParameterError


def int_option(key: str, value: object, lo: int, hi: int, *, owner: str) -> int:
    """``value`` as an int in [lo, hi], or an InvalidParameterError in the house format."""
    try:
        number = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not lo <= number <= hi:
        raise InvalidParameterError(
            f"The {key!r} option of {owner} must be an integer in [{lo}, {hi}]. Got {value!r} instead."
        )
    return number


def choice_option(key: str, value: object, choices: Sequence[str], *, owner: str) -> str:
    """``value`` if it is one of ``choices``, else an InvalidParameterError listing them."""
    if value not in choices:
        raise InvalidParameterError(
            f"The {key!r} option of {owner} must be one of {', '.join(choices)}. Got {value!r} instead."
        )
    return str(value)
