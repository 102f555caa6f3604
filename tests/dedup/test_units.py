"""Unit tests of the duplicate detection parts that need no model: edits, thumbnails, pairs, groups, calibration."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.dedup import Calibration
from lookalike.dedup.calibration import check_precision, fit_calibration, threshold_for_precision
from lookalike.dedup.edits import EDIT_KINDS, STRENGTHS, apply_edit
from lookalike.dedup.graph import approximate_edges, exact_edges
from lookalike.dedup.groups import choose_keeper, components
from lookalike.dedup.signals import geometric_score, pair_signals, phash_bits, thumbnail, trim_box
from lookalike.errors import CalibrationRequiredError, CatalogError, InvalidParameterError
from lookalike.index import FloatFlatIndex


def _photo(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((160, 120), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_edits_are_seeded_and_rgb(kind: str) -> None:
    for strength in STRENGTHS[kind]:
        one = apply_edit(_photo(), kind, strength, np.random.default_rng(3))
        two = apply_edit(_photo(), kind, strength, np.random.default_rng(3))
        assert one.mode == "RGB" and np.array_equal(np.asarray(one), np.asarray(two))


def test_edit_geometry() -> None:
    rng = np.random.default_rng(0)
    assert apply_edit(_photo(), "crop", 0.2, rng).size == (128, 96)
    assert apply_edit(_photo(), "resize", 0.5, rng).size == (80, 60)
    assert apply_edit(_photo(), "pad", 0.05, rng).size == (176, 136)
    assert np.array_equal(np.asarray(apply_edit(_photo(), "flip", 1, rng)), np.asarray(_photo())[:, ::-1])
    with pytest.raises(InvalidParameterError, match="unknown edit"):
        apply_edit(_photo(), "sepia", 1, rng)


def test_geometric_score_finds_crops_pads_and_mirrors() -> None:
    rng = np.random.default_rng(1)
    base = thumbnail(_photo())
    for kind, strength in [("crop", 0.2), ("crop", 0.3), ("flip", 1), ("brightness", 1.45)]:
        edited = thumbnail(apply_edit(_photo(), kind, strength, rng))
        assert geometric_score(base, edited) > 0.9, kind
    assert geometric_score(base, thumbnail(_photo(seed=5))) < 0.8


def test_trimmed_thumbnail_sees_through_padding_of_any_colour() -> None:
    rng = np.random.default_rng(2)
    assert trim_box(_photo()) is None
    assert trim_box(Image.new("RGB", (50, 40), (255, 255, 255))) is None  # a blank image is not trimmed to nothing
    for strength in STRENGTHS["pad"]:
        padded = apply_edit(_photo(), "pad", strength, rng)
        left, top, right, bottom = trim_box(padded) or (0, 0, 0, 0)
        border = round(160 * strength)
        assert abs(left - border) <= 3 and abs(top - border) <= 3, strength
        assert abs(right - (border + 160)) <= 3 and abs(bottom - (border + 120)) <= 3, strength
        thumbs = thumbnail(padded)
        assert thumbs.shape == (2, 32, 32) and geometric_score(thumbnail(_photo()), thumbs) > 0.95


def test_phash_of_thumbnails_agrees_with_imagehash() -> None:
    import imagehash

    image = _photo(7)
    ours = phash_bits(thumbnail(image)[0])
    theirs = np.asarray(imagehash.phash(image.convert("L").resize((32, 32), Image.Resampling.BOX)).hash).ravel()
    assert ours.shape == (64,) and np.count_nonzero(ours != theirs) <= 2
    thumbs = {1: thumbnail(image), 2: thumbnail(apply_edit(image, "jpeg", 40, np.random.default_rng(0))),
              3: thumbnail(_photo(8))}
    sig = pair_signals(thumbs, np.array([[1, 2], [1, 3], [1, 9]]), only=np.array([True, False, True]))
    assert sig["phash"][0] > 0.9 > sig["phash"][1] and np.isnan(sig["phash"][2])
    assert sig["geometric"][0] > 0.95 and np.isnan(sig["geometric"][1]) and np.isnan(sig["geometric"][2])


def test_exact_edges_and_components_equal_brute_force(rng: np.random.Generator) -> None:
    centres = rng.normal(size=(30, 16))
    vectors = np.concatenate([centres, centres[:10] + 0.05 * rng.normal(size=(10, 16)),
                              centres[:3] + 0.05 * rng.normal(size=(3, 16))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = np.arange(100, 100 + len(vectors), dtype=np.int64)
    index = FloatFlatIndex(16)
    index.add(keys, vectors)
    cut = 0.95
    pairs, scores = exact_edges(index, keys, 5, min_score=cut, batch=7)
    full = vectors @ vectors.T
    expected = {(int(keys[i]), int(keys[j])) for i, j in itertools.combinations(range(len(keys)), 2)
                if full[i, j] >= cut}
    assert {tuple(p) for p in pairs.tolist()} == expected  # every true pair is among the 5 nearest here
    assert np.allclose(scores, [full[a - 100, b - 100] for a, b in pairs.tolist()], atol=1e-5)
    # brute-force components (repeated merging of overlapping sets)
    sets: list[set[int]] = []
    for a, b in expected:
        hit = [s for s in sets if a in s or b in s]
        merged = {a, b}.union(*hit)
        sets = [s for s in sets if s not in hit] + [merged]
    assert components(keys, pairs) == sorted((sorted(s) for s in sets), key=lambda g: g[0])
    assert components(keys, np.empty((0, 2))) == []
    with pytest.raises(InvalidParameterError):
        components([1, 2], np.array([[1, 3]]))


def test_threshold_for_precision_matches_exhaustive_search(rng: np.random.Generator) -> None:
    scores = np.round(rng.random(300), 2)
    labels = rng.random(300) < scores
    for target in (0.6, 0.8, 0.9, 0.99):
        got = threshold_for_precision(scores, labels, target)
        ok = [t for t in np.unique(scores) if labels[scores >= t].mean() >= target]
        assert got == (min(ok) if ok else np.inf)


def test_keeper_is_largest_then_oldest() -> None:
    class It:
        def __init__(self, id: str, w: int, h: int, added: float) -> None:  # noqa: A002
            self.id, self.width, self.height, self.added = id, w, h, added

    assert choose_keeper([It("a", 10, 10, 1), It("b", 20, 10, 5), It("c", 20, 10, 3)]).id == "c"


def test_calibration_fit_roundtrip_and_errors(rng: np.random.Generator) -> None:
    n = 200
    query_of = np.repeat(np.arange(n), 5)
    labels = np.tile([True, False, False, False, False], n)
    cosine = np.where(labels, rng.uniform(0.85, 1.0, 5 * n), rng.uniform(0.3, 0.9, 5 * n))
    geo = np.where(labels, rng.uniform(0.8, 1.0, 5 * n), rng.uniform(0.2, 0.95, 5 * n))
    kinds = [EDIT_KINDS[i % len(EDIT_KINDS)] for i in range(n)]
    cal = fit_calibration({"cosine": cosine, "geometric": geo}, labels, query_of, kinds, target_precision=0.99,
                          encoder="x", k=5, seed=0)
    assert cal.precision >= 0.95 and cal.recall > 0.5 and set(cal.recall_by_edit) == set(EDIT_KINDS)
    again = Calibration.from_json(cal.to_json())
    assert again == cal
    verdicts, _ = again.verdicts({"cosine": np.array([0.99, 0.5, 0.5]), "geometric": np.array([0.99, 0.3, np.nan])},
                                 np.array([False, False, True]))
    assert verdicts == ["near-duplicate", "similar", "exact"]
    with pytest.raises(CalibrationRequiredError, match="unreadable"):
        Calibration.from_json("{not json")
    with pytest.raises(CalibrationRequiredError, match="format"):
        Calibration.from_json('{"format": 99}')
    for bad in (1.0, 0.2, "0.9", True, float("nan")):
        with pytest.raises(InvalidParameterError):
            check_precision(bad)
    with pytest.raises(CatalogError, match="no distractor"):
        fit_calibration({"cosine": cosine[labels]}, labels[labels], query_of[labels], kinds, target_precision=0.9,
                        encoder="x", k=1, seed=0)


def test_approximate_edges_match_exact_edges_on_a_small_catalogue(tmp_path: Path) -> None:
    """The fast path (candidates in a projection, rescored by exact cosine) against the exact kNN graph."""
    from lookalike import Catalog

    rng = np.random.default_rng(7)
    bases = [rng.integers(0, 256, (4, 4), dtype=np.uint8) for _ in range(300)]
    images = [Image.fromarray(b).resize((16, 16), Image.Resampling.BICUBIC) for b in bases]
    for i in range(0, 300, 5):  # 60 noisy copies
        noisy = np.asarray(images[i], dtype=np.int16) + rng.integers(-6, 7, (16, 16))
        images.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)))
    with Catalog(tmp_path / "cat", encoder="pixels:size=8") as cat:
        cat.add_many(images)
        view = cat.vector_index()
        keys = view.keys()
        exact, exact_cos = exact_edges(view, keys, 5, min_score=-1.0, batch=64)
        fast, fast_cos = approximate_edges(view, keys, 5, 24, min_score=-1.0, dims=12)
        truth = {tuple(p) for p in exact.tolist()}
        found = {tuple(p) for p in fast.tolist()}
        assert len(found & truth) >= 0.97 * len(truth)  # recall of the kNN edges, 12 of 64 dimensions
        scores = dict(zip(map(tuple, fast.tolist()), fast_cos.tolist(), strict=True))
        assert all(abs(scores[p] - c) < 1e-4 for p, c in zip(map(tuple, exact.tolist()), exact_cos.tolist(),
                                                                 strict=True) if p in scores)  # exact cosines
        close = exact_cos >= 0.99  # the near copies: every one is found, so the groups are the same
        assert close.sum() >= 60 and {tuple(p) for p in exact[close].tolist()} <= found
        assert components(keys, exact[close]) == components(keys, fast[fast_cos >= 0.99])
        cat.remove_many([cat.list(limit=3)[i].id for i in range(3)])  # removed items drop out of both
        keys_now = view.keys()
        fast2, _ = approximate_edges(view, keys, 5, 24, min_score=-1.0, dims=12)
        assert set(fast2.reshape(-1).tolist()) <= set(keys_now.tolist())


def test_geometric_score_finds_small_rotations() -> None:
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((256, 256))
    other = Image.fromarray(skimage.data.chelsea()).resize((256, 256))
    for degrees in (-10, -5, 2, 6):
        turned = photo.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))
        assert geometric_score(thumbnail(photo), thumbnail(turned)) >= 0.93
        assert geometric_score(thumbnail(turned), thumbnail(photo)) == pytest.approx(
            geometric_score(thumbnail(photo), thumbnail(turned)), abs=0.02)
    assert geometric_score(thumbnail(photo), thumbnail(other)) < 0.8


def test_mirrored_copies_agree_by_phash() -> None:
    """Issue 11.3: the hashes compared a mirrored copy as it is, so its geometric check (which sees mirror images)
    never ran; the mirrored hashes now open it."""
    from PIL import ImageOps

    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((160, 120))
    thumbs = {1: thumbnail(photo), 2: thumbnail(ImageOps.mirror(photo)), 3: thumbnail(photo.rotate(90))}
    sig = pair_signals(thumbs, np.array([[1, 2], [1, 3]]), np.zeros(2, dtype=bool))
    assert sig["phash_mirrored"][0] == 1.0 and sig["phash_trim_mirrored"][0] == 1.0 and sig["phash"][0] < 0.8
    assert sig["phash_mirrored"][1] < 0.8  # a turned image is not a mirror image


def test_the_colour_veto_caps_a_verdict_at_similar_and_never_vetoes_unmeasured_pairs() -> None:
    rng = np.random.default_rng(0)
    n = 400
    labels = np.zeros(n, dtype=bool)
    labels[::10] = True
    signals = {name: np.where(labels, rng.uniform(0.9, 1.0, n), rng.uniform(0.0, 0.8, n))
               for name in ("cosine", "geometric", "phash", "phash_trim")}
    signals["colour"] = np.where(labels, rng.uniform(0.0, 0.3, n), rng.uniform(0.0, 1.0, n))
    cal = fit_calibration(signals, labels, np.arange(n) // 10, ["jpeg"] * (n // 10), target_precision=0.99,
                          encoder="e", k=10, seed=0)
    assert cal.colour_limit == pytest.approx(float(signals["colour"][labels].max()) + 0.1, abs=1e-4)
    assert "colour" not in cal.distractors  # a veto, not evidence
    strong = {name: np.array([1.0, 1.0, 1.0]) for name in ("cosine", "geometric", "phash", "phash_trim")}
    verdicts, _ = cal.verdicts({**strong, "colour": np.array([0.0, 0.95, np.nan])}, np.zeros(3, dtype=bool))
    assert verdicts == ["near-duplicate", "similar", "near-duplicate"]
    stored = json.loads(cal.to_json())
    del stored["colour_limit"]
    old = Calibration.from_json(json.dumps(stored))
    assert old.colour_limit is None  # a calibration stored before the veto still loads, without it
