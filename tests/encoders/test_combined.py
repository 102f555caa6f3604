"""Combined encoders (``a++b:weight=W``): against the parts run alone, the cosine identity, specs, the catalogue and
CLI with one, and bad specs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.cli import main
from lookalike.encoders import get_encoder
from lookalike.encoders.combined import CombinedEncoder
from lookalike.errors import InvalidParameterError

SPEC = "pixels:size=8++pixels:size=12,mode=rgb,weight=0.5"


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((30, 22), Image.Resampling.BICUBIC)
            for _ in range(n)]


def _reference(parts: list[tuple[str, float]], images: list[Image.Image]) -> np.ndarray:
    """Each part encoded alone, unit rows times the weight, side by side, unit rows: written out independently."""
    blocks = []
    for spec, weight in parts:
        v = get_encoder(spec).encode_pil(images).astype(np.float64)
        blocks.append(weight * v / np.linalg.norm(v, axis=1, keepdims=True))
    joined = np.hstack(blocks)
    return joined / np.linalg.norm(joined, axis=1, keepdims=True)


def test_encode_equals_the_parts_side_by_side_and_the_cosine_is_the_weighted_mean() -> None:
    images = _images(7)
    enc = get_encoder(SPEC)
    assert isinstance(enc, CombinedEncoder) and enc.kind == "float" and enc.dim == 64 + 432
    v = enc.encode_pil(images, batch_size=3)
    ref = _reference([("pixels:size=8", 1.0), ("pixels:size=12,mode=rgb", 0.5)], images)
    np.testing.assert_allclose(v, ref, atol=1e-6)
    a = get_encoder("pixels:size=8").encode_pil(images)
    b = get_encoder("pixels:size=12,mode=rgb").encode_pil(images)
    np.testing.assert_allclose(enc.combine([a, b]), v, atol=1e-6)
    cos = v @ v.T
    np.testing.assert_allclose(cos, (1.0 * (a @ a.T) + 0.25 * (b @ b.T)) / 1.25, atol=1e-5)


def test_a_network_part_keeps_its_own_input_dtype() -> None:
    """efficientnet-lite0 takes uint8 pixels and ``pixels`` float32: both reach their model unchanged."""
    images = _images(3, seed=1)
    spec = "efficientnet-lite0++pixels:size=28,weight=0.7"
    v = get_encoder(spec).encode_pil(images)
    np.testing.assert_allclose(v, _reference([("efficientnet-lite0", 1.0), ("pixels:size=28", 0.7)], images), atol=1e-5)


@pytest.mark.parametrize(("written", "canonical"), [
    ("pixels:size=8++pixels:size=12,mode=rgb,weight=0.5", SPEC),
    ("pixels:size=8,weight=1++pixels:weight=0.50,size=12,mode=rgb", SPEC),
    ("pixels ++ pixels:size=16", "pixels++pixels:size=16"),
    ("pixels:weight=2++pixels:size=16", "pixels:weight=2++pixels:size=16"),
])
def test_spec_is_canonical_and_rebuilds_the_same_encoder(written: str, canonical: str) -> None:
    enc = get_encoder(written)
    assert enc.spec == canonical
    assert get_encoder(enc.spec).spec == canonical
    images = _images(2)
    np.testing.assert_array_equal(get_encoder(canonical).encode_pil(images), enc.encode_pil(images))


@pytest.mark.parametrize(("spec", "message"), [
    ("pixels++", "empty part"),
    ("++pixels", "empty part"),
    ("pixels++phash", "Only float encoders"),
    ("pixels++nonsense", "Unknown encoder"),
    ("pixels++pixels:weight=0", "positive"),
    ("pixels++pixels:weight=-1", "positive"),
    ("pixels++pixels:weight=nan", "positive"),
    ("pixels++pixels:weight=inf", "positive"),
    ("pixels++pixels:weight=1e9", "positive"),
    ("pixels++pixels:weight=heavy", "positive"),
    ("pixels++pixels:size=2", "size"),
    ("++".join(["pixels"] * 9), "2 to 8"),
    ("pixels++" + "x" * 100_000, "Unknown encoder"),
])
def test_bad_combined_specs_are_refused_with_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        get_encoder(spec)


def test_keyword_options_and_bad_part_vectors_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="each part"):
        get_encoder(SPEC, size=8)
    enc = get_encoder(SPEC)
    with pytest.raises(InvalidParameterError, match="2 parts"):
        enc.combine([np.ones((2, 64))])
    with pytest.raises(InvalidParameterError, match=r"\(n, 432\)"):
        enc.combine([np.ones((2, 64)), np.ones((2, 431))])
    with pytest.raises(InvalidParameterError, match=r"\(n, 432\)"):
        enc.combine([np.ones((2, 64)), np.ones((3, 432))])
    with pytest.raises(InvalidParameterError, match="2 to 8"):
        CombinedEncoder([(get_encoder("pixels"), 1.0)])


def test_a_catalogue_indexes_hashes_and_searches_with_a_combined_encoder(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, img in enumerate(_images(40, seed=2)):
        img.save(folder / f"p{i:02d}.png")
    catalog = tmp_path / "c"
    assert main(["index", str(folder), "--catalog", str(catalog), "--encoder", SPEC, "--hash", "adapt",
                 "--bits", "16"]) == 0
    assert f"searching {SPEC}+adapt:16" in capsys.readouterr().out
    assert main(["search", str(folder / "p05.png"), "--catalog", str(catalog), "-k", "3", "--encoder", SPEC,
                 "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["results"][0]["id"] == "p05.png"
    with Catalog(catalog) as cat:
        assert {SPEC, f"{SPEC}+adapt:16"} <= {e["spec"] for e in cat.info()["encoders"]}
        stored = cat.search(folder / "p07.png", k=1, encoder="pixels:size=8 ++ pixels:size=12,mode=rgb,weight=0.5")
    assert stored[0].id == "p07.png"


@pytest.mark.parametrize("spec", ["nonsense", "pixels++phash", "pixels:size=2"])
def test_a_new_catalogue_with_a_bad_encoder_writes_nothing(spec: str, tmp_path: Path) -> None:
    """A bad spec used to leave an empty catalogue directory behind (found with combined specs)."""
    with pytest.raises(InvalidParameterError):
        Catalog(tmp_path / "new", spec)
    with pytest.raises(InvalidParameterError):
        Catalog(tmp_path / "new2", "pixels", extra_encoders=[spec])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with Catalog(tmp_path / "new", "pixels:size=8") as cat:  # the path is free for a good one
        assert cat.encoder.spec == "pixels:size=8"
