"""The catalogue's encoders: which are stored, which is searched by default, and how a spec names one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..encoders import Encoder, get_encoder
from ..encoders.hashed import SKETCH, DerivedEncoder, HashedEncoder, SketchEncoder, state_from_bytes
from ..encoders.registry import parse_spec
from ..errors import IncompatibleCatalogError, InvalidParameterError
from .store import Store


def load_hashed(base: Encoder, name: str, blob: bytes) -> DerivedEncoder:
    """The derived encoder a stored fit describes: a sketch's basis, or a hasher's state."""
    from ..hashing import Hasher

    if name == SKETCH:
        return SketchEncoder(base, state_from_bytes(blob)["basis"])
    return HashedEncoder(base, Hasher.from_state(state_from_bytes(blob)), name)


class EncoderSet:
    """The (number, encoder) pairs of one catalogue, the default first: ``wanted``, else the one a fitted hasher
    made the default (``search_encoder`` in meta), else the first created. Derived encoders (hashed, sketch) are
    those with a stored fit, whatever their spec says."""

    def __init__(self, store: Store, location: str, wanted: str | None = None) -> None:
        self.location = location
        hashers = store.hashers()
        plain = {row.num: get_encoder(row.spec) for row in store.encoders() if row.num not in hashers}
        encoders: dict[int, Encoder] = dict(plain)
        for num, h in hashers.items():
            encoders[num] = load_hashed(plain[h.source], h.name, h.state)
        pairs = sorted(encoders.items())
        if wanted is not None:
            first = self._find(pairs, wanted)
        else:
            default = store.meta("search_encoder")
            first = next((p for p in pairs if default is not None and p[0] == int(default)), pairs[0])
        pairs.remove(first)
        self.pairs: list[tuple[int, Encoder]] = [first, *pairs]

    def __iter__(self) -> Iterator[tuple[int, Encoder]]:
        return iter(self.pairs)

    @property
    def default(self) -> tuple[int, Encoder]:
        return self.pairs[0]

    def by_num(self, num: int) -> Encoder:
        return dict(self.pairs)[num]

    def pick(self, spec: str | None) -> tuple[int, Encoder]:
        """The encoder ``spec`` names (default: the default one). Raises IncompatibleCatalogError."""
        return self.pairs[0] if spec is None else self._find(self.pairs, spec)

    def _find(self, pairs: Sequence[tuple[int, Encoder]], wanted: str) -> tuple[int, Encoder]:
        if not isinstance(wanted, str):
            raise InvalidParameterError(f"An encoder must be named by its spec string. Got {type(wanted).__name__}.")
        exact = next((pair for pair in pairs if pair[1].spec == wanted), None)
        if exact is not None:
            return exact
        spec = wanted
        try:
            name, options = parse_spec(wanted)
            ours = {parse_spec(enc.spec)[0] for _, enc in pairs}
            # the canonical spelling of "name:key=value" options, for an encoder of a kind this catalogue has; never
            # built from a file the caller names (a service passes its clients' specs here)
            if name in ours and "path" not in options:
                spec = get_encoder(wanted).spec
        except InvalidParameterError:
            pass  # e.g. a hashed spec that this catalogue does not have
        for pair in pairs:
            if pair[1].spec == spec:
                return pair
        have = ", ".join(e.spec for _, e in pairs)
        raise IncompatibleCatalogError(f"catalogue {self.location} has no {spec[:200]!r} vectors (it has: {have})")

    @property
    def draft(self) -> tuple[int, int] | None:
        """The decode hint for ingest and queries alike: the largest input size of the encoders, or None (full
        decode) when one of them takes the image as it is. One recipe for both, so an item searched by its own
        file gets the vectors stored for it."""
        sizes = [enc.input_size for _, enc in self.pairs]
        if not sizes or any(s is None for s in sizes):
            return None
        return max(s for s in sizes if s is not None)

    def floats(self) -> list[tuple[int, Encoder]]:
        """The float encoders that are not derived (a sketch is not one), in order."""
        return [(n, e) for n, e in self.pairs if e.kind == "float" and not isinstance(e, DerivedEncoder)]

    def float_source(self, spec: str | None) -> tuple[int, Encoder]:
        pairs = self.floats()
        if spec is not None:
            pairs = [self._find(pairs, spec)] if pairs else []
        if not pairs:
            raise InvalidParameterError(f"catalogue {self.location} has no float vectors to fit a hasher on")
        return pairs[0]

    def base_of(self, num: int) -> int | None:
        """For a derived encoder whose float encoder is also stored, that encoder's number."""
        enc = self.by_num(num)
        if not isinstance(enc, DerivedEncoder):
            return None
        return next((n for n, other in self.pairs if other.spec == enc.base.spec and n != num), None)

    def sketch_of(self, base: int) -> tuple[int, SketchEncoder] | None:
        """The sketch of the float encoder ``base``, if the catalogue has one."""
        spec = self.by_num(base).spec
        return next(((n, e) for n, e in self.pairs if isinstance(e, SketchEncoder) and e.base.spec == spec), None)

    def find_hashed(self, name: str, n_bits: int) -> HashedEncoder | None:
        """The codes fitted by hasher ``name`` (options as ``"adapt:k=60"``, any spelling of them) at ``n_bits``."""
        from ..hashing import hasher_spec, parse_hasher

        wanted = hasher_spec(*parse_hasher(name))
        return next((e for _, e in self.pairs if isinstance(e, HashedEncoder) and e.hasher_name == wanted
                     and e.dim == n_bits), None)
