"""lookalike.prefetch.pipelined: chunks in order, bounded, and one job on the caller's thread."""

from __future__ import annotations

import threading

import pytest

from lookalike.prefetch import pipelined


def test_chunks_come_back_in_order_with_every_result() -> None:
    chunks = list(pipelined(range(10), lambda x: x * x, 3))
    assert chunks == [[0, 1, 4], [9, 16, 25], [36, 49, 64], [81]]


def test_one_job_runs_on_the_callers_thread() -> None:
    # a query is one image: starting a pool for it cost more than the resize itself
    caller = threading.get_ident()
    assert list(pipelined(["q"], lambda _: threading.get_ident(), 16)) == [[caller]]


def test_many_jobs_run_on_the_pool() -> None:
    caller = threading.get_ident()
    (idents,) = list(pipelined(list(range(4)), lambda _: threading.get_ident(), 16))
    assert caller not in idents


def test_no_jobs_give_no_chunks() -> None:
    assert list(pipelined([], lambda x: x, 4)) == []
    assert list(pipelined(iter([]), lambda x: x, 4)) == []


def test_an_error_of_the_one_job_reaches_the_caller() -> None:
    def boom(_: object) -> None:
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        list(pipelined([1], boom, 4))
