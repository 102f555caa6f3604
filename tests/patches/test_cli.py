"""``lookalike eval patches`` end to end, with a BinGAN patch model trained without labels on patches, and hostile
input: one ``lookalike: error:`` line and status 1 (2 for argparse's usage errors), as every command."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from lookalike.cli import main
from lookalike.patches import training_patches

from .test_brown import write_brown


def cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_table_and_json(tmp_path: Path) -> None:
    write_brown(tmp_path / "yosemite")
    code, out, err = cli("eval", "patches", "--set", "warps", "--set", f"brown:{tmp_path / 'yosemite'}",
                         "--pairs", "60", "--descriptors", "brief,sift")
    assert code == 0, err
    assert "| descriptor | bytes | warps | brown:yosemite | average FPR@95% |" in out
    assert "| sift | 512, float L2 |" in out and "| brief | 32 |" in out
    code, out, _ = cli("eval", "patches", "--set", "motorcycle", "--pairs", "60", "--descriptors", "orb", "--json")
    rows = json.loads(out)["results"]
    assert code == 0 and [(r["descriptor"], r["set"]) for r in rows] == [("orb", "motorcycle")]
    assert 0 <= rows[0]["fpr95"] < 0.95


@pytest.mark.slow
def test_bingan_trained_on_patches_without_labels(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")
    npy = tmp_path / "patches.npy"
    np.save(npy, training_patches(64, seed=1))
    model = tmp_path / "patch.bingan"
    code, out, err = cli("train", "bingan", "--data", npy, "--arch", "patch", "--bits", "256", "--fit", "resize",
                         "--width", "0.1", "--batch-size", "16", "--epochs", "1", "--threads", "1", "--no-progress",
                         "--out", model)
    assert code == 0 and "64 patches of" in out, err
    code, out, err = cli("eval", "patches", "--set", "warps", "--pairs", "60", "--descriptors", "brief",
                         "--bingan", model, "--json")
    assert code == 0, err
    rows = {r["descriptor"]: r for r in json.loads(out)["results"]}
    assert rows[f"bingan:{model}"]["bytes"] == 32 and 0 <= rows[f"bingan:{model}"]["fpr95"] <= 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "brown:{tmp}/missing"], "no such folder"),
    (["--set", "brown:"], "--set: expected motorcycle, warps or brown:DIR. Got 'brown:'"),
    (["--set", "liberty"], "--set: expected motorcycle, warps or brown:DIR"),
    (["--descriptors", "brief,surf"], "unknown descriptor 'surf'"),
    (["--descriptors", ","], "--descriptors"),
    (["--bingan", "{tmp}/model.bingan"], "model.bingan"),
    (["--bingan", "{tmp}/garbage.bingan"], "garbage.bingan"),
    (["--pairs", "0"], "The '--pairs' parameter"),
    (["--seed", "-1"], "The '--seed' parameter"),
])
def test_hostile_input_one_line_status_1(argv: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "garbage.bingan").write_bytes(b"PK\x03\x04 not a model")
    code, out, err = cli("eval", "patches", "--pairs", "20", *[a.format(tmp=tmp_path) for a in argv])
    assert code == 1 and out == "", (out, err)
    assert err.startswith("lookalike: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["eval", "patches", "--pairs", "ten"], ["eval", "patches", "--nope"], ["eval", "patchez"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        _, err = capsys.readouterr()
        assert "usage: lookalike" in err and "error:" in err
