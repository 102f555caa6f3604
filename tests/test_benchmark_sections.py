"""benchmarks/_stamp.write_section: a benchmark's table replaces its own section of BENCHMARKS.md, nothing else."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _stamp import Report, write_section  # noqa: E402

DOC = "# Benchmarks\n\nintro\n\n## A\n\nold a\n\n### A detail\n\nmore a\n\n## B\n\nold b\n"


def test_replaces_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(DOC)
    write_section("## A\n\nnew a\n", str(path))
    assert path.read_text() == "# Benchmarks\n\nintro\n\n## A\n\nnew a\n\n## B\n\nold b\n"
    write_section("## B\n\nnew b\n", str(path))
    assert path.read_text() == "# Benchmarks\n\nintro\n\n## A\n\nnew a\n\n## B\n\nnew b\n"


def test_appends_a_new_section_and_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_section("## C\n\nc\n", str(path))
    assert path.read_text() == "## C\n\nc\n"
    write_section("## D\n\nd", str(path))
    assert path.read_text() == "## C\n\nc\n\n## D\n\nd\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_a_section_needs_a_heading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="heading"):
        write_section("no heading\n", str(tmp_path / "B.md"))


def test_report_prints_and_keeps_lines(capsys: pytest.CaptureFixture[str]) -> None:
    out = Report()
    out("## T\n")
    out("| a |")
    assert capsys.readouterr().out == "## T\n\n| a |\n"
    assert out.text() == "## T\n\n| a |\n"
