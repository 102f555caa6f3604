"""``lookalike judge`` and ``lookalike triplets`` (issue 14, part 3): judgements from the command line, their
listing and CSV export, and bad input that exits 1 with one line and writes nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lookalike import Catalog

from .conftest import Run


def test_judge_list_and_export(plain: Path, cli: Run, tmp_path: Path) -> None:
    code, out, err = cli("judge", "coffee.png", "--similar", "chelsea.png", "astronaut.png", "--dissimilar",
                         "moon.png", "--catalog", plain)
    assert code == 0, err
    assert out.strip() == "coffee.png: 3 judgements, 2 triplets"
    code, out, _ = cli("judge", "coffee.png", "--dissimilar", "text.png", "--json", "--catalog", plain)
    assert json.loads(out) == {"reference": "coffee.png", "judgements": 4, "references": 1, "triplets": 4}
    code, out, err = cli("triplets", "--catalog", plain)
    assert code == 0 and out.splitlines() == [
        "coffee.png  similar     astronaut.png", "coffee.png  similar     chelsea.png",
        "coffee.png  dissimilar  moon.png", "coffee.png  dissimilar  text.png"]  # by item key: folder order
    assert "4 judgements about 1 reference items: 4 triplets" in err
    code, out, _ = cli("triplets", "--json", "--reference", "coffee.png", "--limit", 1, "--catalog", plain)
    assert len(json.loads(out)["judgements"]) == 1 and json.loads(out)["counts"]["triplets"] == 4
    target = tmp_path / "t.csv"
    code, _, err = cli("triplets", "--csv", target, "--paths", "--catalog", plain)
    assert code == 0 and "wrote 4 triplets" in err
    rows = list(csv.reader(target.read_text().splitlines()))
    assert rows[0] == ["query", "positive", "negative"] and len(rows) == 5
    assert all(Path(p).is_file() for row in rows[1:] for p in row)
    code, out, _ = cli("triplets", "--csv", "-", "--catalog", plain)
    assert out.splitlines()[1] == "coffee.png,astronaut.png,moon.png"
    code, out, _ = cli("judge", "coffee.png", "--forget", "--catalog", plain)
    assert code == 0 and out.strip() == "forgot 4 judgements about coffee.png"


@pytest.mark.parametrize(("argv", "words"), [
    (["judge", "coffee.png"], "at least one item id"),
    (["judge", "nope.png", "--similar", "moon.png"], "nope.png"),
    (["judge", "coffee.png", "--similar", "nope.png"], "nope.png"),
    (["judge", "coffee.png", "--similar", "coffee.png"], "against itself"),
    (["judge", "coffee.png", "--similar", "moon.png", "--dissimilar", "moon.png"], "named twice"),
    (["judge", "coffee.png", "--similar", "x" * 3000], "item id must be"),
    (["judge", "coffee.png", "--forget", "--similar", "moon.png"], "takes no"),
    (["triplets", "--csv", "-", "--reference", "coffee.png"], "takes no --reference"),
    (["triplets", "--reference", "nope.png"], "nope.png"),
    (["triplets", "--limit", "-1"], "--limit"),
])
def test_bad_input_is_one_line_and_writes_nothing(argv: list[str], words: str, plain: Path, cli: Run) -> None:
    cli("judge", "coffee.png", "--similar", "chelsea.png", "--catalog", plain)
    code, out, err = cli(*argv, "--catalog", plain)
    assert code == 1 and out == ""
    assert err.startswith("lookalike: error:") and len(err.strip().splitlines()) == 1 and words in err, err
    with Catalog(plain) as cat:
        assert [(j.reference, j.item, j.similar) for j in cat.judgements.list()] == [
            ("coffee.png", "chelsea.png", True)]


def test_a_csv_into_a_missing_folder_is_one_line(plain: Path, cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("triplets", "--csv", tmp_path / "no" / "such" / "t.csv", "--catalog", plain)
    assert code == 1 and err.startswith("lookalike: error:")
