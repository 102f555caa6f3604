"""The estimator contract every hasher keeps: shapes, packing, determinism, errors, parameters and persistence."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import lookalike.hashing as hashing
from lookalike.errors import InvalidParameterError, LookalikeError
from lookalike.hashing import ITQ, PCAH, Hasher, NotFittedError, available_hashers, get_hasher

# bingan-head has tests/bingan/test_head.py; the others than RANDOMISED are deterministic here (KMH samples only
# past 20,000 rows)
NAMES = ("adapt", "adapt-spectral", "itq", "kmh", "lsh", "pcah", "sh", "sph")
RANDOMISED = ("adapt", "adapt-spectral", "itq", "lsh", "sph")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """300 x 24 Gaussian vectors with unequal scales and a non-zero mean."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((300, 24)) * np.linspace(0.5, 3.0, 24) + 5.0).astype(np.float32)


def fitted(name: str, data: np.ndarray, n_bits: int = 16, random_state: int = 0) -> Hasher:
    return get_hasher(name, n_bits=n_bits, random_state=random_state).fit(data)


def test_all_is_sorted_and_registry_lists_every_method() -> None:
    assert hashing.__all__ == sorted(hashing.__all__)
    assert all(getattr(hashing, name) is not None for name in hashing.__all__)
    assert available_hashers() == sorted([*NAMES, "bingan-head"])


@pytest.mark.parametrize("name", NAMES)
def test_codes_are_packbits_of_the_projection_signs(name: str, data: np.ndarray) -> None:
    hasher = fitted(name, data, n_bits=24)
    projection = hasher.project(data[:50])
    codes = hasher.transform(data[:50])
    assert projection.shape == (50, 24) and projection.dtype == np.float32
    assert codes.shape == (50, 3) and codes.dtype == np.uint8
    np.testing.assert_array_equal(codes, np.packbits(projection > 0, axis=1))
    # bit j is column j, most significant bit first within each byte
    np.testing.assert_array_equal(np.unpackbits(codes, axis=1).astype(bool), projection > 0)
    assert (codes[:, 0] >> 7 == (projection[:, 0] > 0)).all()
    np.testing.assert_array_equal(hasher.fit_transform(data[:50]), get_hasher(name, n_bits=24, random_state=0)
                                  .fit(data[:50]).transform(data[:50]))


@pytest.mark.parametrize("name", NAMES)
def test_learned_attributes_end_in_underscore_and_init_only_stores(name: str, data: np.ndarray) -> None:
    hasher = get_hasher(name, n_bits=16, random_state=0)
    assert not [k for k in vars(hasher) if k.endswith("_")]
    hasher.fit(data)
    assert hasher.n_features_in_ == 24 and hasher.mean_.shape == (24,)
    assert {k for k in vars(hasher) if not k.endswith("_")} == set(hasher.get_params())


@pytest.mark.parametrize("name", NAMES)
def test_same_random_state_gives_same_codes(name: str, data: np.ndarray) -> None:
    first, again = fitted(name, data, random_state=7), fitted(name, data, random_state=7)
    np.testing.assert_array_equal(first.transform(data), again.transform(data))
    other = fitted(name, data, random_state=8).transform(data)
    assert (name in RANDOMISED) != np.array_equal(other, first.transform(data))


@pytest.mark.parametrize("name", NAMES)
def test_input_types_are_converted_to_float32(name: str, data: np.ndarray) -> None:
    hasher = fitted(name, data)
    as64 = data[:20].astype(np.float64)
    np.testing.assert_array_equal(hasher.transform(as64), hasher.transform(data[:20]))
    np.testing.assert_array_equal(hasher.transform(as64.tolist()), hasher.transform(data[:20]))
    assert hasher.transform(np.round(data[:5]).astype(np.int64)).shape == (5, 2)
    assert hasher.transform(np.empty((0, 24), dtype=np.float32)).shape == (0, 2)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_through_npz_gives_identical_codes(name: str, data: np.ndarray) -> None:
    hasher = get_hasher(name, n_bits=16, random_state=3).fit(data)
    state = hasher.to_state()
    assert all(isinstance(v, np.ndarray | int | float | str) for v in state.values())
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in state.items()}
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        loaded = Hasher.from_state({k: npz[k] for k in npz.files})
    assert type(loaded) is type(hasher) and loaded.get_params() == hasher.get_params()
    np.testing.assert_array_equal(loaded.transform(data), hasher.transform(data))
    np.testing.assert_array_equal(loaded.project(data), hasher.project(data))
    assert type(hasher).from_state(state).n_bits == 16


def test_bad_states_are_refused(data: np.ndarray) -> None:
    state = fitted("lsh", data).to_state()
    with pytest.raises(InvalidParameterError, match="describes LSH, not ITQ"):
        ITQ.from_state(state)
    with pytest.raises(InvalidParameterError,
                       match="'nope', which is not one of adapt, adapt-spectral, bingan-head, itq, kmh"):
        Hasher.from_state({**state, "hasher": "nope"})
    with pytest.raises(InvalidParameterError, match="format"):
        Hasher.from_state({**state, "state_format": 99})
    with pytest.raises(InvalidParameterError, match="lacks hyperplanes_"):
        Hasher.from_state({k: v for k, v in state.items() if k != "hyperplanes_"})


def test_to_state_leaves_out_a_generator_random_state(data: np.ndarray) -> None:
    state = get_hasher("itq", n_bits=8, random_state=np.random.default_rng(0)).fit(data).to_state()
    assert "random_state" not in state and state["n_iter"] == 50
    assert Hasher.from_state(state).get_params()["random_state"] is None


def test_get_params_set_params_and_repr() -> None:
    hasher = ITQ(n_bits=32, random_state=0)
    assert hasher.get_params() == {"n_bits": 32, "n_iter": 50, "random_state": 0}
    assert hasher.set_params(n_iter=5) is hasher and hasher.n_iter == 5
    assert repr(hasher) == "ITQ(n_bits=32, n_iter=5, random_state=0)"
    with pytest.raises(InvalidParameterError, match=r"'n_iters' for ITQ. Valid parameters are: \['n_bits', "):
        hasher.set_params(n_iters=5)


def test_get_hasher_refuses_unknown_names_and_parameters() -> None:
    assert isinstance(get_hasher("pcah", n_bits=8), PCAH)
    with pytest.raises(InvalidParameterError,
                       match="Unknown hasher 'ith'. Valid hashers are: adapt, adapt-spectral, bingan-head, itq, kmh"):
        get_hasher("ith")
    with pytest.raises(InvalidParameterError, match="Valid parameters are"):
        get_hasher("lsh", n_iter=3)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_bits", [12, 0, -8, 16.0, "16", True, None])
def test_bad_n_bits_is_refused_at_fit(name: str, n_bits: object, data: np.ndarray) -> None:
    hasher = get_hasher(name, n_bits=n_bits)  # __init__ only stores
    cls = type(hasher).__name__
    with pytest.raises(InvalidParameterError, match=f"^The 'n_bits' parameter of {cls} must be a positive "
                       f"multiple of 8. Got {n_bits!r} instead.$"):
        hasher.fit(data)


@pytest.mark.parametrize("name", ["itq", "kmh", "pcah"])
def test_more_bits_than_features_is_refused_for_pca_methods(name: str, data: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError, match="at most the number of features \\(24\\). Got 32 instead"):
        fitted(name, data, n_bits=32)


@pytest.mark.parametrize("name", ["lsh", "sh", "sph"])
def test_more_bits_than_features_is_fine_elsewhere(name: str, data: np.ndarray) -> None:
    assert fitted(name, data, n_bits=64).transform(data).shape == (300, 8)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("itq", {"n_iter": -1}, "The 'n_iter' parameter of ITQ must be an integer >= 0. Got -1 instead."),
        ("sph", {"max_samples": 1}, "The 'max_samples' parameter of SphericalHashing must be an integer >= 2."),
        ("sph", {"epsilon_std": 0}, "The 'epsilon_std' parameter of SphericalHashing must be a real number > 0."),
        ("kmh", {"bits_per_subspace": 3}, "The 'bits_per_subspace' parameter of KMeansHashing must be one of 1, 2, "
                                          "4, 8. Got 3 instead."),
        ("lsh", {"random_state": -1}, "The 'random_state' parameter of LSH must be None, a non-negative integer"),
        ("lsh", {"random_state": "0"}, "The 'random_state' parameter of LSH must be None"),
    ],
)
def test_bad_method_parameters_are_refused(name: str, params: dict, message: str, data: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        get_hasher(name, **params).fit(data)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_refused(name: str, data: np.ndarray) -> None:
    hasher = get_hasher(name, n_bits=8, random_state=0)
    with_nan = data.copy()
    with_nan[3, 4], with_nan[5, 0] = np.nan, np.inf
    cases = [
        (with_nan, r"X contains NaN or infinity \(2 of 7200 values"),
        (np.full((2, 3), 1e300), "NaN or infinity"),  # overflows float32
        (data[0], r"2-D array of shape \(n_samples, n_features\). Got an array of shape \(24,\) instead"),
        (data[None], r"Got an array of shape \(1, 300, 24\)"),
        (data.astype(str), "real numbers. Got dtype <U"),
        (data[:, :0], "at least 1 feature"),
        (data[:1], "needs at least 2 samples to fit. Got 1"),
        ([[1.0, 2.0], [3.0]], "2-D array of numbers. Got list"),
    ]
    for X, message in cases:
        with pytest.raises(InvalidParameterError, match=message):
            hasher.fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_use_before_fit_and_wrong_feature_count(name: str, data: np.ndarray) -> None:
    hasher = get_hasher(name, n_bits=8)
    for use in (hasher.transform, hasher.project):
        with pytest.raises(NotFittedError, match="not fitted yet. Call 'fit'"):
            use(data)
    with pytest.raises(AttributeError):  # scikit-learn's NotFittedError is an AttributeError too
        hasher.to_state()
    assert issubclass(NotFittedError, LookalikeError)
    hasher.fit(data)
    with pytest.raises(InvalidParameterError, match=f"X has 23 features, but {type(hasher).__name__} was fitted "
                       "with 24 features"):
        hasher.transform(data[:, :23])
    with pytest.raises(InvalidParameterError, match="NaN"):
        hasher.transform(np.full((1, 24), np.nan))


def test_itq_projects_with_its_current_fit_after_a_refit(data: np.ndarray) -> None:
    """ITQ keeps components_.T @ rotation_ between calls; a refit (or changed arrays) must not use the old one."""
    itq = get_hasher("itq", n_bits=16, random_state=0).fit(data)
    first = itq.project(data[:5])
    np.testing.assert_allclose(first, (data[:5] - itq.mean_) @ (itq.components_.T @ itq.rotation_), rtol=1e-5,
                               atol=1e-5)
    itq.set_params(random_state=1)
    itq.fit(data[::-1] * 2)
    np.testing.assert_allclose(itq.project(data[:5]), (data[:5] - itq.mean_) @ (itq.components_.T @ itq.rotation_),
                               rtol=1e-5, atol=1e-5)
    assert "_rotated_cache" not in itq.to_state()
