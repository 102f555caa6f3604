"""Binary codes learned on the catalogue's own vectors: fit a hasher, store it, search by Hamming, re-rank.

``index DIR --hash itq --bits 64`` fits the hasher on every float vector of the catalogue, stores its state (arrays
only, .npz bytes, no pickle) beside the vectors, writes the codes of every item, and makes the codes the default
search. Items added later are hashed with the stored fit; ``--refit`` fits again on what the catalogue holds then.
With ``rerank=N`` a search takes the N best candidates by the codes and orders them by exact cosine on the float
vectors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ..encoders import Encoder
from ..encoders.hashed import HashedEncoder, hashed_spec, state_from_bytes, state_to_bytes
from ..errors import CatalogError, InvalidParameterError
from ..index import BinaryFlatIndex

if TYPE_CHECKING:
    from .catalog import Catalog


def load_hashed(base: Encoder, name: str, blob: bytes) -> HashedEncoder:
    from ..hashing import Hasher

    return HashedEncoder(base, Hasher.from_state(state_from_bytes(blob)), name)


def fit_hasher(
    catalog: Catalog, name: str, n_bits: int, *, encoder: str | None = None, random_state: int = 0
) -> HashedEncoder:
    """Fit ``name`` (``"itq"``, ``"lsh"``, …) with ``n_bits`` on the float vectors of ``encoder`` (default: the
    catalogue's first float encoder), store it, hash every item, and make the codes the default search.

    Runs inside one write transaction, so the codes cover exactly the items committed at that moment.
    """
    from ..hashing import get_hasher

    source_num, source = _float_source(catalog, encoder)
    hasher = get_hasher(name, n_bits=n_bits, random_state=random_state)
    spec = hashed_spec(source.spec, name, hasher.n_bits)
    store = catalog._store
    with store.write() as db:
        rows = db.execute("SELECT key, vec FROM vectors WHERE encoder = ? ORDER BY key", (source_num,)).fetchall()
        if len(rows) < 2:
            raise CatalogError(f"fitting {name} needs at least 2 items with {source.spec} vectors; found {len(rows)}")
        keys = np.array([r[0] for r in rows], dtype=np.int64)
        floats = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), source.dim)
        hasher.fit(floats)
        hashed = HashedEncoder(source, hasher, name)
        codes = hashed.codes_of(floats)
        found = db.execute("SELECT num FROM encoders WHERE spec = ?", (spec,)).fetchone()
        num = found[0] if found else db.execute(
            "INSERT INTO encoders (spec, kind, dim) VALUES (?, 'binary', ?)", (spec, hashed.dim)).lastrowid
        db.execute("INSERT OR REPLACE INTO hashers (num, source, name, state, fitted) VALUES (?, ?, ?, ?, ?)",
                   (num, source_num, name, state_to_bytes(hasher.to_state()), time.time()))
        db.execute("DELETE FROM vectors WHERE encoder = ?", (num,))
        db.executemany("INSERT INTO vectors (encoder, key, vec) VALUES (?, ?, ?)",
                       [(num, int(k), codes[i].tobytes()) for i, k in enumerate(keys)])
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('search_encoder', ?)", (str(num),))
    return hashed


def _float_source(catalog: Catalog, spec: str | None) -> tuple[int, Encoder]:
    pairs = [(n, e) for n, e in catalog._encoders if e.kind == "float" and not isinstance(e, HashedEncoder)]
    if spec is not None:
        pairs = [catalog._find_encoder(pairs, spec)] if pairs else []
    if not pairs:
        raise InvalidParameterError(f"catalogue {catalog.path} has no float vectors to fit a hasher on")
    return pairs[0]


def rerank(
    catalog: Catalog, hashed_num: int, codes: np.ndarray, floats: np.ndarray, k: int, depth: int,
    keys: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, Encoder]:
    """The ``depth`` best codes by asymmetric score, then exact cosine top-``k`` among them by the float vectors.

    Candidates are ranked by the query's real-valued projection against the stored codes
    (:meth:`BinaryFlatIndex.search_asymmetric`), not by Hamming distance between binarised codes: at 64 bits on
    10,000 Fashion-MNIST items the exact top 10 lies inside the best 100 candidates for 60% of queries this way,
    against 32% by Hamming (BENCHMARKS.md, "Learned codes vs exact search"). ``codes`` is used when the hasher
    cannot project (never, for the built-in hashers).

    Returns (scores (nq, k), keys (nq, k) padded with -1, the float encoder that scored them).
    """
    hashed = dict(catalog._encoders)[hashed_num]
    assert isinstance(hashed, HashedEncoder)
    base_num = next(n for n, e in catalog._encoders if e.spec == hashed.base.spec and n != hashed_num)
    index = catalog._index(hashed_num)
    assert isinstance(index, BinaryFlatIndex)
    project = getattr(hashed.hasher, "project", None)
    if project is not None:
        _score, candidates = index.search_asymmetric(project(floats), max(depth, k), keys=keys)
    else:
        _dist, candidates = index.search(codes, max(depth, k), keys=keys)
    float_index = catalog._index(base_num)
    scores = np.full((len(codes), k), -np.inf, dtype=np.float32)
    found = np.full((len(codes), k), -1, dtype=np.int64)
    for i, row in enumerate(candidates):
        pool = row[row >= 0]
        if len(pool):
            s, f = float_index.search(floats[i : i + 1], k, keys=pool)
            scores[i], found[i] = s[0], f[0]
    return scores, found, hashed.base

