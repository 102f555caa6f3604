"""Binary codes learned on the catalogue's own vectors: fit a hasher, store it, hash every item.

``index DIR --hash itq --bits 64`` fits the hasher on the catalogue's float vectors (all of them, or a seeded sample
of a large catalogue), stores its state (arrays only, .npz bytes, no pickle) beside the vectors, writes the codes of
every item, and makes the codes the default search (re-ranked by exact cosine: ``search.rerank`` candidates). Items
added later are hashed with the stored fit; ``--refit`` fits again on what the catalogue holds then. A catalogue
past :data:`CODES_AT` items does this by itself (64-bit ITQ; :meth:`Catalog.learn_codes_if_large`). Re-ranking
composes a :class:`~lookalike.index.RefineIndex` around the codes and the candidates' float vectors, read from the
store (:meth:`Engine.reranker <lookalike.catalog._engine.Engine.reranker>`). With the codes of a wide float encoder
comes a *sketch* (:class:`~lookalike.encoders.hashed.SketchEncoder`: 128 floats an item, a projection fitted on
the same sample), held in memory to pick the few candidates worth reading (see :data:`SKETCH_FROM`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ..encoders.hashed import SKETCH, DerivedEncoder, HashedEncoder, SketchEncoder, hashed_spec, state_to_bytes
from ..errors import CatalogError, LookalikeError
from ..index import projection
from ._encoders import EncoderSet
from .store import Store

# Past this many items a catalogue learns codes by itself (Catalog.learn_codes_if_large; setting search.codes_at).
# Measured by benchmarks/catalog_scale.py on this 2-core machine: at 100k items the exact float search of one query
# takes ~28 ms (p50) with 0.6 GB of vectors in memory and 2.4 s to load them; the codes + re-ranking 13 ms with
# 0.8 MB of codes (at 1M: 240 ms, 5 GB, 22 s against 27 ms).
CODES_AT = 100_000
FIT_SAMPLE = 65_536  # vectors a hasher is fitted on, at most (a seeded sample of a larger catalogue)
# The sketch fitted with the codes of a float encoder of at least SKETCH_FROM dimensions (efficientnet-lite0's 1280;
# below, the float vectors are small enough to read): PCA-SKETCH_DIMS of a seeded SKETCH_SAMPLE of the fit's sample.
# Chosen on the validation split (benchmarks/refine_stages.py: Fashion-MNIST training vectors, never the test split):
# 1,000 candidates by the codes, the best 80 by the sketch, exact on those 80: recall@10 0.995 against 0.967 for
# 400 read without a sketch.
SKETCH_FROM, SKETCH_DIMS, SKETCH_SAMPLE = 512, 128, 8192
_PAGE = 8192  # vectors hashed per step: memory stays bounded whatever the catalogue holds


def codes_threshold(value: str | None) -> int | None:
    """The item count a stored ``search.codes_at`` setting names: None for ``off``, the default when unset or
    unreadable."""
    if value is not None and value.strip().lower() in ("off", "never", "0"):
        return None
    try:
        number = int(value) if value is not None else CODES_AT
    except ValueError:
        return CODES_AT
    return number if number >= 2 else CODES_AT  # a stored negative or 1 is unreadable: the default


def wants_codes(encoders: EncoderSet, read_only: bool, codes_at: str | None, count: Callable[[], int]) -> bool:
    """Whether a catalogue should learn codes now: writable, no learned codes yet, float vectors to learn from, and
    at least the ``search.codes_at`` setting's count of items (default :data:`CODES_AT`). Searching by codes
    re-ranked from the store then neither scans nor holds every float vector; exact float search stays one
    argument away (``encoder=`` the float encoder)."""
    if read_only or any(isinstance(e, HashedEncoder) for _, e in encoders):
        return False
    threshold = codes_threshold(codes_at)
    floats = encoders.floats()
    # ITQ-64 needs at least 64 dimensions to learn 64 bits from (a tiny encoder such as pixels:size=4 has 16)
    return threshold is not None and bool(floats) and floats[0][1].dim >= 64 and count() >= threshold


def learn_or_warn(learn: Callable[[], object], path: object) -> None:
    """Run ``learn`` after a batch was committed: a fit that fails is a warning, not an error that would lose the
    batch's report (the items are in the catalogue either way)."""
    try:
        learn()
    except LookalikeError as err:
        warnings.warn(f"{path}: could not learn codes for fast search ({err})", stacklevel=3)


def fit_hasher(store: Store, encoders: EncoderSet, name: str, n_bits: int, *, encoder: str | None = None,
               random_state: int = 0) -> HashedEncoder:
    """Fit ``name`` (``"itq"``, ``"lsh"``, …; options as in ``"adapt:k=60"``) with ``n_bits`` on the float vectors
    of ``encoder`` (default: the catalogue's first float encoder), store it under the canonical spelling of the
    name and options (:func:`~lookalike.hashing.hasher_spec`), hash every item, and make the codes the default
    search.

    Fits on every vector, or on a seeded sample of :data:`FIT_SAMPLE` of a larger catalogue (ITQ's rotation and
    PCA need no more: the fit on 65k of 1M vectors is what ``benchmarks/catalog_scale.py`` measures), then hashes
    the items a page at a time. Runs inside one write transaction, so the codes cover exactly the items committed
    at that moment.
    """
    from ..hashing import get_hasher, hasher_spec, parse_hasher

    source_num, source = encoders.float_source(encoder)
    method, options = parse_hasher(name)
    hasher = get_hasher(method, n_bits=n_bits, random_state=random_state, **options)
    name = hasher_spec(method, options)  # the fit is stored under the canonical spelling
    spec = hashed_spec(source.spec, name, hasher.n_bits)
    with store.transaction() as tx:
        keys = tx.vector_keys(source_num)
        if len(keys) < 2:
            raise CatalogError(f"fitting {name} needs at least 2 items with {source.spec} vectors; found {len(keys)}")
        if len(keys) > FIT_SAMPLE:
            keys = np.sort(np.random.default_rng(random_state).choice(keys, FIT_SAMPLE, replace=False))
        sample_keys, blobs = tx.vectors_of(source_num, keys.tolist())
        sample = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(sample_keys), source.dim)
        del blobs
        hasher.fit(sample)
        hashed = HashedEncoder(source, hasher, name)
        derived: list[tuple[int, DerivedEncoder]] = [(tx.ensure_encoder(spec, "binary", hashed.dim), hashed)]
        tx.put_hasher(derived[0][0], source_num, name, state_to_bytes(hasher.to_state()))
        if source.dim >= SKETCH_FROM:
            rows = np.random.default_rng(random_state).permutation(len(sample))[:SKETCH_SAMPLE]
            sketch = SketchEncoder(source, projection(sample[np.sort(rows)], SKETCH_DIMS))
            derived.append((tx.ensure_encoder(sketch.spec, "float", sketch.dim), sketch))
            tx.put_hasher(derived[1][0], source_num, SKETCH, state_to_bytes({"basis": sketch.basis}))
        for num, _ in derived:
            tx.delete_vectors(num)
        after = -1
        while True:
            page, blobs = tx.vectors_after(source_num, after, _PAGE)
            if not len(page):
                break
            floats = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(page), source.dim)
            for num, enc in derived:
                tx.put_vectors(num, page.tolist(), enc.derive(floats))
            after = int(page[-1])
        tx.set_meta("search_encoder", str(derived[0][0]))
    return hashed
