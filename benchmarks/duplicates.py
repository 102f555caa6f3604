"""Near-duplicate detection (issue 6): recall at 99% precision per edit type and method, and dedup at 100k items.

**Recall part.** The catalogue holds real photographs that ship with the installed packages (the skimage and
scikit-learn sample photos; matplotlib's when it is installed), 200 LFW faces (skimage's ``lfw_subset``) and
Fashion-MNIST items, added by the library (``Catalog.index_folder`` on PNG files, so vectors and thumbnails come
from the real ingest path). Sources (every photo, some faces, some Fashion-MNIST items) are edited by
:mod:`lookalike.dedup.edits` at every strength of :data:`~lookalike.dedup.edits.STRENGTHS` (seeded); every other
catalogue item is a distractor. Each edited copy is a query:

- candidates: for cosine, geometric and combined the ``k`` nearest catalogue items by the embedding's cosine (the
  catalogue's index, as ``Catalog.find_duplicates`` and ``dedup`` do); for phash / dhash the ``k`` nearest by
  Hamming distance of their own 64-bit hashes (all catalogue items compared, so they are not limited by the CNN);
- a candidate pair is *correct* when the candidate is the query's source;
- the sources are split in two halves at random (seeded, per image group). **One threshold per method is fitted
  on the calibration half** over all edit types pooled: the lowest score at which the pairs scoring at least
  that have precision >= 99% (:func:`lookalike.dedup.calibration.threshold_for_precision`). For ``combined``,
  :func:`~lookalike.dedup.calibration.fit_calibration` (the catalogue's own fitting code) turns the signals into
  evidence with the distractor tables of the calibration half and fits its threshold out of fold there;
- **reported on the held-out half**: precision = correct / all pairs at or above the threshold (all edit types
  together), recall of an edit type = share of its copies whose source is among the pairs at or above the
  threshold. Nothing is tuned on the held-out half;
- ``combined (own calibration)``: the threshold and distractor tables a user gets from
  ``Catalog.calibrate_duplicates()`` (generated copies of a random catalogue sample, no benchmark labels), applied
  to the same held-out pairs.

**Scale part** (``--scale N``): a catalogue of N items (the 70,000 Fashion-MNIST images' cached
efficientnet-lite0 vectors, ``~/.cache/lookalike/features/fashion-mnist-{train,test}-efficientnet-lite0.npy``,
plus edited copies up to N: thumbnail of a real edit of the image, vector = the source's vector with Gaussian
noise so the cosine to the source is ~0.9-0.97 like a real edit's). Encoding 100k images would take 20+ CPU
minutes here, so the rows are written straight through the catalogue's store (``lookalike.catalog.store``
transactions: items, vectors and thumbnail features, as ``Catalog.add`` writes them) -- this benchmark only.
Then ``Catalog.dedup()`` runs as a user would call it: time and peak RSS (``resource.getrusage``) are reported.

Run: ``python benchmarks/duplicates.py [--write]`` and ``python benchmarks/duplicates.py --scale 100000 [--write]``
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.catalog.store import NewItem, Store
from lookalike.dedup import calibration, edits, matching, signals
from lookalike.dedup.calibration import fit_calibration, threshold_for_precision
from lookalike.dedup.edits import STRENGTHS, apply_edit
from lookalike.dedup.graph import approximate_edges, exact_edges
from lookalike.dedup.scoring import cosine_floor
from lookalike.encoders import get_encoder

CACHE = Path(os.environ.get("LOOKALIKE_BENCH_CACHE", Path.home() / ".cache" / "lookalike" / "bench-dedup"))
TARGET = 0.99
SKIMAGE_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "camera.png", "rocket.jpg", "hubble_deep_field.jpg",
                  "ihc.png", "retina.jpg", "motorcycle_left.png", "page.png", "text.png", "moon.png", "coins.png",
                  "brick.png", "grass.png", "gravel.png", "color.png", "cell.png", "microaneurysms.png", "horse.png",
                  "clock_motion.png", "phantom.png")


# -- data ----------------------------------------------------------------------------------------------------------

def photographs() -> list[tuple[str, Image.Image]]:
    """The sample photographs shipped with skimage, scikit-learn and (when installed) matplotlib."""
    import skimage
    import sklearn

    out = []
    sk = Path(skimage.__file__).parent / "data"
    out += [(f"skimage-{n}", Image.open(sk / n).convert("RGB")) for n in SKIMAGE_PHOTOS if (sk / n).exists()]
    sl = Path(sklearn.__file__).parent / "datasets" / "images"
    out += [(f"sklearn-{n}", Image.open(sl / n).convert("RGB")) for n in ("china.jpg", "flower.jpg")]
    try:
        import matplotlib.cbook

        for n in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
            try:
                with matplotlib.cbook.get_sample_data(n) as f:  # type: ignore[attr-defined]
                    out.append((f"matplotlib-{n}", Image.open(f).convert("RGB")))
            except (OSError, ValueError):
                continue
    except ImportError:
        pass
    return out


@dataclass
class Data:
    names: list[str]  # catalogue item ids, in catalogue order
    groups: list[str]  # photo / face / fashion of each catalogue item
    sources: list[int]  # catalogue positions that get edited copies
    query_source: np.ndarray  # per query: catalogue position of its source
    query_kind: np.ndarray
    query_strength: np.ndarray
    queries: list[Image.Image]
    images: list[Image.Image]


def make_data(seed: int, faces: int, fashion: int, src_faces: int, src_fashion: int) -> Data:
    import skimage

    from lookalike.datasets import load_fashion_mnist

    rng = np.random.default_rng(seed)
    photos = photographs()
    lfw = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")[:faces]
    face_images = [Image.fromarray((f * 255).round().astype(np.uint8)).resize((100, 100), Image.Resampling.BICUBIC)
                   .convert("RGB") for f in lfw]
    fm = load_fashion_mnist("train").images
    picked = rng.permutation(len(fm))[:fashion]
    fm_images = [Image.fromarray(fm[i]).resize((112, 112), Image.Resampling.BICUBIC).convert("RGB") for i in picked]
    names = [n for n, _ in photos] + [f"face-{i:03d}" for i in range(len(face_images))] + \
        [f"fashion-{int(i):05d}" for i in picked]
    images = [im for _, im in photos] + face_images + fm_images
    groups = ["photo"] * len(photos) + ["face"] * len(face_images) + ["fashion"] * len(fm_images)
    n_photo = len(photos)
    sources = list(range(n_photo)) + list(range(n_photo, n_photo + src_faces)) + \
        list(range(n_photo + len(face_images), n_photo + len(face_images) + src_fashion))
    queries, q_src, q_kind, q_st = [], [], [], []
    for s in sources:
        for kind, strengths in STRENGTHS.items():
            for strength in strengths:
                queries.append(apply_edit(images[s], kind, strength, rng))
                q_src.append(s)
                q_kind.append(kind)
                q_st.append(float(strength))
    return Data(names, groups, sources, np.array(q_src), np.array(q_kind), np.array(q_st), queries, images)


def _code_key(*parts: object) -> str:
    """Names the cached catalogue, query vectors and hashes: they depend on the edits and on how thumbnails are made
    (stored at ingest), not on how thumbnails are compared."""
    made = (signals.thumbnail, signals.trim_box, signals.thumbnail_bytes)
    consts = (signals.THUMB,)
    head = inspect.getsource(signals).split("def _dct_matrix")[0]  # the thumbnail-making part, constants included
    text = repr((parts, consts)) + inspect.getsource(edits) + head + "".join(inspect.getsource(f) for f in made)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _file_name(name: str) -> str:
    return name.rsplit(".", 1)[0] + ".png"


def build_catalog(data: Data, key: str) -> Path:
    """The benchmark catalogue, indexed by the library from PNG files (cached under ``CACHE``)."""
    root = CACHE / f"catalog-{key}"
    if (root / "done").exists():
        return root / "cat"
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name, image in zip(data.names, data.images, strict=True):
        image.save(images / _file_name(name))
    with Catalog(root / "cat", encoder="efficientnet-lite0") as cat:
        cat.index_folder(images)
    (root / "done").write_text("ok")
    return root / "cat"


def cached_array(path: Path, make: object) -> np.ndarray:
    if path.exists():
        return np.load(path)
    value = make()  # type: ignore[operator]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
    return value


# -- scoring -------------------------------------------------------------------------------------------------------

def hamming_topk(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarity = 1 - hamming / bits, positions) of the k nearest packed codes, best first."""
    q = np.unpackbits(queries, axis=1).astype(np.float32)
    b = np.unpackbits(base, axis=1).astype(np.float32)
    bits = q.shape[1]
    sim = 1.0 - (q @ (1 - b).T + (1 - q) @ b.T) / bits
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, top, axis=1), top


@dataclass
class Candidates:
    """Candidate pairs of every query: per method name, (scores (q, k), catalogue positions (q, k))."""

    cosine: np.ndarray
    positions: np.ndarray
    signals: dict[str, np.ndarray]  # library signals on the cosine candidates, (q, k) each


def recall_table(found: dict[str, np.ndarray], data: Data, test: np.ndarray) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for method, f in found.items():
        row = {kind: float(f[test & (data.query_kind == kind)].mean()) for kind in STRENGTHS}
        crop20 = test & (data.query_kind == "crop") & (data.query_strength <= 0.2)
        row["crop<=20%"] = float(f[crop20].mean())
        row["all"] = float(f[test].mean())
        out[method] = row
    return out


def evaluate(data: Data, cand: Candidates, hashes: dict[str, tuple[np.ndarray, np.ndarray]], own: object,
             seed: int, k: int) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, list[float]]]:
    """Per method: found (bool per query, each found or not by the threshold fitted on the other half),
    held-out precision (pooled over both halves), thresholds (one per half)."""
    rng = np.random.default_rng(seed + 1)
    first: set[int] = set()
    for group in ("photo", "face", "fashion"):
        members = [s for s in data.sources if data.groups[s] == group]
        first.update(rng.permutation(members)[: len(members) // 2].tolist())
    half = np.array([s in first for s in data.query_source])
    src = data.query_source[:, None]
    labels = cand.positions == src
    sig = {"cosine": cand.cosine, **cand.signals}
    sig = calibration.evidence_signals(sig)  # the evidence signals, with the mirrored hashes
    flat = {n: v.ravel() for n, v in sig.items()}
    q_of = np.repeat(np.arange(len(data.queries)), k).reshape(-1, k)
    found: dict[str, np.ndarray] = {}
    counts: dict[str, list[int]] = {}
    thresholds: dict[str, list[float]] = {}

    def record(name: str, scores: np.ndarray, lab: np.ndarray, threshold: float, test: np.ndarray) -> None:
        hit = (scores >= threshold) & test[:, None]
        found.setdefault(name, np.zeros(len(test), dtype=bool))
        found[name] |= (hit & lab).any(axis=1)
        tp_fp = counts.setdefault(name, [0, 0])
        tp_fp[0] += int((hit & lab).sum())
        tp_fp[1] += int((hit & ~lab).sum())
        thresholds.setdefault(name, []).append(threshold)

    for cal in (half, ~half):
        test = ~cal
        for name, (s, p) in hashes.items():
            lab = p == src
            record(name, s, lab, threshold_for_precision(s[cal].ravel(), lab[cal].ravel(), TARGET), test)
        for name, values in (("cosine", cand.cosine), ("geometric", cand.signals["geometric"])):
            v = np.nan_to_num(values, nan=-1.0)
            record(name, v, labels, threshold_for_precision(v[cal].ravel(), labels[cal].ravel(), TARGET), test)
        # combined: the catalogue's own fitting code on the calibration half
        fitted = fit_calibration({n: v[cal].ravel() for n, v in sig.items()}, labels[cal].ravel(),
                                 np.searchsorted(np.flatnonzero(cal), q_of[cal].ravel()),
                                 list(data.query_kind[cal]), target_precision=TARGET, encoder="bench", k=k, seed=seed)
        record("combined", fitted.evidence(flat).reshape(-1, k), labels, fitted.threshold, test)
    if own is not None:
        every = np.ones(len(data.queries), dtype=bool)
        record("combined (own calibration)", own.evidence(flat).reshape(-1, k), labels,  # type: ignore[attr-defined]
               own.threshold, every)  # type: ignore[attr-defined]
    precision = {n: tp / (tp + fp) if tp + fp else 1.0 for n, (tp, fp) in counts.items()}
    return found, precision, thresholds


# -- the recall benchmark ------------------------------------------------------------------------------------------

def recall_benchmark(args: argparse.Namespace, say: Report) -> None:
    t0 = time.perf_counter()
    data = make_data(args.seed, args.faces, args.fashion, args.src_faces, args.src_fashion)
    key = _code_key(args.seed, args.faces, args.fashion, args.src_faces, args.src_fashion)
    path = build_catalog(data, key)
    enc = get_encoder("efficientnet-lite0")
    qvec = cached_array(CACHE / f"queries-{key}.npy", lambda: enc.encode_pil(data.queries))
    with Catalog(path) as cat:
        index = cat.vector_index(matching.float_encoder(cat).spec)
        cos, hit_keys = index.search(qvec, args.k)
        by_id = {item.id: item.key for item in cat.list(limit=10**9)}
        key_of = np.array([by_id[_file_name(n)] for n in data.names])
        position = {int(kk): p for p, kk in enumerate(key_of.tolist())}
        positions = np.vectorize(lambda h: position.get(int(h), -1))(hit_keys)
        thumbs = matching.thumbs_of(cat, key_of.tolist())
        t1 = time.perf_counter()
        qthumbs = {-(i + 1): signals.thumbnail(im) for i, im in enumerate(data.queries)}
        pairs = np.stack([np.repeat(-(np.arange(len(data.queries)) + 1), args.k), hit_keys.ravel()], axis=1)
        sig = signals.pair_signals({**thumbs, **qthumbs}, pairs)
        pair_s = (time.perf_counter() - t1) / len(pairs)
        own = None
        if args.own_sample:
            own = cat.calibrate_duplicates(sample=args.own_sample, k=args.k, seed=args.seed)
    cand = Candidates(cos.astype(np.float64), positions, {n: v.reshape(-1, args.k) for n, v in sig.items()})
    hashes = {}
    for name in ("phash", "dhash"):
        henc = get_encoder(name)
        base = cached_array(CACHE / f"{name}-base-{key}.npy", lambda h=henc: h.encode_pil(data.images))
        qh = cached_array(CACHE / f"{name}-queries-{key}.npy", lambda h=henc: h.encode_pil(data.queries))
        hashes[name] = hamming_topk(qh, base, args.k)
    found, precision, thresholds = evaluate(data, cand, hashes, own, args.seed, args.k)
    test = np.ones(len(data.queries), dtype=bool)
    table = recall_table(found, data, test)
    say("## Near-duplicate detection: recall at 99% precision per edit type (issue 6)")
    say()
    say(stamp())
    say(f"Catalogue: {len(data.names)} items ({data.groups.count('photo')} sample photographs, "
        f"{data.groups.count('face')} LFW faces, {data.groups.count('fashion')} Fashion-MNIST items), indexed by "
        f"`Catalog.index_folder` with efficientnet-lite0. Queries: {len(data.queries)} edited copies of "
        f"{len(data.sources)} sources (every edit kind at every strength of `lookalike.dedup.edits.STRENGTHS`); "
        f"the other catalogue items are distractors. Candidates: top-{args.k} by cosine (phash/dhash: top-{args.k} "
        f"by their own Hamming distance over the whole catalogue). One threshold per method, fitted over all edit "
        f"types on the copies of a random half of the sources for 99% pair precision and applied to the other "
        f"half, then the halves swapped (every copy is scored by a threshold fitted without it): recall = share "
        f"of copies whose source is found at or above the threshold. "
        f"`combined` = {' + '.join(calibration.SIGNALS)} evidence summed (phash/phash_trim there are computed on "
        f"the item's stored 32x32 thumbnails, whole and border-trimmed) (`lookalike.dedup.calibration`); "
        f"`combined (own calibration)` = the threshold `Catalog.calibrate_duplicates(sample={args.own_sample})` "
        f"fits on generated copies of the catalogue itself, no benchmark labels. See the docstring of "
        f"benchmarks/duplicates.py for the exact protocol.")
    say()
    kinds = [*STRENGTHS, "crop<=20%", "all"]
    say("| method | " + " | ".join(kinds) + " | held-out precision |")
    say("|---" * (len(kinds) + 2) + "|")
    for method, row in table.items():
        best = {kd: max(r[kd] for m, r in table.items() if m != "combined (own calibration)") for kd in kinds}
        cells = [f"**{row[kd]:.2f}**" if row[kd] == best[kd] and method != "combined (own calibration)"
                 else f"{row[kd]:.2f}" for kd in kinds]
        say(f"| {method} | " + " | ".join(cells) + f" | {precision[method]:.3f} |")
    say()
    crop = test & (data.query_kind == "crop")
    say("Crops, recall per strength:")
    say()
    strengths = sorted(set(data.query_strength[crop].tolist()))
    say("| method | " + " | ".join(f"crop {s:.0%}" for s in strengths) + " |")
    say("|---" * (len(strengths) + 1) + "|")
    for method, f in found.items():
        say(f"| {method} | " + " | ".join(f"{f[crop & (data.query_strength == s)].mean():.2f}" for s in strengths)
            + " |")
    say()
    c20 = crop & (data.query_strength <= 0.2)
    missed = c20 & ~found["phash"] & ~found["dhash"]
    say(f"Crops of 20% or less: {int(c20.sum())}; phash and dhash both miss {int(missed.sum())}, of "
        f"which combined finds {int((missed & found['combined']).sum())} "
        f"({(missed & found['combined']).sum() / max(1, missed.sum()):.0%}).")
    say()
    singles = [m for m in table if not m.startswith("combined")]
    worse = [kd for kd in kinds if table["combined"][kd] < max(table[m][kd] for m in singles)]
    say("Combined is at least as good as the best single method on every edit type." if not worse else
        f"Combined is below the best single method on: {', '.join(worse)}.")
    say("Thresholds (per half): " + ", ".join(f"{m} {' / '.join(f'{t:.4g}' for t in ts)}"
                                              for m, ts in thresholds.items())
        + f". Thumbnail signals: {pair_s * 1e3:.2f} ms per pair (one core, shared machine). "
        f"Total run {time.perf_counter() - t0:.0f} s.")
    if args.write:
        write_section(say.text())


# -- the scale benchmark -------------------------------------------------------------------------------------------

def build_scale_catalog(path: Path, n: int, seed: int) -> tuple[int, np.ndarray, float]:
    """The scale catalogue (cached at ``path``): ``base`` Fashion-MNIST items + edited copies. Returns (base,
    the source of each copy, seconds the build took; 0 when it was cached)."""
    from lookalike.datasets import load_fashion_mnist

    feats = Path.home() / ".cache" / "lookalike" / "features"
    n_fm = 70_000
    base = min(n, n_fm)
    rng = np.random.default_rng(seed)
    src = rng.integers(0, base, size=n - base)
    if (path / "done").exists():
        return base, src, 0.0
    vectors = np.concatenate([np.load(feats / "fashion-mnist-train-efficientnet-lite0.npy", mmap_mode="r"),
                              np.load(feats / "fashion-mnist-test-efficientnet-lite0.npy", mmap_mode="r")])
    pixels = np.concatenate([load_fashion_mnist("train").images, load_fashion_mnist("test").images])
    assert len(vectors) == n_fm == len(pixels)
    t_build = time.perf_counter()
    if path.exists():
        import shutil

        shutil.rmtree(path)
    with Catalog(path, encoder="efficientnet-lite0"):
        pass  # the schema and the encoder; the rows go in through the store's own transactions below
    store = Store(path, create=False)
    num, dim = store.encoders()[0].num, store.encoders()[0].dim
    assert vectors.shape[1] == dim, (vectors.shape, dim)
    chunk = 5000
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        items, vecs, thumbs = [], [], []
        for i in range(start, stop):
            if i < base:
                image = Image.fromarray(pixels[i])
                vec = np.asarray(vectors[i], dtype=np.float32)
                name = f"fm-{i:05d}"
            else:
                s = int(src[i - base])
                kind = edits.EDIT_KINDS[int(rng.integers(len(edits.EDIT_KINDS)))]
                image = apply_edit(Image.fromarray(pixels[s]).resize((56, 56)), kind,
                                   STRENGTHS[kind][0], rng)
                noise = rng.normal(size=dim).astype(np.float32)
                vs = np.asarray(vectors[s], dtype=np.float32)
                vec = vs + 0.35 * np.linalg.norm(vs) / np.sqrt(dim) * noise
                name = f"copy-{i:06d}-of-{s:05d}"
            sha = hashlib.sha256(name.encode()).hexdigest()
            items.append((name, sha, image.width, image.height))
            vecs.append(vec / np.linalg.norm(vec))
            thumbs.append((signals.thumbnail_bytes(image), signals.colour_bytes(image)))
        with store.transaction() as tx:
            for (name, sha, w, h), vec, (th, colour) in zip(items, vecs, thumbs, strict=True):
                key = tx.insert_item(name, NewItem(None, sha, w, h), "{}")
                tx.put_vectors(num, [key], np.asarray(vec, dtype=np.float32)[None, :])
                tx.put_features(matching.THUMB_FEATURE, {key: th})
                tx.put_features(matching.COLOUR_FEATURE, {key: colour})
    store.close()
    with Catalog(path) as cat:
        _borrow_calibration(cat)  # the items have no files to edit: see _borrow_calibration
    (path / "done").write_text("ok\n")
    return base, src, time.perf_counter() - t_build


def scale_benchmark(args: argparse.Namespace, say: Report) -> None:
    n = args.scale
    path = CACHE / f"scale-{n}-seed{args.seed}" / "cat"
    base, src, build_s = build_scale_catalog(path, n, args.seed)
    copies = n - base
    # dedup in a fresh process, so that its peak RSS is dedup's own, not this build's
    child = [sys.executable, __file__, "--dedup-only", str(path), "--k", str(args.k)]
    out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    in_group = set(result["in_group"])
    seconds, rss = result["seconds"], result["peak_rss_kib"]
    copies_found = sum(1 for i in range(base, n) if f"copy-{i:06d}-of-{int(src[i - base]):05d}" in in_group
                       and f"fm-{int(src[i - base]):05d}" in in_group)
    rec = result["recall"]
    say(f"## Dedup of a {n:,}-item catalogue: time and peak memory (issue 6)")
    say()
    say(stamp())
    say(f"{base:,} Fashion-MNIST items (cached efficientnet-lite0 vectors) + {copies:,} edited copies (thumbnail of a "
        f"real edit, vector = source vector + Gaussian noise), written straight into the catalogue's tables "
        f"(not timed below). `Catalog.dedup(k={args.k})` in a fresh process (time and peak RSS are its own, "
        f"opening the catalogue and loading the index included): {result['search']}"
        f" (the projection fitted on 8,192 of the vectors), "
        f"thumbnail signals of the edges above the calibrated cosine floor, the geometric check where the other "
        f"signals leave the verdict open, union-find. The vectors are read in place from the index (no copy); no "
        f"N x N matrix (N x N float32 would be {n * n * 4 / 2**30:.0f} GiB). Phases: "
        + ", ".join(f"{name} {sec:.0f} s" for name, sec in result["phases"].items()) + ".")
    say()
    say("| items | kNN edges checked | geometric checks | groups | copies grouped with their source | "
        "seconds | peak RSS of the dedup process |")
    say("|---|---|---|---|---|---|---|")
    say(f"| {n:,} | {result['pairs_checked']:,} | {result['geometric']:,} | {result['groups']:,} | "
        f"{copies_found:,} / {copies:,} | {seconds:.0f} | {rss / 2**10:.0f} MiB |")
    say()
    say(f"Recall of the fast edge search against the exact kNN graph, on {rec['queries']:,} random items (their "
        f"top-{args.k} by exact cosine through the index, {rec['exact_s']:.0f} s, against the same items' edges "
        f"from the projected search + exact rescoring): {rec['all']:.4f} of all top-{args.k} edges, "
        f"{rec['above_floor']:.4f} of the {rec['n_above_floor']:,} edges above the cosine floor "
        f"({rec['floor']:.3f}) that the verdicts look at"
        + (f"; every edge missed there scored below {rec['max_missed']:.3f} cosine." if rec['max_missed'] is not None
           else "."))
    if args.write:
        write_section(say.text())


def _borrow_calibration(cat: Catalog) -> None:
    """Store the calibration of the recall benchmark's catalogue (1,500 of its 1,724 items are Fashion-MNIST):
    calibrating needs image files to edit, and the scale catalogue's rows have none."""
    newest_first = sorted(CACHE.glob("catalog-*/cat"), key=lambda p: (p / "catalog.sqlite").stat().st_mtime
                          if (p / "catalog.sqlite").exists() else 0.0, reverse=True)
    for path in newest_first:
        with Catalog(path) as other:
            cal = other.duplicate_calibration
        if cal is not None and cal.format == calibration.FORMAT:
            cal.encoder = cat.encoder.spec
            cat.put_setting(matching.META_KEY, cal.to_json())
            return
    raise SystemExit("run the recall benchmark first: the scale run borrows the calibration it stores")


def dedup_only(path: str, k: int, recall_queries: int = 2000) -> None:
    """Child process of the scale run: dedup one catalogue, print time, peak RSS, the grouped ids and the recall
    of the fast edge search on a sample as JSON."""
    t = time.perf_counter()
    phases: dict[str, float] = {}
    with Catalog(path) as cat:
        view = cat.vector_index(matching.float_encoder(cat).spec)
        len(view)  # loads the index
        phases["loading the index"] = time.perf_counter() - t
        report = cat.dedup(k=k)
        seconds = time.perf_counter() - t
        phases.update(report.timings)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # recall of the fast edges on a sample of queries (after the timing: it is not part of dedup)
        keys = view.keys()
        cal = cat.duplicate_calibration
        assert cal is not None
        floor = cosine_floor(cal)
        which = np.sort(np.random.default_rng(1).choice(len(keys), size=min(recall_queries, len(keys)),
                                                         replace=False))
        t1 = time.perf_counter()
        exact, exact_cos = exact_edges(view, keys, k, min_score=-1.0, queries=which)
        exact_s = time.perf_counter() - t1
        fast, _ = approximate_edges(view, keys, k, 4 * (k + 1), min_score=-1.0, queries=which)
    found = {tuple(p) for p in fast.tolist()}
    hit = np.array([tuple(p) in found for p in exact.tolist()], dtype=bool)
    above = exact_cos >= floor
    recall = {"queries": len(which), "all": float(hit.mean()), "above_floor": float(hit[above].mean()),
              "n_above_floor": int(above.sum()), "floor": floor, "exact_s": exact_s,
              "max_missed": float(exact_cos[~hit].max()) if (~hit).any() else None}
    print(json.dumps({"seconds": seconds, "peak_rss_kib": rss, "search": report.search, "phases": phases,
                      "pairs_checked": report.pairs_checked, "groups": len(report.groups),
                      "geometric": report.geometric_checks, "recall": recall,
                      "in_group": [i.id for g in report.groups for i in g.items]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--fashion", type=int, default=1500)
    parser.add_argument("--src-faces", type=int, default=20)
    parser.add_argument("--src-fashion", type=int, default=60)
    parser.add_argument("--own-sample", type=int, default=300, help="sample of Catalog.calibrate_duplicates (0: skip)")
    parser.add_argument("--scale", type=int, default=0, help="run the dedup scale benchmark with this many items")
    parser.add_argument("--dedup-only", metavar="CATALOG", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of BENCHMARKS.md")
    args = parser.parse_args()
    say = Report()
    if args.dedup_only:
        dedup_only(args.dedup_only, args.k)
    elif args.scale:
        scale_benchmark(args, say)
    else:
        recall_benchmark(args, say)


if __name__ == "__main__":
    sys.exit(main())
