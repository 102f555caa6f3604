"""Hasher specs (``lookalike index --hash adapt:k=60``): typed options checked up front, one canonical spelling."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.hashing import get_hasher, hasher_spec, parse_hasher


@pytest.mark.parametrize(("text", "name", "options", "canonical"), [
    ("itq", "itq", {}, "itq"),
    ("adapt:", "adapt", {}, "adapt"),
    ("adapt:k=60,ridge=0.1", "adapt", {"k": 60, "ridge": 0.1}, "adapt:k=60,ridge=0.1"),
    (" adapt : ridge = 0.1 , k=60 ", "adapt", {"k": 60, "ridge": 0.1}, "adapt:k=60,ridge=0.1"),
    ("adapt:k=30,ridge=1e-7", "adapt", {"ridge": 1e-7}, "adapt:ridge=1e-07"),  # k=30 is the default: dropped
    ("adapt:ridge=0.010", "adapt", {}, "adapt"),  # the default, spelt otherwise
    ("adapt-spectral:min_dim=32", "adapt-spectral", {"min_dim": 32}, "adapt-spectral:min_dim=32"),
    ("bingan-head:init=adapt,lambda_bre=0", "bingan-head", {"init": "adapt", "lambda_bre": 0.0},
     "bingan-head:init=adapt,lambda_bre=0.0"),
    ("kmh:bits_per_subspace=2", "kmh", {"bits_per_subspace": 2}, "kmh:bits_per_subspace=2"),
])
def test_specs_read_typed_and_spell_one_way(text: str, name: str, options: dict[str, object],
                                            canonical: str) -> None:
    got_name, got = parse_hasher(text)
    assert (got_name, got) == (name, options)
    assert all(type(got[k]) is type(v) for k, v in options.items())  # 0 for a float option is read as 0.0
    assert hasher_spec(got_name, got) == canonical
    assert parse_hasher(canonical) == (name, options)  # the canonical spelling reads back to the same setting


def test_the_options_reach_the_hasher() -> None:
    name, options = parse_hasher("adapt:k=7,ridge=0.5")
    hasher = get_hasher(name, n_bits=16, random_state=0, **options)
    assert (hasher.k, hasher.ridge) == (7, 0.5)
    X = np.random.default_rng(0).normal(size=(200, 32)).astype(np.float32)
    direct = get_hasher("adapt", n_bits=16, k=7, ridge=0.5, random_state=0).fit(X).transform(X)
    assert np.array_equal(hasher.fit(X).transform(X), direct)


@pytest.mark.parametrize(("text", "message"), [
    ("", "at most 200 characters"),
    ("   ", "at most 200 characters"),
    ("adapt:k=" + "9" * 300, "at most 200 characters"),
    (None, "Got None"),
    (b"itq", "Got b'itq'"),
    ("nope", "Unknown hasher 'nope'. Valid hashers are: adapt,"),
    ("adapt:k=0", "The 'k' parameter of AdaptedITQ must be an integer in [1, 1000]. Got 0"),
    ("adapt:k=1e3", "takes int values. Got '1e3'"),
    ("adapt:k=2.5", "takes int values"),
    ("adapt:ridge=nan", "'ridge' parameter of AdaptedITQ must be a real number"),
    ("adapt:ridge=inf", "'ridge' parameter"),
    ("adapt:ridge=-1", "'ridge' parameter"),
    ("adapt:ridge=x", "takes float values"),
    ("adapt:foo=1", "Hasher option 'foo=1' of 'adapt' is unknown; its options are: k, n_iter, ridge, sample."),
    ("adapt:k", "is not key=value"),
    ("adapt:k=", "is not key=value"),
    ("adapt:k=5,", "is not key=value"),
    ("adapt:k=5,k=6", "is repeated"),
    ("itq:n_bits=8", "is set by the caller"),
    ("itq:random_state=1", "is set by the caller"),
    ("kmh:bits_per_subspace=3", "'bits_per_subspace' parameter"),
])
def test_bad_specs_say_what_is_wrong(text: object, message: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        parse_hasher(text)  # type: ignore[arg-type]
    assert message in str(err.value) and len(str(err.value)) < 300


def test_every_hasher_option_can_be_written_in_a_spec() -> None:
    """parse_hasher types a value by the parameter's default: each default must be an int, a float or a string (a
    bool or None default would need its own reading), and each option reads back from its canonical spelling."""
    import inspect

    from lookalike.hashing import available_hashers

    for name in available_hashers():
        params = inspect.signature(type(get_hasher(name)).__init__).parameters.values()
        for p in params:
            if p.name in ("self", "n_bits", "random_state"):
                continue
            assert type(p.default) in (int, float, str), (name, p.name, p.default)
            assert parse_hasher(f"{name}:{p.name}={p.default}") == (name, {})  # the default, dropped
