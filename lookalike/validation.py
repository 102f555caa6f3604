"""One toolkit for checking user-facing arguments, with one message style everywhere.

Constraints are small frozen objects with ``accepts(value)`` and ``describe()`` (scikit-learn's style, first written
for the hashers); :func:`check` applies one and raises :class:`~lookalike.errors.InvalidParameterError` worded as

    The 'k' parameter must be an integer in [1, 10000]. Got 0 instead.
    The 'n_bits' parameter of ITQ must be a positive multiple of 8. Got 12 instead.

Every package (catalogue, index, dedup, service, CLI) checks through this module, so a rule and its wording live in
one place.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from .errors import InvalidParameterError

__all__ = [
    "Choice",
    "Constraint",
    "Integer",
    "OneOf",
    "RandomState",
    "Real",
    "check",
    "check_choice",
    "check_int",
    "check_real",
    "parameter_error",
    "short_repr",
]

T = TypeVar("T")


class Constraint(Protocol):
    def accepts(self, value: object) -> bool: ...

    def describe(self) -> str: ...


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Integer:
    """An integer ``>= low`` (and ``<= high`` when given), divisible by ``multiple_of``."""

    low: int
    high: int | None = None
    multiple_of: int = 1

    def accepts(self, value: object) -> bool:
        if not _is_int(value):
            return False
        number = int(value)  # type: ignore[call-overload]
        in_range = number >= self.low and (self.high is None or number <= self.high)
        return in_range and number % self.multiple_of == 0

    def describe(self) -> str:
        if self.multiple_of > 1 and self.low == 1 and self.high is None:
            return f"a positive multiple of {self.multiple_of}"
        multiple = f" and a multiple of {self.multiple_of}" if self.multiple_of > 1 else ""
        if self.high is None:
            return f"an integer >= {self.low}{multiple}"
        return f"an integer in [{self.low}, {self.high}]{multiple}"


@dataclass(frozen=True)
class OneOf:
    """An integer from a fixed set."""

    values: tuple[int, ...]

    def accepts(self, value: object) -> bool:
        return _is_int(value) and int(value) in self.values  # type: ignore[call-overload]

    def describe(self) -> str:
        return f"one of {', '.join(map(str, self.values))}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (strings, ``None``, ...), compared by equality and type."""

    values: tuple[Hashable, ...]

    def accepts(self, value: object) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return f"one of {', '.join(map(repr, self.values))}"


@dataclass(frozen=True)
class Real:
    """A finite real number above ``above`` (``>=`` when ``inclusive``) and at most ``high`` when given."""

    above: float
    inclusive: bool = False
    high: float | None = None

    def accepts(self, value: object) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(float(value)):
            return False
        number = float(value)
        low_ok = number >= self.above if self.inclusive else number > self.above
        return low_ok and (self.high is None or number <= self.high)

    def describe(self) -> str:
        if self.high is not None:
            return f"a real number in {'[' if self.inclusive else '('}{self.above}, {self.high}]"
        return f"a real number {'>=' if self.inclusive else '>'} {self.above}"


@dataclass(frozen=True)
class RandomState:
    """``None`` (fresh entropy), a non-negative integer seed, or a ``numpy.random.Generator``."""

    def accepts(self, value: object) -> bool:
        if value is None or isinstance(value, np.random.Generator):
            return True
        return _is_int(value) and int(value) >= 0  # type: ignore[call-overload]

    def describe(self) -> str:
        return "None, a non-negative integer or a numpy.random.Generator"


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (hostile input can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parameter_error(name: str, expected: str, got: str, *, owner: str | None = None) -> InvalidParameterError:
    """The one wording: ``The 'name' parameter [of Owner] must be <expected>. Got <got> instead.``"""
    of = f" of {owner}" if owner else ""
    return InvalidParameterError(f"The {name!r} parameter{of} must be {expected}. Got {got} instead.")


def check(name: str, value: T, rule: Constraint, *, owner: str | None = None) -> T:
    """``value`` if ``rule`` accepts it, else :class:`InvalidParameterError` in the one style."""
    if not rule.accepts(value):
        raise parameter_error(name, rule.describe(), short_repr(value), owner=owner)
    return value


def check_int(name: str, value: object, low: int, high: int | None = None, *, owner: str | None = None) -> int:
    """An integer in [low, high] (bools refused), returned as a Python int."""
    check(name, value, Integer(low, high), owner=owner)
    return int(value)  # type: ignore[call-overload]


def check_real(name: str, value: object, low: float, high: float | None = None, *, owner: str | None = None
               ) -> float:
    """A finite real number in [low, high], returned as a Python float."""
    check(name, value, Real(low, inclusive=True, high=high), owner=owner)
    return float(value)  # type: ignore[arg-type]


def check_choice(name: str, value: Any, choices: tuple[Hashable, ...], *, owner: str | None = None) -> Any:
    """One of ``choices`` (e.g. ``refuse``: None, 'exact' or 'near')."""
    return check(name, value, Choice(choices), owner=owner)
