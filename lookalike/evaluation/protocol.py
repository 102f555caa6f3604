"""The unsupervised-hashing retrieval protocol of the BinGAN paper, on Fashion-MNIST (and CIFAR-10 when given).

1,000 random test images (fixed seed) are the queries, the training images the database and the unlabelled
training data of every hasher; an item is relevant when it shares the query's class. Each cell reports
mAP@1000 with a stable ranking (the paper's table), mAP@10000 with tied distances grouped (the reference code's
cut-off and tie handling) and the tie-aware mAP@1000 (expected AP over every order of tied items). The float
cosine ranking of the same features is the ceiling row.

``lookalike eval`` and ``benchmarks/retrieval.py`` print the same table; given a :class:`ProtocolRun`,
:func:`run_protocol` also keeps what ``lookalike eval --plot`` draws (:mod:`lookalike.evaluation.plots`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from .metrics import precision_recall_of_codes, retrieval_map

if TYPE_CHECKING:
    from ..datasets import Dataset

FEATURES = {"pixels": "pixels:size=28", "efficientnet-lite0": "efficientnet-lite0",
            # the deep embedding beside the silhouette; weight chosen on a validation split (combined_codes.py)
            "combined": "efficientnet-lite0++pixels:size=28,weight=0.7"}
DATASETS = ("fashion-mnist", "cifar10")
FOLDER = "folder"  # a user's class-per-subfolder tree (--root): seeded queries against the rest of it


Cell = tuple[float, float, float]


@dataclass
class ProtocolRun:
    """What a :func:`run_protocol` run measured besides its table, for plots.

    Attributes:
        cells: (feature, method, bits) → (mAP@1000 stable, mAP@10000 grouped, tie-aware mAP@1000).
        ceilings: feature → the float cosine ranking's (mAP@1000, mAP@10000, NaN).
        fit_seconds: (feature, method, bits) → seconds to fit the hasher.
        pr_bits: the code length of the precision–recall curves (the largest of the run).
        pr: (feature, method) → (precision, recall) at every Hamming radius 0..pr_bits
            (:func:`~lookalike.evaluation.precision_recall_of_codes`).
    """

    cells: dict[tuple[str, str, int], Cell] = field(default_factory=dict)
    ceilings: dict[str, Cell] = field(default_factory=dict)
    fit_seconds: dict[tuple[str, str, int], float] = field(default_factory=dict)
    pr_bits: int = 0
    pr: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def load_split(dataset: str, split: str, root: str | None = None) -> Dataset:
    from ..datasets import load_cifar10, load_fashion_mnist

    if dataset == "fashion-mnist":
        return load_fashion_mnist(split, root)
    if dataset == "cifar10":
        return load_cifar10(root, split)
    raise InvalidParameterError(f"The 'dataset' parameter must be one of {', '.join(DATASETS)}. Got {dataset!r}.")


def _spec(feature: str) -> str:
    if feature not in FEATURES:
        raise InvalidParameterError(f"Unknown feature {feature!r}. Valid features: {', '.join(FEATURES)}.")
    return FEATURES[feature]


def features(dataset: str, split: str, feature: str, root: str | None = None, progress: bool = False) -> np.ndarray:
    """(n, dim) float32 features of a split through a lookalike encoder, cached as .npy in the cache directory."""
    from ..encoders import get_encoder
    from ..encoders.combined import CombinedEncoder
    from ..encoders.efficientnet import cache_dir

    spec = _spec(feature)
    enc = get_encoder(spec)
    if isinstance(enc, CombinedEncoder):  # from its parts' features (each cached), as its encode would make them
        by_spec = {v: k for k, v in FEATURES.items()}
        return enc.combine([features(dataset, split, by_spec[part.spec], root, progress) for part, _ in enc.parts])
    name = f"{dataset}-{split}-{spec.replace(':', '_').replace('=', '')}.npy"
    path = Path(cache_dir()) / "features" / name
    if root is None and path.exists():
        return np.load(path)
    data = load_split(dataset, split, root)
    images = [Image.fromarray(img).convert("RGB") for img in data.images]
    x = enc.encode_pil(images, progress=progress)
    if root is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x)
    return x


def scores(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray, metric: str) -> tuple[float, float, float]:
    """(mAP@1000 stable, mAP@10000 grouped, tie-aware mAP@1000 — NaN for cosine, which has no integer ties); a
    database smaller than a cut-off is ranked whole."""
    grouped = "grouped" if metric == "hamming" else "stable"
    k1, k2 = min(1000, len(db)), min(10_000, len(db))
    return (retrieval_map(q, db, ql, dbl, k1, metric=metric, ties="stable"),
            retrieval_map(q, db, ql, dbl, k2, metric=metric, ties=grouped),
            retrieval_map(q, db, ql, dbl, k1, metric=metric, ties="expected") if metric == "hamming" else np.nan)


Vectors = Callable[[str], tuple[np.ndarray, np.ndarray]]


def _benchmark(dataset: str, root: str | None, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, Vectors, str]:
    """(query labels, database labels, feature → (database, query) vectors, a sentence saying what they are)."""
    rng = np.random.default_rng(seed)
    if dataset != FOLDER:
        train, test = load_split(dataset, "train", root), load_split(dataset, "test", root)
        picks = np.sort(rng.choice(len(test), queries, replace=False))
        return (test.labels[picks], train.labels,
                lambda feat: (features(dataset, "train", feat, root), features(dataset, "test", feat, root)[picks]),
                f"{queries} {dataset} test queries (seed {seed}) against the {len(train):,} training images")
    from ..datasets import load_image_folder
    from ..encoders import get_encoder

    if root is None:
        raise InvalidParameterError("The 'root' parameter (--root) must name the class-per-subfolder image folder "
                                    "of --dataset folder. Got None instead.")
    data = load_image_folder(root)
    if not 1 <= queries < len(data):
        raise InvalidParameterError(f"The 'queries' parameter must be in [1, {len(data) - 1}] for the {len(data)} "
                                    f"images of {root}. Got {queries} instead.")
    picks = np.sort(rng.choice(len(data), queries, replace=False))
    rest = np.setdiff1d(np.arange(len(data)), picks)

    def vectors(feat: str) -> tuple[np.ndarray, np.ndarray]:
        x = get_encoder(_spec(feat)).encode(data.paths)
        return x[rest], x[picks]

    return (data.labels[picks], data.labels[rest], vectors,
            f"{queries} images of {root} (seed {seed}) against its other {len(rest):,}")


def run_protocol(
    *,
    dataset: str = "fashion-mnist",
    feature_names: Sequence[str] = ("pixels", "efficientnet-lite0"),
    hashers: Sequence[str] = ("lsh", "pcah", "itq", "sh", "sph", "kmh"),
    bits: Sequence[int] = (16, 32, 64),
    queries: int = 1000,
    seed: int = 0,
    root: str | None = None,
    out: Callable[[str], None] = print,
    record: ProtocolRun | None = None,
) -> dict[tuple[str, str, int], Cell]:
    """Print the paper-shaped table (methods × bits per feature) and return every cell by (feature, method, bits).

    ``dataset="folder"`` reads a class-per-subfolder tree at ``root`` (:func:`~lookalike.datasets.load_image_folder`):
    ``queries`` of its images drawn with ``seed`` are the queries, the others the database (no features cached).
    ``record``, when given, is filled in as well: the cells, the ceilings, the fit times and, at the largest code
    length, each method's precision and recall by Hamming radius.
    """
    from ..hashing import get_hasher

    ql, dbl, vectors, what = _benchmark(dataset, root, queries, seed)
    k1, k2 = min(1000, len(dbl)), min(10_000, len(dbl))
    out(f"{what}; hashers fitted on the database features (random_state 0). Cells: mAP@{k1} / mAP@{k2} / "
        f"tie-aware mAP@{k1}.\n")
    results: dict[tuple[str, str, int], Cell] = {}
    if record is not None:
        record.pr_bits = max(bits)
    for feat in feature_names:
        t0 = time.perf_counter()
        db, q = vectors(feat)
        out(f"### {feat} features ({db.shape[1]}-d; extracted or loaded in {time.perf_counter() - t0:.0f} s)\n")
        out("| method | " + " | ".join(f"{b} bits" for b in bits) + " | fit s (last) |")
        out("|---|" + "---|" * len(bits) + "---:|")
        ceiling = scores(q, db, ql, dbl, "cosine")
        if record is not None:
            record.ceilings[feat] = ceiling
        out(f"| float cosine ({db.shape[1] * 4:,} bytes) | "
            + " | ".join(f"{ceiling[0]:.3f} / {ceiling[1]:.3f}" for _ in bits) + " | – |")
        for name in hashers:
            cells, fit_s = [], 0.0
            for b in bits:
                t1 = time.perf_counter()
                hasher = get_hasher(name, n_bits=b, random_state=0).fit(db)
                fit_s = time.perf_counter() - t1
                codes_q, codes_db = hasher.transform(q), hasher.transform(db)
                results[(feat, name, b)] = m = scores(codes_q, codes_db, ql, dbl, "hamming")
                if record is not None:
                    record.cells[(feat, name, b)], record.fit_seconds[(feat, name, b)] = m, fit_s
                    if b == record.pr_bits:
                        record.pr[(feat, name)] = precision_recall_of_codes(codes_q, codes_db, ql, dbl)
                cells.append(f"{m[0]:.3f} / {m[1]:.3f} / {m[2]:.3f}")
            out(f"| {name.upper()} | " + " | ".join(cells) + f" | {fit_s:.1f} |")
        out("")
    return results
