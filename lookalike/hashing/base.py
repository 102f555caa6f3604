"""The hasher base class: parameters, input checks, centring, bit packing, persistence and the registry.

A hasher maps float vectors to binary codes with the scikit-learn estimator API: ``__init__`` only stores its
arguments, ``fit(X)`` validates them and the data, centres the data and learns (attributes ending in ``_``),
``transform(X)`` returns packed codes. A subclass declares its parameters and writes ``_fit`` and ``_project``.

Bit layout, the same for every method: ``transform(X) == np.packbits(project(X) > 0, axis=1)``. Bit j of a code
is column j of the projection; bytes hold bits 8i..8i+7 with the lowest column in the most significant bit
(``np.packbits``' big-endian order), so ``np.unpackbits(codes, axis=1)`` gives the bits back in column order.
"""

from __future__ import annotations

import abc
import inspect
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import InvalidParameterError, NotFittedError
from ..validation import Integer, OneOf, RandomState, Real, check, short_repr

__all__ = [
    "Hasher",
    "Integer",
    "NotFittedError",
    "OneOf",
    "RandomState",
    "Real",
    "StateValue",
    "available_hashers",
    "centred_dot",
    "get_hasher",
    "hasher_spec",
    "parse_hasher",
]

StateValue = np.ndarray | int | float | str
_STATE_FORMAT = 1
_CHUNK_ROWS = 8192  # rows centred at a time: bounds the temporary copy to a few tens of MB
_REGISTRY: dict[str, type[Hasher]] = {}


Constraint = Integer | OneOf | Real | RandomState
N_BITS = Integer(1, multiple_of=8)


class Hasher(abc.ABC):
    """Base class of the hashers. Subclasses set ``name``, ``_constraints`` and write ``_fit`` and ``_project``.

    Attributes set by ``fit`` on every hasher:
        mean_: (n_features,) float32, the training mean, subtracted before hashing.
        n_features_in_: the number of features seen in ``fit``.
    """

    name: ClassVar[str] = ""
    _constraints: ClassVar[dict[str, Constraint]] = {}
    _learned: ClassVar[tuple[str, ...]] = ()  # the arrays ``_fit`` sets, which a state must carry
    n_bits: int
    random_state: int | np.random.Generator | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            _REGISTRY[cls.name] = cls

    # -- scikit-learn estimator API ---------------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, by name (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments by name; they take effect at the next ``fit``. Returns self."""
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise InvalidParameterError(
                    f"Invalid parameter {key!r} for {type(self).__name__}. Valid parameters are: {valid}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self, X: Any, y: object = None) -> Self:
        """Learn the hash functions from ``X`` (n_samples >= 2, n_features), float, finite. Returns self.

        Raises:
            InvalidParameterError: a parameter is out of range, or ``X`` is not a finite 2-D array of numbers
                with at least 2 rows.
        """
        self._validate_params()
        X = self._check_array(X)
        if X.shape[0] < 2:
            raise InvalidParameterError(f"{type(self).__name__} needs at least 2 samples to fit. Got {X.shape[0]}.")
        self._check_n_bits(*X.shape)
        mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        self._fit(X, mean, _rng(self.random_state))
        self.mean_ = mean
        self.n_features_in_ = int(X.shape[1])
        return self

    def project(self, X: Any) -> np.ndarray:
        """The real-valued outputs before thresholding: (n, n_features) → (n, n_bits) float32; bit j is col j > 0.

        Raises:
            NotFittedError: before ``fit``.
            InvalidParameterError: ``X`` is not finite, not 2-D, or has a different feature count than in ``fit``.
        """
        self._check_fitted()
        X = self._check_array(X)
        if X.shape[1] != self.n_features_in_:
            raise InvalidParameterError(
                f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_} features."
            )
        return self._project(X)

    def transform(self, X: Any) -> np.ndarray:
        """Packed codes, (n, n_features) → (n, n_bits // 8) uint8: ``np.packbits(project(X) > 0, axis=1)``."""
        return np.packbits(self.project(X) > 0, axis=1)

    def fit_transform(self, X: Any, y: object = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    # -- persistence ------------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, StateValue]:
        """Parameters and learned arrays as plain arrays and scalars, for ``np.savez`` (no pickle needed).

        A ``random_state`` that is a Generator or None is left out: it does not affect a fitted hasher.
        """
        self._check_fitted()
        state: dict[str, StateValue] = {"hasher": self.name, "state_format": _STATE_FORMAT}
        for key, value in self.get_params().items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                state[key] = value.item() if isinstance(value, np.generic) else value  # type: ignore[assignment]
        for key, value in vars(self).items():
            if key.endswith("_") and not key.startswith("_"):
                state[key] = value if isinstance(value, int | float | str) else np.asarray(value)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Hasher:
        """Rebuild the fitted hasher that ``to_state`` described, of the right subclass.

        Raises:
            InvalidParameterError: the state names an unknown hasher or format, or lacks a learned attribute.
        """
        name, fmt = _scalar(state.get("hasher")), _scalar(state.get("state_format"))
        if not isinstance(name, str) or name not in _REGISTRY:
            raise InvalidParameterError(
                f"The hasher state names {name!r}, which is not one of {', '.join(available_hashers())}."
            )
        if fmt != _STATE_FORMAT:
            raise InvalidParameterError(f"The hasher state has format {fmt!r}; this version reads {_STATE_FORMAT}.")
        sub = _REGISTRY[name]
        if not issubclass(sub, cls):
            raise InvalidParameterError(f"The hasher state describes {sub.__name__}, not {cls.__name__}.")
        hasher = sub(**{k: _scalar(state[k]) for k in sub._param_names() if k in state})
        hasher._validate_params()
        learned = {k: v for k, v in state.items() if k.endswith("_") and not k.startswith("_")}
        missing = sorted({"mean_", "n_features_in_", *sub._learned} - set(learned))
        if missing:
            raise InvalidParameterError(f"The {name!r} hasher state lacks {', '.join(missing)}.")
        for key, value in learned.items():
            setattr(hasher, key, _scalar(value) if np.ndim(value) == 0 else np.array(value))
        return hasher

    # -- what subclasses provide ------------------------------------------------------------------------------

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str] | None:
        """The largest n_bits this method supports on data of this shape, and why; None when unbounded."""
        return None

    @abc.abstractmethod
    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        """Learn the method's attributes from centred-ready data ``X`` (its ``mean`` given) with ``rng``."""

    @abc.abstractmethod
    def _project(self, X: np.ndarray) -> np.ndarray:
        """(n, n_bits) real values whose signs are the bits."""

    # -- checks -----------------------------------------------------------------------------------------------

    def _validate_params(self) -> None:
        for key, rule in {"n_bits": N_BITS, "random_state": RandomState(), **self._constraints}.items():
            check(key, getattr(self, key), rule, owner=type(self).__name__)

    def _check_n_bits(self, n_samples: int, n_features: int) -> None:
        limit = self._max_bits(n_samples, n_features)
        if limit is not None and self.n_bits > limit[0]:
            raise InvalidParameterError(
                f"The 'n_bits' parameter of {type(self).__name__} must be at most {limit[1]} ({limit[0]}). "
                f"Got {self.n_bits} instead."
            )

    def _check_fitted(self) -> None:
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(self)):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this hasher."
            )

    def _check_array(self, X: Any) -> np.ndarray:
        """``X`` as a C-contiguous float32 (n, d) array with d >= 1, all finite (copies only when needed)."""
        owner = type(self).__name__
        try:
            arr = np.asarray(X)
        except ValueError as err:  # ragged nested sequences
            raise InvalidParameterError(f"{owner} expects a 2-D array of numbers. Got {type(X).__name__}.") from err
        if arr.ndim != 2:
            raise InvalidParameterError(
                f"{owner} expects a 2-D array of shape (n_samples, n_features). Got an array of shape {arr.shape} "
                "instead; reshape a single vector with x.reshape(1, -1)."
            )
        if arr.dtype.kind not in "fiu":
            raise InvalidParameterError(f"{owner} expects an array of real numbers. Got dtype {arr.dtype} instead.")
        if arr.shape[1] == 0:
            raise InvalidParameterError(f"{owner} expects at least 1 feature. Got an array of shape {arr.shape}.")
        with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr.sum(dtype=np.float64)):  # one cheap pass; count only when something is wrong
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                raise InvalidParameterError(
                    f"X contains NaN or infinity ({bad} of {arr.size} values, after conversion to float32); "
                    "remove or impute them first."
                )
        return arr


def centred_dot(X: np.ndarray, mean: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``(X - mean) @ W`` in float32, centring a block of rows at a time so no centred copy of X is made."""
    out = np.empty((X.shape[0], W.shape[1]), dtype=np.float32)
    W = np.asarray(W, dtype=np.float32)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        np.matmul(X[start:stop] - mean, W, out=out[start:stop])
    return out


def available_hashers() -> list[str]:
    """The names ``get_hasher`` accepts, sorted."""
    return sorted(_REGISTRY)


def get_hasher(name: str, **params: Any) -> Hasher:
    """An unfitted hasher by registry name (``"itq"``, ``"kmh"``, ``"lsh"``, ``"pcah"``, ``"sh"``, ``"sph"``).

    Example::

        codes = get_hasher("itq", n_bits=64, random_state=0).fit(X).transform(X)

    Raises:
        InvalidParameterError: unknown name or parameter; both messages list the valid ones.
    """
    if name not in _REGISTRY:
        raise InvalidParameterError(
            f"Unknown hasher {name!r}. Valid hashers are: {', '.join(available_hashers())}."
        )
    return _REGISTRY[name]().set_params(**params)


_SPEC_LIMIT = 200  # characters of a hasher spec, at most (a CLI argument, stored as the fit's name)


def parse_hasher(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``"name:key=value,key=value"`` (``lookalike index --hash``) → (registry name, options).

    Each value takes the type of the parameter's default (int, float or str) and is checked against the hasher's
    constraints now, not at the fit; options equal to their default are dropped, so two spellings of one setting
    give the same :func:`hasher_spec`. ``n_bits`` and ``random_state`` are not options (the caller sets them).

    Example::

        parse_hasher("adapt:k=60,ridge=0.1")    # ("adapt", {"k": 60, "ridge": 0.1})

    Raises:
        InvalidParameterError: not a string of at most 200 characters, an unknown hasher, option or value.
    """
    if not isinstance(spec, str) or not spec.strip() or len(spec) > _SPEC_LIMIT:
        raise InvalidParameterError(f"A hasher spec is a name with optional key=value options, at most {_SPEC_LIMIT} "
                                    f"characters. Got {short_repr(spec)}.")
    name, _, rest = spec.partition(":")
    cls = type(get_hasher(name.strip()))  # an unknown name: the error lists the valid ones
    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                if p.name not in ("self", "n_bits", "random_state") and p.kind != p.VAR_KEYWORD}
    options: dict[str, Any] = {}
    for part in (rest.split(",") if rest.strip() else []):
        key, eq, text = (s.strip() for s in part.partition("="))
        if not eq or key not in defaults or key in options or not text:
            why = ("is repeated" if key in options else "is not key=value" if not eq or not text
                   else "is set by the caller, not the spec" if key in ("n_bits", "random_state") else "is unknown")
            raise InvalidParameterError(f"Hasher option {short_repr(part.strip())} of {cls.name!r} {why}; its "
                                        f"options are: {', '.join(sorted(defaults))}.")
        kind = type(defaults[key])
        try:
            value = text if kind is str else kind(text)
        except ValueError:
            raise InvalidParameterError(f"Hasher option {key!r} of {cls.name!r} takes {kind.__name__} values. Got "
                                        f"{short_repr(text)}.") from None
        if key in cls._constraints:
            check(key, value, cls._constraints[key], owner=cls.__name__)
        options[key] = value
    return cls.name, {k: v for k, v in options.items() if v != defaults[k]}


def hasher_spec(name: str, options: Mapping[str, Any]) -> str:
    """The canonical spelling of a hasher and its options (sorted; floats as ``repr`` writes them): what a
    catalogue stores a fit under, and what :func:`parse_hasher` reads back."""
    return name + (":" + ",".join(f"{k}={options[k]!r}" if isinstance(options[k], float) else f"{k}={options[k]}"
                                  for k in sorted(options)) if options else "")


def _rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def _scalar(value: Any) -> Any:
    """A 0-d array or numpy scalar (as ``np.load`` returns them) as the Python scalar; anything else unchanged."""
    return value.item() if isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0 else value
