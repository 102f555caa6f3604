"""The command line: every command, JSON output, and bad input giving one line and a non-zero exit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.cli import main

ENC = "pixels:size=8"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for i in range(9):
        p = root / ("red" if i < 5 else "blue") / f"p{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((32, 32), Image.Resampling.BICUBIC).save(p)
    return root


@pytest.fixture
def catalog(tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "cat"
    code, out, _ = _run(capsys, "index", photos, "--catalog", path, "--encoder", ENC)
    assert code == 0 and "9 added" in out
    return path


def test_index_search_similar_info_json(catalog: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--catalog", catalog, "search", photos / "red" / "p1.png", "-k", "3", "--json")
    data = json.loads(out)
    assert code == 0 and data["results"][0]["id"] == "red/p1.png" and len(data["results"]) == 3
    assert set(data["results"][0]) == {"id", "path", "score", "distance", "metadata"}

    code, out, _ = _run(capsys, "similar", "red/p1.png", "--catalog", catalog, "-k", "2", "--json")
    assert code == 0 and "red/p1.png" not in [r["id"] for r in json.loads(out)["results"]]

    code, out, _ = _run(capsys, "info", "--catalog", catalog, "--json")
    info = json.loads(out)
    assert info["items"] == 9 and info["encoders"][0]["spec"] == ENC

    code, out, _ = _run(capsys, "search", photos / "blue" / "p7.png", "--catalog", catalog, "--box", "0,0,16,16")
    assert code == 0 and len(out.strip().splitlines()) == 9

    code, out, _ = _run(capsys, "index", photos, "--catalog", catalog, "--json")
    assert json.loads(out)["unchanged"] == 9


def test_add_update_remove_list(catalog: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = photos / "red" / "p0.png"
    code, out, _ = _run(capsys, "add", img, "--catalog", catalog, "--id", "new", "--meta", "colour=red",
                        "--meta", '{"price": 12.5}', "--json")
    assert code == 0 and json.loads(out)["added"][0]["metadata"] == {"colour": "red", "price": 12.5}
    code, out, _ = _run(capsys, "update", "new", "--catalog", catalog, "--meta", "colour=blue", "--json")
    assert json.loads(out)["metadata"] == {"colour": "blue"}
    code, out, _ = _run(capsys, "search", img, "--catalog", catalog, "--where", "colour=blue", "--json")
    assert [r["id"] for r in json.loads(out)["results"]] == ["new"]
    code, out, _ = _run(capsys, "list", "--catalog", catalog, "--json", "--limit", "100")
    assert len(json.loads(out)) == 10
    code, out, err = _run(capsys, "remove", "new", "ghost", "--catalog", catalog)
    assert code == 1 and "removed new" in out and "ghost" in err
    code, out, _ = _run(capsys, "get", "red/p0.png", "--catalog", catalog, "--json")
    assert json.loads(out)["width"] == 32


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "{missing}", "--catalog", "{cat}"], "missing.png"),
        (["search", "{text}", "--catalog", "{cat}"], "not an image"),
        (["search", "{trunc}", "--catalog", "{cat}"], "trunc.png"),
        (["search", "{good}", "--catalog", "{cat}", "--box", "1,2,3"], "box"),
        (["search", "{good}", "--catalog", "{cat}", "--box", "500,500,10,10"], "outside"),
        (["search", "{good}", "--catalog", "{cat}", "-k", "0"], "'k'"),
        (["search", "{good}", "--catalog", "{tmp}/nowhere"], "no catalogue"),
        (["similar", "ghost", "--catalog", "{cat}"], "ghost"),
        (["add", "{text}", "--catalog", "{cat}"], "text.png"),
        (["add", "{good}", "--catalog", "{cat}", "--meta", "{{bad json"], "--meta"),
        (["add", "{good}", "--catalog", "{cat}", "--id", "red/p1.png"], "already exists"),
        (["update", "ghost", "--catalog", "{cat}", "--meta", "a=1"], "ghost"),
        (["index", "{tmp}/no-such-dir", "--catalog", "{cat}"], "no-such-dir"),
        (["index", "{good}", "--catalog", "{tmp}/c2", "--encoder", "nonsense"], "Unknown encoder"),
        (["search", "{good}", "--catalog", "{cat}", "--where", "a"], "KEY=VALUE"),
        (["--catalog", "{cat}", "search", "{good}", "--max-pixels", "10"], "pixels"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(
    argv: list[str], message: str, catalog: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "trunc.png").write_bytes((photos / "red" / "p0.png").read_bytes()[:60])
    names = {"missing": tmp_path / "missing.png", "text": tmp_path / "text.png", "trunc": tmp_path / "trunc.png",
             "good": photos / "red" / "p0.png", "cat": catalog, "tmp": tmp_path}
    code, out, err = _run(capsys, *[a.format(**names) for a in argv])
    assert code == 1
    assert err.startswith("lookalike: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_console_script_never_prints_a_traceback(tmp_path: Path) -> None:
    exe = shutil.which("lookalike") or str(Path(sys.executable).parent / "lookalike")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 10)
    proc = subprocess.run([exe, "--catalog", str(tmp_path / "c"), "add", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lookalike: error:") and "bad.jpg" in proc.stderr


def test_export_writes_a_class_folder_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "export", "fashion-mnist", tmp_path / "fm", "--split", "test", "--limit", "20")
    assert code == 0 and "exported 20 images" in out
    assert len(list((tmp_path / "fm").glob("*/*.png"))) == 20 and len(list((tmp_path / "fm").iterdir())) == 10
    code, _, err = _run(capsys, "export", "cifar10", tmp_path / "c", "--root", tmp_path / "nowhere")
    assert code == 1 and err.startswith("lookalike: error:") and "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "demo", "--dir", tmp_path / "demo", "--n", "300", "--queries", "2")
    assert code == 0
    assert "300 added" in out and out.count("query ") == 2 and "precision@5" in out
