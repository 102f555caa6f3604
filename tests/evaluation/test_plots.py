"""Precision and recall by Hamming radius from codes, the PNG plots, and ``lookalike eval --plot DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.cli import main
from lookalike.errors import InvalidParameterError
from lookalike.evaluation import precision_recall_by_radius, precision_recall_of_codes
from lookalike.evaluation.plots import (
    history_points,
    plot_map_vs_bits,
    plot_pr_by_radius,
    plot_protocol,
    plot_quality_vs_time,
)
from lookalike.evaluation.protocol import ProtocolRun

PNG = b"\x89PNG\r\n\x1a\n"


def _brute_force(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each radius, one query and one radius at a time, from unpacked bits."""
    bits = q.shape[1] * 8
    d = (np.unpackbits(q, axis=1)[:, None, :] != np.unpackbits(db, axis=1)[None, :, :]).sum(axis=2)
    precision, recall = np.full(bits + 1, np.nan), np.full(bits + 1, np.nan)
    for r in range(bits + 1):
        ps, rs = [], []
        for i in range(len(q)):
            within, relevant = d[i] <= r, dbl == ql[i]
            if within.any():
                ps.append((within & relevant).sum() / within.sum())
            if relevant.any():
                rs.append((within & relevant).sum() / relevant.sum())
        precision[r] = np.mean(ps) if ps else np.nan
        recall[r] = np.mean(rs) if rs else np.nan
    return precision, recall


@pytest.mark.parametrize("nbytes", [1, 2, 3])
def test_precision_recall_of_codes_matches_brute_force(nbytes: int) -> None:
    rng = np.random.default_rng(nbytes)
    q, db = (rng.integers(0, 256, (n, nbytes), dtype=np.uint8) for n in (9, 80))
    db[:5] = q[:5]  # some exact matches: radius 0 retrieves for those queries only
    ql, dbl = rng.integers(0, 4, 9), rng.integers(0, 3, 80)  # label 3: queries with no relevant item
    precision, recall = precision_recall_of_codes(q, db, ql, dbl)
    expected = _brute_force(q, db, ql, dbl)
    np.testing.assert_allclose(precision, expected[0], equal_nan=True)
    np.testing.assert_allclose(recall, expected[1], equal_nan=True)
    assert precision.shape == (8 * nbytes + 1,) and recall[-1] == 1.0 and (np.diff(recall) >= 0).all()
    d = (np.unpackbits(q, axis=1)[:, None, :] != np.unpackbits(db, axis=1)[None, :, :]).sum(axis=2)
    same = precision_recall_by_radius(d, dbl[None, :] == ql[:, None], np.arange(8 * nbytes + 1))
    np.testing.assert_allclose(precision, same[0], equal_nan=True)
    np.testing.assert_allclose(recall, same[1], equal_nan=True)


def test_precision_recall_of_codes_rejects_bad_input() -> None:
    codes = np.zeros((3, 2), np.uint8)
    with pytest.raises(InvalidParameterError, match="bytes wide"):
        precision_recall_of_codes(codes, np.zeros((3, 1), np.uint8), [0, 0, 0], [0, 0, 0])
    with pytest.raises(InvalidParameterError, match="one per row"):
        precision_recall_of_codes(codes, codes, [0, 0], [0, 0, 0])
    with pytest.raises(InvalidParameterError, match="uint8"):
        precision_recall_of_codes(codes.astype(np.int64), codes, [0, 0, 0], [0, 0, 0])


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_plots_are_valid_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cells = {(f, m, b): 0.4 + b / 200 + (m == "itq") / 10 for f in ("pixels", "efficientnet-lite0")
             for m in ("lsh", "itq") for b in (16, 32, 64)}
    a = plot_map_vs_bits(cells, tmp_path / "a.png", ceilings={"pixels": 0.71}, title="t")
    curves = {("pixels", "itq"): (np.linspace(0.9, 0.1, 17), np.linspace(0.0, 1.0, 17)),
              ("pixels", "lsh"): (np.r_[np.nan, np.linspace(0.8, 0.1, 16)], np.linspace(0.0, 1.0, 17))}
    b = plot_pr_by_radius(curves, tmp_path / "sub" / "b.png", bits=16)  # a missing folder is created
    c = plot_quality_vs_time({"head": [(10.0, 0.6), (30.0, 0.7)], "ITQ": [(2.0, 0.75)]}, tmp_path / "c.png")
    assert [a, b, c] == [tmp_path / "a.png", tmp_path / "sub" / "b.png", tmp_path / "c.png"]
    assert all(_is_png(p) for p in (a, b, c))


def test_plots_reject_bad_input(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(InvalidParameterError, match="Nothing to plot"):
        plot_map_vs_bits({}, tmp_path / "a.png")
    with pytest.raises(InvalidParameterError, match="> 0"):
        plot_quality_vs_time({"x": [(0.0, 0.5)]}, tmp_path / "c.png")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InvalidParameterError, match="is a file"):
        plot_protocol(ProtocolRun(), tmp_path / "file")


def test_history_points_accumulate_seconds() -> None:
    history = [{"epoch": 1.0, "seconds": 10.0}, {"epoch": 2.0, "seconds": 12.0, "map@1000": 0.3},
               {"epoch": 3.0, "seconds": 11.0}, {"epoch": 4.0, "seconds": 9.0, "map@1000": 0.4}]
    assert history_points(history) == [(22.0, 0.3), (42.0, 0.4)]
    assert history_points(history, key="map@10000") == []


@pytest.mark.slow
def test_eval_plot_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    assert main(["eval", "--queries", "50", "--hashers", "lsh,itq", "--bits", "16", "--features", "pixels",
                 "--plot", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("map-vs-bits.png", "pr-hamming.png"):
        assert _is_png(out / name) and f"wrote {out / name}" in printed
    assert "| ITQ |" in printed  # the table is printed as without --plot


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("lookalike: error: ") and "\n" not in err
    return err


def test_eval_plot_bad_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    small = ["eval", "--queries", "10", "--hashers", "lsh", "--features", "pixels"]
    (tmp_path / "file").write_text("x")
    assert main([*small, "--bits", "16", "--plot", str(tmp_path / "file")]) == 1
    assert "--plot" in _one_error_line(capsys)
    assert main([*small, "--bits", "16 32", "--plot", str(tmp_path / "p")]) == 1
    assert "--bits" in _one_error_line(capsys)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the [plots] extra not installed: said before the run
    assert main([*small, "--bits", "16", "--plot", str(tmp_path / "p")]) == 1
    assert "lookalike[plots]" in _one_error_line(capsys)
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_eval_on_a_class_folder_with_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("top", "middle", "bottom")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 60, (15, 15, 3), dtype=np.uint8)
            pixels[5 * c : 5 * c + 5] += 180  # each class a bright band of its own
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    out = tmp_path / "plots"
    assert main(["eval", "--dataset", "folder", "--root", str(tmp_path / "data"), "--queries", "12", "--features",
                 "pixels", "--hashers", "lsh,itq", "--bits", "8,16", "--plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "12 images of" in printed and "against its other 48" in printed and "mAP@48 / mAP@48" in printed
    assert "| ITQ | 1.000 / 1.000 / 1.000 | 1.000 / 1.000 / 1.000 |" in printed  # the classes are separable
    assert _is_png(out / "map-vs-bits.png") and _is_png(out / "pr-hamming.png")
    assert main(["eval", "--dataset", "folder", "--queries", "12"]) == 1
    assert "--root" in _one_error_line(capsys)
    assert main(["eval", "--dataset", "folder", "--root", str(tmp_path / "data"), "--queries", "60"]) == 1
    assert "[1, 59]" in _one_error_line(capsys)
