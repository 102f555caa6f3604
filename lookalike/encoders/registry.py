"""The encoder registry: encoders are found by name (``get_encoder("efficientnet-lite0:layer=stage4")``).

The built-in encoders are imported on first use, so ``import lookalike`` stays fast and free of onnxruntime;
other packages add theirs with :func:`register_encoder` (``lookalike.bingan`` registers ``bingan``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidParameterError
from . import combined
from .base import Encoder

Factory = Callable[..., Encoder]
_REGISTRY: dict[str, Factory] = {}


def register_encoder(name: str, factory: Factory) -> None:
    """Make ``factory(**options)`` (or ``factory(path=...)``) available as ``get_encoder(name…)``."""
    _REGISTRY[name] = factory


def available_encoders() -> list[str]:
    """Names of the registered encoders, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``"name:key=value,key=value"`` (or ``"name:PATH"``) into the name and its options.

    A bare argument without ``=`` becomes ``{"path": argument}``.

    >>> parse_spec("efficientnet-lite0:layer=stage4,pool=gram")
    ('efficientnet-lite0', {'layer': 'stage4', 'pool': 'gram'})
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidParameterError(f"An encoder spec must be a non-empty string. Got {spec!r} instead.")
    name, _, rest = spec.strip().partition(":")
    opts: dict[str, str] = {}
    if rest:
        if "=" not in rest:
            return name, {"path": rest}
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise InvalidParameterError(f"Malformed option {part!r} in encoder spec {spec!r}: expected key=value.")
            opts[key.strip()] = value.strip()
    return name, opts


def get_encoder(spec: str | Encoder, **options: object) -> Encoder:
    """Build an encoder from a spec string (``"efficientnet-lite0"``, ``"phash"``, ``"pixels:size=16"``).

    Keyword options override those in the spec. An Encoder instance is returned as is.

    Raises:
        InvalidParameterError: unknown name (the message lists the valid ones) or a bad option.
    """
    if isinstance(spec, Encoder):
        return spec
    if isinstance(spec, str) and combined.SEPARATOR in spec:
        if options:
            raise InvalidParameterError("A combined encoder takes its options in each part's spec, not as keywords.")
        return combined.build(spec, get_encoder, parse_spec)
    name, opts = parse_spec(spec)
    _load_builtin()
    if name not in _REGISTRY:
        raise InvalidParameterError(
            f"Unknown encoder {name!r}. Valid encoders: {', '.join(sorted(_REGISTRY))}."
        )
    merged: dict[str, object] = {**opts, **options}
    try:
        return _REGISTRY[name](**merged)
    except TypeError as err:
        raise InvalidParameterError(f"Bad options for encoder {name!r}: {err}") from err


def _load_builtin() -> None:
    # Imported here, not at module import, so `import lookalike` stays fast and free of onnxruntime.
    if "pixels" in _REGISTRY:
        return
    from . import efficientnet, hashes, pixels

    register_encoder("pixels", pixels.PixelsEncoder)
    register_encoder("phash", hashes.PHashEncoder)
    register_encoder("dhash", hashes.DHashEncoder)
    register_encoder("efficientnet-lite0", efficientnet.EfficientNetLite0Encoder)
