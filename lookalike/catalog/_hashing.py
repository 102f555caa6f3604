"""Binary codes learned on the catalogue's own vectors: fit a hasher, store it, hash every item.

``index DIR --hash itq --bits 64`` fits the hasher on every float vector of the catalogue, stores its state (arrays
only, .npz bytes, no pickle) beside the vectors, writes the codes of every item, and makes the codes the default
search. Items added later are hashed with the stored fit; ``--refit`` fits again on what the catalogue holds then.
Re-ranking (``rerank=N``) composes a :class:`~lookalike.index.RefineIndex` around the codes and the float vectors
(:meth:`Engine.reranker <lookalike.catalog._engine.Engine.reranker>`).
"""

from __future__ import annotations

import numpy as np

from ..encoders.hashed import HashedEncoder, hashed_spec, state_to_bytes
from ..errors import CatalogError
from ._encoders import EncoderSet
from .store import Store


def fit_hasher(store: Store, encoders: EncoderSet, name: str, n_bits: int, *, encoder: str | None = None,
               random_state: int = 0) -> HashedEncoder:
    """Fit ``name`` (``"itq"``, ``"lsh"``, …) with ``n_bits`` on the float vectors of ``encoder`` (default: the
    catalogue's first float encoder), store it, hash every item, and make the codes the default search.

    Runs inside one write transaction, so the codes cover exactly the items committed at that moment.
    """
    from ..hashing import get_hasher

    source_num, source = encoders.float_source(encoder)
    hasher = get_hasher(name, n_bits=n_bits, random_state=random_state)
    spec = hashed_spec(source.spec, name, hasher.n_bits)
    with store.transaction() as tx:
        keys, blobs = tx.read_vectors(source_num)
        if len(keys) < 2:
            raise CatalogError(f"fitting {name} needs at least 2 items with {source.spec} vectors; found {len(keys)}")
        floats = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(keys), source.dim)
        hasher.fit(floats)
        hashed = HashedEncoder(source, hasher, name)
        num = tx.ensure_encoder(spec, "binary", hashed.dim)
        tx.put_hasher(num, source_num, name, state_to_bytes(hasher.to_state()))
        tx.delete_vectors(num)
        tx.put_vectors(num, keys.tolist(), hashed.codes_of(floats))
        tx.set_meta("search_encoder", str(num))
    return hashed
