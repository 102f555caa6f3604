"""Every OpenCV descriptor gives its documented size, and a sane FPR@95 on an easy warp set."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.patches import DESCRIPTORS, PatchPairs, describe, evaluate, warp_pairs

WIDTH = {"brief": 32, "orb": 32, "brisk": 64, "latch": 32, "binboost64": 8, "binboost128": 16, "binboost256": 32,
         "beblid512": 64, "beblid256": 32, "teblid256": 32, "teblid512": 64, "freak": 64, "sift": 128}


@pytest.fixture(scope="module")
def easy() -> PatchPairs:
    return warp_pairs(240, 240, 0)


def test_the_list_is_the_documented_one() -> None:
    assert set(DESCRIPTORS) == set(WIDTH)


@pytest.mark.parametrize("name", list(WIDTH))
def test_dimension_and_a_sane_fpr(name: str, easy: PatchPairs) -> None:
    rows, ok = describe(name, easy.patches)
    d = DESCRIPTORS[name]
    assert rows.shape == (len(easy.patches), WIDTH[name]) and ok.all()
    assert rows.dtype == (np.float32 if name == "sift" else np.uint8) and d.width == WIDTH[name]
    assert len({r.tobytes() for r in rows}) > 0.9 * len(rows)  # not one constant code
    result = evaluate(easy, name)
    assert result.fpr < 0.5 and result.failed == 0 and result.bytes == WIDTH[name] * (4 if name == "sift" else 1)


def test_a_patch_is_described_alike_wherever_it_sits_in_the_mosaic(easy: PatchPairs) -> None:
    one, _ = describe("binboost256", easy.patches[:1])
    many, _ = describe("binboost256", np.concatenate([easy.patches[1:300], easy.patches[:1]]))
    assert np.array_equal(one[0], many[-1])


def test_bad_input() -> None:
    with pytest.raises(InvalidParameterError, match="unknown descriptor 'surf'"):
        describe("surf", np.zeros((1, 64, 64), np.uint8))
    with pytest.raises(InvalidParameterError, match=r"\(n, 64, 64\) uint8"):
        describe("sift", np.zeros((1, 32, 32), np.uint8))
