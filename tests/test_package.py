"""The public surface: a sorted __all__ that resolves, and an import that stays light."""

from __future__ import annotations

import subprocess
import sys

import lookalike


def test_all_is_sorted_and_resolves() -> None:
    assert lookalike.__all__ == sorted(lookalike.__all__)
    for name in lookalike.__all__:
        assert getattr(lookalike, name) is not None


def test_import_does_not_load_heavy_stacks() -> None:
    code = "import sys, lookalike; print(sorted(m for m in ('torch', 'onnxruntime', 'faiss') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
