"""The mined hinge loss against a brute-force numpy reference on seeded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookalike.triplet.config import TripletConfig
from lookalike.triplet.data import TripletData, _components, batches
from lookalike.triplet.losses import distances, triplet_loss


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _dist(a: np.ndarray, b: np.ndarray, distance: str) -> float:
    return float(1 - a @ b) if distance == "angular" else float(np.linalg.norm(a - b))


def _reference(x: np.ndarray, pairs: np.ndarray, negatives: np.ndarray, margin: float, distance: str,
               mining: str) -> float:
    """The loss by loops: each pair's negatives chosen one candidate at a time."""
    hinges: list[float] = []
    for q, p in pairs:
        d_qp = _dist(x[q], x[p], distance)
        cand = [(_dist(x[q], x[j], distance), j) for j in range(len(x)) if negatives[q, j]]
        if not cand:
            continue
        if mining == "all":
            hinges += [h for d, _ in cand if (h := margin + d_qp - d) > 0]
            continue
        if mining == "hard":
            d_n = min(cand)[0]
        else:
            farther = [d for d, _ in cand if d > d_qp]
            d_n = min(farther) if farther else max(cand)[0]
        hinges.append(max(0.0, margin + d_qp - d_n))
    if mining == "all":
        return sum(hinges) / len(hinges) if hinges else 0.0
    return float(np.mean(hinges)) if hinges else 0.0


def test_distances_match_numpy(rng: np.random.Generator) -> None:
    x = _unit(rng, 7, 5)
    for distance in ("euclidean", "angular"):
        got = distances(torch.from_numpy(x), distance).numpy()
        ref = np.array([[_dist(a, b, distance) for b in x] for a in x])
        np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize("mining", ["semi-hard", "hard", "all"])
@pytest.mark.parametrize("distance", ["euclidean", "angular"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_the_brute_force_reference_on_class_batches(mining: str, distance: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 40)
    data = TripletData("classes", [], labels, np.arange(40), np.empty((0, 3), dtype=np.int64), "synthetic")
    cfg = TripletConfig(batch_size=24, per_class=3, seed=seed)
    x_all = _unit(rng, 40, 8)
    seen = 0
    for ids, pairs, negatives in batches(data, cfg, rng):
        x = x_all[ids]
        for margin in (0.05, 0.5):
            loss, stats = triplet_loss(torch.from_numpy(x), torch.from_numpy(pairs), torch.from_numpy(negatives),
                                       margin=margin, distance=distance, mining=mining)
            ref = _reference(x, pairs, negatives, margin, distance, mining)
            assert loss.item() == pytest.approx(ref, abs=1e-9)
            assert 0.0 <= stats["active"] <= 1.0
        seen += 1
    assert seen >= 2


@pytest.mark.parametrize("kind", ["pairs", "triplets"])
@pytest.mark.parametrize("mining", ["semi-hard", "hard", "all"])
def test_loss_matches_the_reference_on_csv_batches(kind: str, mining: str, rng: np.random.Generator) -> None:
    width = 2 if kind == "pairs" else 3
    rows = np.stack([rng.choice(30, width, replace=False) for _ in range(20)])
    # a pair's images are one group (as the loader makes them): a positive is never its own query's negative,
    # whose distance would tie the positive's exactly and leave semi-hard mining to the last bit of the matmul
    labels = _components(30, rows) if kind == "pairs" else np.full(30, -1)
    data = TripletData(kind, [], labels, rows, np.empty((0, 3), dtype=np.int64), "synthetic")
    x_all = _unit(rng, 30, 6)
    for ids, pairs, negatives in batches(data, TripletConfig(batch_size=18), rng):
        assert len(ids) == len(negatives) and pairs.max() < len(ids)
        if kind == "triplets":  # only the row's own negative
            assert negatives.sum() == len(ids) // 3
        loss, _ = triplet_loss(torch.from_numpy(x_all[ids]), torch.from_numpy(pairs), torch.from_numpy(negatives),
                               margin=0.2, mining=mining)
        assert loss.item() == pytest.approx(_reference(x_all[ids], pairs, negatives, 0.2, "euclidean", mining),
                                            abs=1e-9)


def test_a_batch_without_negatives_gives_a_zero_loss_that_backpropagates() -> None:
    x = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=1).requires_grad_(True)
    pairs = torch.tensor([[0, 1], [2, 3]])
    for mining in ("semi-hard", "hard", "all"):
        loss, stats = triplet_loss(x, pairs, torch.zeros(4, 4, dtype=torch.bool), margin=0.1, mining=mining)
        assert loss.item() == 0.0 and stats["triplets"] == 0
        loss.backward()


def test_the_loss_pushes_negatives_away() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(12, 4, generator=gen), dim=1).requires_grad_(True)
    labels = torch.arange(12) % 3
    same = labels[:, None] == labels[None, :]
    pairs = torch.argwhere(same & ~torch.eye(12, dtype=torch.bool))
    loss, _ = triplet_loss(x, pairs, ~same, margin=0.5, mining="hard")
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and loss.item() > 0


def test_class_batches_hold_positives_and_cover_every_training_image(rng: np.random.Generator) -> None:
    labels = np.repeat(np.arange(5), 9)
    data = TripletData("classes", [], labels, np.arange(45), np.empty((0, 3), dtype=np.int64), "synthetic")
    cfg = TripletConfig(batch_size=16, per_class=4)
    seen = []
    for ids, pairs, negatives in batches(data, cfg, rng):
        seen += list(ids)
        assert len(pairs) and all(labels[ids[q]] == labels[ids[p]] and q != p for q, p in pairs)
        assert (negatives == (labels[ids][:, None] != labels[ids][None, :])).all()
    assert sorted(seen) == list(range(45))
