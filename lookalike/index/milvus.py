"""Milvus behind the index protocol (``"Milvus(URI)"``): the catalogue's index stage on an existing distributed
engine -- Milvus Lite (embedded, a local file) in tests and on a laptop, a Milvus server or cluster in production.

One collection holds one encoder's vectors: an ``INT64`` primary key (the catalogue's item key) and one vector
field, ``FLOAT_VECTOR`` with ``COSINE`` (or ``IP``) for float encoders and ``BINARY_VECTOR`` with ``HAMMING`` for
codes. ``add`` is Milvus' upsert, ``remove`` its delete, a key filter (the catalogue's metadata filters resolve to
keys in SQLite) an ``key in [...]`` expression; scores follow the protocol (cosine similarity, or
``1 - hamming / bits``), and equal scores are put in ascending key order within what Milvus returns.

URIs (:func:`parse_uri`): ``milvus:///abs/path.db`` or ``milvus://./rel.db`` is Milvus Lite on that file,
``milvus://host:19530`` (``milvuss://`` for TLS) a server; ``?token=...&db=...`` are passed through, and the
options below may ride in the query too (:func:`uri_options`: ``?index_type=HNSW&consistency=Bounded``). Options:
``collection`` (name, or a prefix the catalogue extends per encoder), ``index_type`` (default ``FLAT`` /
``BIN_FLAT``: exact, so results equal the local index; ``HNSW``, ``IVF_FLAT``, ... on a server), ``index_params``,
``search_params`` (e.g. ``{"nprobe": 16}``, ``{"ef": 64}``), ``milvus_metric`` (``COSINE`` or ``IP`` for
floats), ``consistency`` (default ``Strong``: a search sees every acknowledged write; ``Bounded`` / ``Session`` /
``Eventually`` trade that for speed), ``batch`` (rows an upsert, at most 1 MiB of vectors) and ``timeout``
(seconds a call may take, retries included; default 30).

Limits: Milvus answers at most 16,384 results a query; a larger ``k`` over more vectors than that is answered
exactly here from every vector (slow, rare). A key filter of more than ``FILTER_CHUNK`` keys is searched in chunks
and merged. Milvus Lite needs ``milvus-lite`` 2.5.x for binary vectors (3.x refuses them); the project pins it.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from lookalike.errors import IndexBackendError, InvalidParameterError, ItemNotFoundError
from lookalike.index._checks import check_k, check_keys, check_matrix, check_new_keys, in_key_order
from lookalike.index.protocol import PAD_KEY, Metric, Neighbors
from lookalike.validation import Choice, Integer, check

__all__ = ["MilvusIndex", "parse_uri"]

_OWNER = "MilvusIndex"
TOPK_LIMIT = 16_384  # Milvus' largest limit a search
FILTER_CHUNK = 16_384  # keys in one `key in [...]` expression
CALL_BYTES = 1 << 20  # vector bytes in one upsert: past ~4 MB a call, Milvus Lite 2.5 took 20x longer a row
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_CONSISTENCY = ("Strong", "Bounded", "Session", "Eventually")
_LITE_LOCK = threading.Lock()


_CONNECTION = (("token", "token"), ("db", "db_name"))
_OPTIONS = ("collection", "index_type", "index_params", "search_params", "metric", "consistency", "timeout", "batch")


def uri_options(uri: str) -> dict[str, Any]:
    """The index options a URI's query carries (``?index_type=HNSW&index_params={"M":16}&consistency=Bounded``,
    ``metric=IP``, ``timeout=60``, ``batch=5000``), as :class:`MilvusIndex` keywords."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))
    out: dict[str, Any] = {}
    for name in _OPTIONS:
        if name not in query:
            continue
        value: Any = query[name]
        if name in ("index_params", "search_params"):
            try:
                value = json.loads(value)
            except ValueError as err:
                raise InvalidParameterError(f"Milvus URI {uri!r}: {name} must be a JSON object ({err})") from err
            if not isinstance(value, dict):
                raise InvalidParameterError(f"Milvus URI {uri!r}: {name} must be a JSON object")
        elif name in ("timeout", "batch"):
            if not value.isdigit():
                raise InvalidParameterError(f"Milvus URI {uri!r}: {name} must be a whole number, not {value!r}")
            value = int(value)
        out["milvus_metric" if name == "metric" else name] = value
    return out


def parse_uri(uri: str) -> dict[str, str]:
    """pymilvus connection arguments of a ``milvus://`` URI: ``{"uri": ...}`` plus ``token`` / ``db_name`` where
    given. A Lite URI's path must end in ``.db``. The index options in the query are checked
    (:func:`uri_options`), not returned."""
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise InvalidParameterError(f"A Milvus URI must be a non-empty string. Got {uri!r}.")
    parts = urllib.parse.urlsplit(uri)
    query = dict(urllib.parse.parse_qsl(parts.query))
    extra = {key: query.pop(name) for name, key in _CONNECTION if name in query}
    uri_options(uri)
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise InvalidParameterError(f"Milvus URI {uri!r}: unknown parameters {unknown} (token, db, "
                                    f"{', '.join(_OPTIONS)})")
    if parts.scheme not in ("milvus", "milvuss"):
        raise InvalidParameterError(f"A Milvus URI starts with milvus:// (Milvus Lite: milvus:///path/to/file.db, "
                                    f"a server: milvus://host:19530). Got {uri!r}.")
    if parts.netloc in ("", ".", "..") or parts.netloc.endswith(".db"):  # milvus:///abs.db, milvus://./rel.db
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path.endswith(".db") or path.endswith("/.db"):
            raise InvalidParameterError(f"Milvus Lite keeps its data in a file ending in .db. Got {uri!r}.")
        return {"uri": path, **extra}
    if parts.path not in ("", "/"):
        raise InvalidParameterError(f"Milvus URI {uri!r}: a server URI is milvus://host:port (no path).")
    scheme = "https" if parts.scheme == "milvuss" else "http"
    return {"uri": f"{scheme}://{parts.netloc}", **extra}


def _key_filter(keys: np.ndarray) -> str:
    """A Milvus expression selecting ``keys`` (int64 values only: nothing a user typed reaches it). Milvus Lite
    2.5 has no expression templates, so the list is written out."""
    return f"key in [{','.join(map(str, keys.astype(np.int64).tolist()))}]"


def is_lite(uri: str) -> bool:
    return not parse_uri(uri)["uri"].startswith(("http://", "https://"))


def _client(args: dict[str, str]) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise IndexBackendError(f"the Milvus backend needs pymilvus (pip install pymilvus milvus-lite): {err}") from err
    try:
        with _LITE_LOCK:  # Milvus Lite starts its server process on the first client of a file
            if not args["uri"].startswith(("http://", "https://")):
                with warnings.catch_warnings():  # milvus-lite 2.5 imports setuptools' deprecated pkg_resources
                    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
                    import milvus_lite  # noqa: F401
            return MilvusClient(**args)
    except Exception as err:  # noqa: BLE001 - pymilvus raises MilvusException and plain connection errors
        raise IndexBackendError(f"cannot connect to Milvus at {args['uri']}: {err}") from err


class MilvusIndex:
    """See the module docstring. ``dim``: dimensions (cosine) or bits (hamming, a multiple of 8)."""

    def __init__(self, dim: int, metric: Metric = "cosine", *, uri: str, collection: str = "lookalike",
                 index_type: str | None = None, index_params: dict[str, Any] | None = None,
                 milvus_metric: str | None = None, consistency: str = "Strong", batch: int = 1000,
                 timeout: int = 30, search_params: dict[str, Any] | None = None, client: Any = None) -> None:
        check("metric", metric, Choice(("cosine", "hamming")), owner=_OWNER)
        check("dim", dim, Integer(1, 32_768, multiple_of=8) if metric == "hamming" else Integer(1, 32_768),
              owner=_OWNER)
        check("consistency", consistency, Choice(_CONSISTENCY), owner=_OWNER)
        check("batch", batch, Integer(1, 100_000), owner=_OWNER)
        check("timeout", timeout, Integer(1, 3600), owner=_OWNER)
        self.timeout = int(timeout)
        if not isinstance(collection, str) or not _NAME.match(collection):
            raise InvalidParameterError(f"A Milvus collection name is letters, digits and _ (a letter or _ first, "
                                        f"at most 255). Got {collection!r}.")
        allowed = ("COSINE", "IP") if metric == "cosine" else ("HAMMING",)
        self._milvus_metric = (milvus_metric or allowed[0]).upper()
        if self._milvus_metric not in allowed:
            raise InvalidParameterError(f"A {metric} index takes the Milvus metric {' or '.join(allowed)}. Got "
                                        f"{milvus_metric!r}.")
        self._metric: Metric = metric
        self._dim = int(dim)
        self._dtype: np.dtype[Any] = np.dtype(np.float32 if metric == "cosine" else np.uint8)
        self._width = self._dim if metric == "cosine" else self._dim // 8
        self.uri, self.collection, self.consistency, self.batch = uri, collection, consistency, int(batch)
        self._client = client if client is not None else _client(parse_uri(uri))
        self._index_type = (index_type or ("FLAT" if metric == "cosine" else "BIN_FLAT")).upper()
        self._index_params = dict(index_params or {})
        self._search_params = dict(search_params or {})
        self._ensure_collection()

    # -- the collection -----------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, timed: bool = True, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` within ``timeout`` seconds (pymilvus retries a failing call up to 75 times over
        minutes otherwise), its errors as IndexBackendError."""
        try:
            return fn(*args, **({"timeout": self.timeout} if timed else {}), **kwargs)
        except InvalidParameterError:
            raise
        except Exception as err:  # noqa: BLE001 - MilvusException, grpc errors, a lost Lite process
            raise IndexBackendError(f"Milvus ({self.uri}, collection {self.collection!r}) failed to {what}: "
                                    f"{err}") from err

    def _ensure_collection(self) -> None:
        from pymilvus import DataType

        vector_type = DataType.FLOAT_VECTOR if self._metric == "cosine" else DataType.BINARY_VECTOR
        if self._call("list collections", self._client.has_collection, self.collection):
            self._check_schema(vector_type)
        else:
            schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("key", DataType.INT64, is_primary=True)
            schema.add_field("vector", vector_type, dim=self._dim)
            params = self._client.prepare_index_params()
            params.add_index(field_name="vector", index_type=self._index_type, metric_type=self._milvus_metric,
                             params=self._index_params)
            self._call("create the collection", self._client.create_collection, self.collection, schema=schema,
                       index_params=params, consistency_level=self.consistency)
        self._call("load the collection", self._client.load_collection, self.collection)

    def _check_schema(self, vector_type: Any) -> None:
        info = self._call("describe the collection", self._client.describe_collection, self.collection)
        fields = {f["name"]: f for f in info.get("fields", [])}
        vector, key = fields.get("vector"), fields.get("key")
        dim = int((vector or {}).get("params", {}).get("dim", -1))
        if key is None or not key.get("is_primary") or vector is None or vector.get("type") != vector_type \
                or dim != self._dim:
            unit = "dimensions" if self._metric == "cosine" else "bits"
            raise IndexBackendError(f"Milvus collection {self.collection!r} at {self.uri} is not a lookalike "
                                    f"index of {self._metric} vectors of {self._dim} {unit} (fields "
                                    f"{sorted(fields)}, dim {dim}); choose another collection name")

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        self._call("drop the collection", self._client.drop_collection, self.collection)

    def close(self) -> None:
        self._call("close the connection", self._client.close, timed=False)

    # -- the protocol -------------------------------------------------------------------------------------------

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        rows = self._call("count", self._client.query, self.collection, filter="", output_fields=["count(*)"],
                          consistency_level=self.consistency)
        return int(rows[0]["count(*)"])

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int | np.integer) or isinstance(key, bool):
            return False
        return bool(self._present(np.array([int(key)], dtype=np.int64))[0])

    def __repr__(self) -> str:
        return f"<{_OWNER} {self._metric} {self._dim} at {self.uri} collection {self.collection!r}>"

    def _iterate(self, fields: list[str], expr: str = "") -> Iterator[list[dict[str, Any]]]:
        it = self._call("read the collection", self._client.query_iterator, self.collection,
                        batch_size=self.batch * 4, filter=expr, output_fields=fields)
        try:
            while batch := self._call("read the collection", it.next, timed=False):
                yield batch
        finally:
            it.close()

    def keys(self) -> np.ndarray:
        """The keys held, ascending."""
        found = [row["key"] for batch in self._iterate(["key"]) for row in batch]
        return np.unique(np.array(found, dtype=np.int64))

    def _present(self, keys: np.ndarray) -> np.ndarray:
        held: set[int] = set()
        for lo in range(0, len(keys), FILTER_CHUNK):
            rows = self._call("look keys up", self._client.query, self.collection,
                              filter=_key_filter(keys[lo:lo + FILTER_CHUNK]), output_fields=["key"],
                              consistency_level=self.consistency)
            held.update(int(row["key"]) for row in rows)
        return np.fromiter((k in held for k in keys.tolist()), dtype=bool, count=len(keys))

    def _rows(self, keys: np.ndarray, vectors: np.ndarray) -> list[dict[str, Any]]:
        if self._metric == "cosine":
            return [{"key": k, "vector": v} for k, v in zip(keys.tolist(), vectors.tolist(), strict=True)]
        return [{"key": k, "vector": bytes(v)} for k, v in zip(keys.tolist(), vectors, strict=True)]

    def add(self, keys: Any, vectors: Any) -> None:
        """Store ``vectors`` under ``keys``: an upsert; a key repeated within the call gets its last vector."""
        keys = check_new_keys(keys, _OWNER)
        vectors = check_matrix("vectors", vectors, self._width, self._dtype, _OWNER, rows=len(keys))
        unique, last = np.unique(keys[::-1], return_index=True)
        keys, vectors = unique, np.ascontiguousarray(vectors[len(keys) - 1 - last])
        step = max(1, min(self.batch, CALL_BYTES // max(1, vectors.shape[1] * vectors.itemsize)))
        for lo in range(0, len(keys), step):
            self._call("upsert", self._client.upsert, self.collection,
                       self._rows(keys[lo:lo + step], vectors[lo:lo + step]))

    def remove(self, keys: Any) -> int:
        wanted = np.unique(check_keys(keys, _OWNER))
        if not len(wanted):
            return 0
        present = wanted[self._present(wanted)]
        for lo in range(0, len(present), FILTER_CHUNK):
            self._call("delete", self._client.delete, self.collection, ids=present[lo:lo + FILTER_CHUNK].tolist())
        return len(present)

    def _vector(self, value: Any) -> np.ndarray:
        if self._metric == "cosine":
            return np.asarray(value, dtype=np.float32)
        raw = value[0] if isinstance(value, list) else value
        return np.frombuffer(raw, dtype=np.uint8)

    def get(self, key: int) -> np.ndarray:
        got, present = self.vectors([key])
        if not present[0]:
            raise ItemNotFoundError(f"key {key!r} is not in the index")
        return got[0]

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        wanted = check_keys(keys, _OWNER)
        out = np.zeros((len(wanted), self._width), dtype=self._dtype)
        found: dict[int, np.ndarray] = {}
        unique = np.unique(wanted)
        for lo in range(0, len(unique), self.batch):
            rows = self._call("read vectors", self._client.get, self.collection,
                              ids=unique[lo:lo + self.batch].tolist(), output_fields=["vector"])
            found.update((int(row["key"]), self._vector(row["vector"])) for row in rows)
        present = np.fromiter((k in found for k in wanted.tolist()), dtype=bool, count=len(wanted))
        for i in np.flatnonzero(present).tolist():
            out[i] = found[int(wanted[i])]
        return out, present

    def _scores(self, distances: np.ndarray) -> np.ndarray:
        if self._metric == "cosine":
            return distances.astype(np.float32)
        return (1.0 - distances / np.float64(self._dim)).astype(np.float32)

    def _query_data(self, queries: np.ndarray) -> list[Any]:
        return queries.tolist() if self._metric == "cosine" else [bytes(q) for q in queries]

    def _milvus_search(self, queries: np.ndarray, depth: int, expr: str) -> tuple[np.ndarray, np.ndarray]:
        hits = self._call("search", self._client.search, self.collection, data=self._query_data(queries),
                          limit=depth, anns_field="vector", filter=expr,
                          search_params={"metric_type": self._milvus_metric, "params": self._search_params},
                          output_fields=[], consistency_level=self.consistency)
        scores = np.full((len(queries), depth), -np.inf, dtype=np.float32)
        found = np.full((len(queries), depth), PAD_KEY, dtype=np.int64)
        for i, row in enumerate(hits):
            got = list(row)[:depth]
            if got:
                found[i, :len(got)] = [int(h["id"]) for h in got]
                scores[i, :len(got)] = self._scores(np.array([float(h["distance"]) for h in got]))
        return scores, found

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        k = check_k(k, _OWNER)
        queries = check_matrix("queries", queries, self._width, self._dtype, _OWNER)
        out = Neighbors.empty(len(queries), k)
        wanted = None if keys is None else np.unique(check_keys(keys, _OWNER))
        if not len(queries) or (wanted is not None and not len(wanted)):
            return out
        depth = k if wanted is None else min(k, len(wanted))
        if depth > TOPK_LIMIT:  # past Milvus' limit: as many as it holds, or every vector scored here
            depth = min(depth, len(self))
            if depth > TOPK_LIMIT:
                return self._exhaustive(queries, k, wanted)
            if not depth:
                return out
        if wanted is None:
            parts = [self._milvus_search(queries, depth, "")]
        else:
            parts = [self._milvus_search(queries, depth, _key_filter(wanted[lo:lo + FILTER_CHUNK]))
                     for lo in range(0, len(wanted), FILTER_CHUNK)]
        scores = np.concatenate([p[0] for p in parts], axis=1)
        found = np.concatenate([p[1] for p in parts], axis=1)
        scores, found = in_key_order(scores, found)
        got = min(depth, scores.shape[1])
        out.scores[:, :got], out.keys[:, :got] = scores[:, :got], found[:, :got]
        return out

    def _exhaustive(self, queries: np.ndarray, k: int, wanted: np.ndarray | None) -> Neighbors:
        """Top-k past Milvus' limit: every (wanted) vector read back and scored exactly."""
        from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex

        flat = FloatFlatIndex(self._dim) if self._metric == "cosine" else BinaryFlatIndex(self._dim)
        for batch in self._iterate(["key", "vector"]):
            keys = np.array([row["key"] for row in batch], dtype=np.int64)
            flat.add(keys, np.stack([self._vector(row["vector"]) for row in batch]))
        return flat.search(queries, k, keys=wanted)


def build(dim: int, metric: Metric, args: list[str], **options: Any) -> MilvusIndex:
    """The factory's builder: ``"Milvus(URI)"`` or ``"Milvus(URI,collection)"``; options go to :class:`MilvusIndex`."""
    if not 1 <= len(args) <= 2 or not args[0]:
        raise InvalidParameterError(f"Milvus takes (URI) or (URI,collection), e.g. 'Milvus(milvus:///data/a.db)'. "
                                    f"Got {len(args)} arguments.")
    if len(args) == 2:
        options["collection"] = args[1]
    return MilvusIndex(dim, metric, uri=args[0], **{**uri_options(args[0]), **options})
