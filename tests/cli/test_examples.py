"""``lookalike similar ID [ID ...] [--unlike ID ...]``: the library's answer, in JSON and as a table, and bad
examples refused in one line (status 1) before anything is searched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike import Catalog

from .conftest import Run, count


def test_several_ids_and_unlike_give_the_librarys_answer(plain: Path, cli: Run) -> None:
    like, unlike = ["coffee.png", "chelsea.png"], ["moon.png", "text.png", "page.png"]
    code, out, err = cli("similar", *like, "--unlike", unlike[0], "--unlike", *unlike[1:], "-k", "6", "--json",
                         "--catalog", plain)
    assert code == 0, err
    data = json.loads(out)
    with Catalog(plain) as cat:
        expected = cat.similar(like, unlike=unlike, k=6)
    assert data["query"] == {"like": like, "unlike": unlike}
    assert [r["id"] for r in data["results"]] == [h.id for h in expected] and len(expected) == 6
    assert not {r["id"] for r in data["results"]} & set(like + unlike)
    code, table, _ = cli("similar", *like, "--unlike", *unlike, "-k", "6", "--catalog", plain)
    assert code == 0 and [line.split()[2] for line in table.splitlines()] == [h.id for h in expected]


def test_one_id_prints_as_before(plain: Path, cli: Run) -> None:
    code, out, _ = cli("similar", "coffee.png", "-k", "3", "--json", "--catalog", plain)
    data = json.loads(out)
    with Catalog(plain) as cat:
        expected = cat.similar("coffee.png", k=3)
    assert code == 0 and data["query"] == "coffee.png"
    assert [r["id"] for r in data["results"]] == [h.id for h in expected]


def test_where_encoder_and_k_apply(plain: Path, cli: Run) -> None:
    code, out, _ = cli("similar", "coffee.png", "moon.png", "-k", "30", "--json", "--encoder", "pixels",
                       "--catalog", plain)
    assert code == 0 and len(json.loads(out)["results"]) == 22  # 24 items, both examples left out


@pytest.mark.parametrize(("argv", "message"), [
    (["coffee.png", "ghost.png", "--unlike", "phantom.png", "nope"], "'ghost.png', 'nope'"),
    (["coffee.png", "--unlike", "coffee.png"], "both liked and unliked: item 'coffee.png'"),
    (["coffee.png", "moon.png", "coffee.png"], "given more than once"),
    ([f"x{i}" for i in range(101)], "at most 100 item ids"),
    (["coffee.png", *[f"x{i}" for i in range(60)], "--unlike", *[f"y{i}" for i in range(40)]], "at most 100"),
    (["coffee.png", "moon.png", "-k", "0"], "'k' parameter"),
    (["coffee.png", "a\tb"], "printable"),
])
def test_bad_examples_are_one_line_status_1(argv: list[str], message: str, plain: Path, cli: Run) -> None:
    code, out, err = cli("similar", *argv, "--catalog", plain)
    assert code == 1 and out == "", (out, err)
    assert err.startswith("lookalike: error: ") and err.count("\n") == 1 and len(err) < 400, err
    assert message in err and "Traceback" not in err and count(plain) == 24


def test_unlike_without_an_id_is_a_usage_error(plain: Path, cli: Run, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli("similar", "coffee.png", "--unlike", "--catalog", plain)
    assert exc.value.code == 2 and "usage: lookalike" in capsys.readouterr().err
