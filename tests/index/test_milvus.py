"""MilvusIndex beyond the shared contract (tests/index/test_contract.py runs that on Milvus Lite): URIs and their
options, a collection of another shape, Milvus' top-k limit and long key filters, and index options."""

from __future__ import annotations

import numpy as np
import pytest
from milvus_server import fresh_collection, milvus_uri

import lookalike.index.milvus as milvus
from lookalike.errors import IndexBackendError, InvalidParameterError
from lookalike.index import FloatFlatIndex, MilvusIndex, index_factory
from lookalike.index.milvus import parse_uri, uri_options


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("uri", "args"), [
    ("milvus:///data/x.db", {"uri": "/data/x.db"}),
    ("milvus://./rel/x.db", {"uri": "./rel/x.db"}),
    ("milvus://host:19530", {"uri": "http://host:19530"}),
    ("milvuss://host:443?token=u:p&db=shop", {"uri": "https://host:443", "token": "u:p", "db_name": "shop"}),
    ("milvus://host:19530?index_type=HNSW&consistency=Bounded", {"uri": "http://host:19530"}),
])
def test_uris_name_a_lite_file_or_a_server(uri: str, args: dict[str, str]) -> None:
    assert parse_uri(uri) == args


@pytest.mark.parametrize("uri", ["", "http://h:1", "milvus://", "milvus:///x.txt", "milvus://h:1/p", "milvus:///.db",
                                 "milvus://h:1?colour=red", "milvus://h?index_params=[1]", "milvus://h?timeout=soon",
                                 "milvus://h?index_params={bad", "x" * 3000])
def test_bad_uris_are_refused_with_the_forms_that_work(uri: str) -> None:
    with pytest.raises(InvalidParameterError, match="Milvus"):
        parse_uri(uri)


def test_index_options_ride_in_the_uri_and_keywords_win() -> None:
    uri = 'milvus://h:1?index_type=HNSW&index_params={"M":8,"efConstruction":64}&metric=IP&timeout=5&batch=50'
    assert uri_options(uri) == {"index_type": "HNSW", "index_params": {"M": 8, "efConstruction": 64},
                                "milvus_metric": "IP", "timeout": 5, "batch": 50}
    index = index_factory(16, f"Milvus({milvus_uri()}?metric=IP&batch=7)", collection=fresh_collection())
    assert isinstance(index, MilvusIndex) and index.batch == 7
    index.add([1, 2], _unit(np.random.default_rng(0), 2, 16))
    assert index.search(_unit(np.random.default_rng(0), 1, 16), 1).keys[0, 0] == 1  # IP on unit vectors


def test_ivf_index_type_is_passed_to_milvus() -> None:
    rng = np.random.default_rng(1)
    index = MilvusIndex(8, uri=milvus_uri(), collection=fresh_collection(), index_type="IVF_FLAT",
                        index_params={"nlist": 4})
    x = _unit(rng, 50, 8)
    index.add(np.arange(50), x)
    assert index.search(x[:3], 1).keys[:, 0].tolist() == [0, 1, 2]
    with pytest.raises(InvalidParameterError, match="HAMMING"):
        MilvusIndex(64, "hamming", uri=milvus_uri(), collection=fresh_collection(), milvus_metric="COSINE")


def test_a_collection_of_another_shape_is_refused_not_overwritten() -> None:
    name = fresh_collection()
    index = MilvusIndex(8, uri=milvus_uri(), collection=name)
    index.add([5], _unit(np.random.default_rng(2), 1, 8))
    for dim, metric in ((16, "cosine"), (64, "hamming")):
        with pytest.raises(IndexBackendError, match=f"is not a lookalike index of {metric}"):
            MilvusIndex(dim, metric, uri=milvus_uri(), collection=name)  # type: ignore[arg-type]
    assert len(MilvusIndex(8, uri=milvus_uri(), collection=name)) == 1  # reopened as it is
    with pytest.raises(InvalidParameterError, match="collection name"):
        MilvusIndex(8, uri=milvus_uri(), collection="bad name; drop")


def test_past_milvus_topk_limit_and_with_long_filters_the_answer_stays_exact(monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    rng = np.random.default_rng(3)
    x = _unit(rng, 60, 8)
    index = MilvusIndex(8, uri=milvus_uri(), collection=fresh_collection(), batch=7)  # several upsert calls
    index.add(np.arange(60) * 2, x)
    exact = FloatFlatIndex(8)
    exact.add(np.arange(60) * 2, x)
    queries = _unit(rng, 3, 8)
    monkeypatch.setattr(milvus, "TOPK_LIMIT", 10)  # k = 25 is past the limit: every vector scored here
    monkeypatch.setattr(milvus, "FILTER_CHUNK", 4)  # a filter of 13 keys goes in 4 chunks, merged
    for k, keys in ((25, None), (5, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 999]), (25, list(range(0, 60, 2)))):
        got, want = index.search(queries, k, keys=keys), exact.search(queries, k, keys=keys)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        assert (got.keys == want.keys).all()
    assert index.remove(list(range(0, 30))) == 15 and len(index) == 45
