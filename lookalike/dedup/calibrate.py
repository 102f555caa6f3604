"""Calibration of the near-duplicate threshold on the catalogue's own items: edited copies of a sample (true
pairs) against their nearest other items (distractors), with re-listings already in the catalogue left out."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import DuplicateDetectionError, ImageError
from ..images import load_image
from ..validation import check_int
from .calibration import Calibration, check_precision, evidence_against, evidence_signals, fit_calibration, tables_of
from .edits import EDIT_KINDS, STRENGTHS, apply_edit
from .matching import META_KEY, colours_of, float_encoder, thumbs_of
from .signals import colour_signature, pair_signals, thumbnail

if TYPE_CHECKING:
    from ..catalog import Catalog

MIN_ITEMS = 20
_EDIT_SIDE = 512  # sampled images are edited at most this large (as re-listed photos are)


def calibrate(catalog: Catalog, *, target_precision: float = 0.99, sample: int = 200, k: int = 10,
              seed: int = 0) -> Calibration:
    """Fit and store the near-duplicate threshold on edited copies of a sample of the catalogue's own items."""
    target_precision = check_precision(target_precision)
    sample, k = check_int("sample", sample, 10, 100_000), check_int("k", k, 1, 1000)
    enc = float_encoder(catalog)
    n_items = catalog.count()
    if n_items < MIN_ITEMS:
        raise DuplicateDetectionError(f"calibration needs at least {MIN_ITEMS} items (distractors for the edited "
                                      f"copies); the catalogue has {n_items}")
    rng = np.random.default_rng(seed)
    rows = catalog.items_with_files()
    sources: list[int] = []
    copies: list[Image.Image] = []
    kinds: list[str] = []
    for i in rng.permutation(len(rows)).tolist():
        if len(copies) == sample:
            break
        key, path = rows[i].key, rows[i].path
        try:
            image = load_image(path, limits=catalog.limits, draft=(_EDIT_SIDE, _EDIT_SIDE)).image
        except ImageError:
            continue
        image.thumbnail((_EDIT_SIDE, _EDIT_SIDE))
        kind = EDIT_KINDS[len(copies) % len(EDIT_KINDS)]
        strengths = STRENGTHS[kind]
        copies.append(apply_edit(image, kind, strengths[int(rng.integers(len(strengths)))], rng))
        sources.append(int(key))
        kinds.append(kind)
    if len(copies) < 10:
        raise DuplicateDetectionError(f"calibration needs at least 10 readable image files; found {len(copies)}")
    vectors = enc.encode_pil(copies)
    depth = min(k, n_items)
    view = catalog.vector_index(enc.spec)
    with catalog.lock:
        scores, hits = view.search(vectors, depth)
        wanted = sorted(set(hits[hits >= 0].tolist()) | set(sources))
        found, present = view.vectors(wanted)
        vector_of = {key: found[i] for i, key in enumerate(wanted) if present[i]}
    sha = {item.key: item.sha256 for item in rows}
    query_of = np.repeat(np.arange(len(copies)), depth)
    hit_keys = hits.reshape(-1)
    valid = hit_keys >= 0
    labels = np.array([h == sources[q] or (h in sha and sha[h] == sha[sources[q]])
                       for q, h in zip(query_of.tolist(), hit_keys.tolist(), strict=True)])
    involved = sorted(set(hit_keys[valid].tolist()) | set(sources))
    thumbs, colours = thumbs_of(catalog, involved), colours_of(catalog, involved)
    for i, image in enumerate(copies):
        thumbs[-(i + 1)] = thumbnail(image)
        colours[-(i + 1)] = colour_signature(image)
    query_of, hit_keys, labels = query_of[valid], hit_keys[valid], labels[valid]
    pairs = np.stack([-(query_of + 1), hit_keys], axis=1)
    signals = {"cosine": scores.reshape(-1)[valid].astype(np.float64), **pair_signals(thumbs, pairs, None, colours)}
    relisted = _relistings(thumbs, vector_of, sources, query_of, hit_keys, labels, signals)
    keep = ~relisted
    cal = fit_calibration({n: v[keep] for n, v in signals.items()}, labels[keep], query_of[keep], kinds,
                          target_precision=target_precision, encoder=enc.spec, k=k, seed=seed, created=time.time())
    if relisted.any():
        cal.notes.append(f"{int(relisted.sum())} distractor pair(s) left out: the candidate looks like a duplicate "
                         "of the copy's source already in the catalogue")
    catalog.put_setting(META_KEY, cal.to_json())
    return cal


def _relistings(thumbs: Mapping[int, np.ndarray], vector_of: Mapping[int, np.ndarray], sources: list[int],
                query_of: np.ndarray, hit_keys: np.ndarray, labels: np.ndarray, signals: dict[str, np.ndarray]
                ) -> np.ndarray:
    """The distractor pairs (edited copy c of source s, candidate h) that calibration leaves out: those where h is
    most likely a duplicate of s the catalogue already holds (a re-listing), which would count as a non-duplicate
    scoring like a true copy and push the threshold past the catalogue's real duplicates.

    Left out when the pair (s, h), by the summed evidence against every distractor, is (1) at least as strong as
    the pair (c, h): h resembles the copy no more than it resembles the source, so (c, h) adds nothing to what
    (s, h) says, and that pair is what dedup itself judges; and (2) at least as strong as the lower quartile of the
    copies' own matches to their sources: by the calibration's own examples, s and h look like a duplicate pair.
    A different item that meets both is one the verdicts could not tell from a re-listing anyway; (2) keeps the
    tables of the distractors almost whole (on benchmarks/duplicates.py's catalogue: 21 of 2,700 pairs left out).
    """
    cand = ~labels
    if not labels.any() or not cand.any():
        return np.zeros_like(labels)
    signals = evidence_signals(signals)
    tables = tables_of(signals, cand)
    copy_ev = evidence_against(tables, signals)
    bar = np.maximum(copy_ev, np.quantile(copy_ev[labels], 0.25))
    src = np.asarray(sources, dtype=np.int64)[query_of]
    src_pairs = np.stack([src, hit_keys], axis=1)
    cosine = np.array([float(np.dot(vector_of[s], vector_of[h])) if c and s in vector_of and h in vector_of
                       else np.nan for s, h, c in zip(src.tolist(), hit_keys.tolist(), cand, strict=True)])
    theirs = {"cosine": cosine, **pair_signals(thumbs, src_pairs, np.zeros(len(src_pairs), dtype=bool))}
    most = float(-np.log10(0.5 / (len(tables["geometric"]) + 1.0)) + 0.01)  # the most geometric evidence
    open_ = cand & (evidence_against(tables, theirs) + most >= bar)  # the geometric check only where it could decide
    theirs["geometric"] = pair_signals(thumbs, src_pairs, open_)["geometric"]
    return open_ & (evidence_against(tables, theirs) >= bar)
