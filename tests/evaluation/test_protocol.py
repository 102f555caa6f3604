"""The retrieval protocol end to end on the real Fashion-MNIST, small enough for the suite."""

from __future__ import annotations

import pytest

from lookalike.cli import main
from lookalike.evaluation.protocol import run_protocol


@pytest.mark.slow
def test_protocol_table_and_known_ordering(capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    cells = run_protocol(feature_names=["pixels"], hashers=["lsh", "pcah", "itq"], bits=[16], queries=200,
                         out=lines.append)
    assert any(line.startswith("| float cosine (3,136 bytes)") for line in lines)
    lsh, pcah, itq = (cells[("pixels", name, 16)][0] for name in ("lsh", "pcah", "itq"))
    assert itq > pcah > lsh  # the ordering of the hashing literature on raw pixels at 16 bits
    again = run_protocol(feature_names=["pixels"], hashers=["itq"], bits=[16], queries=200, out=lambda _: None)
    assert again[("pixels", "itq", 16)] == cells[("pixels", "itq", 16)]  # fixed seeds: reproduced exactly


def test_eval_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--bits", "16,abc"]) == 1
    assert "--bits" in capsys.readouterr().err
    assert main(["eval", "--features", "nonsense", "--hashers", "lsh", "--bits", "16", "--queries", "10"]) == 1
    assert "Unknown feature" in capsys.readouterr().err
    assert main(["eval", "--features", "pixels", "--hashers", "nope", "--bits", "16", "--queries", "10"]) == 1
    assert "nope" in capsys.readouterr().err
