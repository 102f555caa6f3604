"""Encoders: the registry, each built-in encoder against an independent reference, batching and errors."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from lookalike.encoders import available_encoders, get_encoder, parse_spec
from lookalike.encoders.base import Encoder
from lookalike.errors import InvalidParameterError, NotAnImageError


def _images(rng: np.random.Generator, n: int, size: int = 40) -> list[Image.Image]:
    """Smooth random colour images (blurred noise), so hashes and CNN features are not degenerate."""
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize((size, size + 8), Image.Resampling.BICUBIC))
    return out


# -- registry ---------------------------------------------------------------------------------------------------


def test_registry_lists_builtin_encoders() -> None:
    assert {"efficientnet-lite0", "phash", "dhash", "pixels"} <= set(available_encoders())


def test_unknown_encoder_lists_valid_names() -> None:
    with pytest.raises(InvalidParameterError, match="Valid encoders: .*efficientnet-lite0"):
        get_encoder("resnet-9000")


@pytest.mark.parametrize("spec", ["pixels:size=2", "pixels:size=abc", "pixels:mode=cmyk", "pixels:colour=rgb",
                                  "efficientnet-lite0:layer=stage9", "efficientnet-lite0:pool=median",
                                  "pixels:size", "", "   "])
def test_bad_options_are_refused(spec: str) -> None:
    with pytest.raises(InvalidParameterError):
        get_encoder(spec)


def test_spec_round_trip() -> None:
    for spec in ["pixels", "pixels:size=16", "pixels:mode=rgb,size=8", "phash", "efficientnet-lite0",
                 "efficientnet-lite0:layer=stage3,pool=gram"]:
        enc = get_encoder(spec)
        assert get_encoder(enc.spec).spec == enc.spec
    assert get_encoder("efficientnet-lite0:layer=head,pool=avg").spec == "efficientnet-lite0"
    assert parse_spec("bingan:/models/a.pt") == ("bingan", {"path": "/models/a.pt"})


def test_get_encoder_passes_instances_through() -> None:
    enc = get_encoder("pixels")
    assert get_encoder(enc) is enc


# -- pixels and hashes ------------------------------------------------------------------------------------------


def test_pixels_matches_manual_computation(rng: np.random.Generator) -> None:
    imgs = _images(rng, 3)
    got = get_encoder("pixels:size=8").encode_pil(imgs)
    for row, img in zip(got, imgs, strict=True):
        ref = np.asarray(img.convert("L").resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32).ravel()
        np.testing.assert_allclose(row, ref / np.linalg.norm(ref), rtol=1e-6)
    assert got.shape == (3, 64) and got.dtype == np.float32


@pytest.mark.parametrize(("name", "func"), [("phash", imagehash.phash), ("dhash", imagehash.dhash)])
def test_perceptual_hashes_equal_imagehash(name: str, func: object, rng: np.random.Generator) -> None:
    imgs = _images(rng, 5)
    codes = get_encoder(name).encode_pil(imgs)
    assert codes.shape == (5, 8) and codes.dtype == np.uint8
    for code, img in zip(codes, imgs, strict=True):
        ref = func(img)  # type: ignore[operator]
        assert np.array_equal(np.unpackbits(code).astype(bool), ref.hash.ravel())


def test_phash_survives_reencoding(rng: np.random.Generator, tmp_path: object) -> None:
    import io

    img = _images(rng, 1, size=120)[0]
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=60)
    enc = get_encoder("phash")
    a, b = enc.encode([img, buf.getvalue()])
    assert int(np.unpackbits(a ^ b).sum()) <= 6


# -- the pretrained CNN -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["efficientnet-lite0", "efficientnet-lite0:layer=stage3,pool=gram",
                                  "efficientnet-lite0:layer=stage5,pool=max"])
def test_onnx_matches_torch_reference(spec: str, rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch", reason="the reference needs torch, which the [torch] extra installs")
    from lookalike.encoders.efficientnet import build_torch_model

    enc = get_encoder(spec)
    imgs = _images(rng, 3, size=100)
    got = enc.encode_pil(imgs)
    model = build_torch_model(enc.layer, enc.pool)  # type: ignore[attr-defined]
    with torch.no_grad():
        ref = model(torch.from_numpy(np.stack([enc.prepare(i) for i in imgs]))).numpy()
    assert got.shape == (3, enc.dim)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_onnx_model_is_cached_by_weights_hash() -> None:
    enc = get_encoder("efficientnet-lite0")
    enc.session()  # type: ignore[attr-defined]
    path = enc.onnx_path  # type: ignore[attr-defined]
    assert path.exists() and path.stat().st_size > 1_000_000
    stamp = path.stat().st_mtime_ns
    again = get_encoder("efficientnet-lite0")
    again.session()  # type: ignore[attr-defined]
    assert again.onnx_path == path and path.stat().st_mtime_ns == stamp  # reused, not exported again


def test_batch_size_does_not_change_vectors(rng: np.random.Generator) -> None:
    enc = get_encoder("efficientnet-lite0")
    imgs = _images(rng, 7, size=64)
    whole = enc.encode_pil(imgs, batch_size=32)
    for bs in (1, 3, 5):
        np.testing.assert_allclose(enc.encode_pil(imgs, batch_size=bs), whole, atol=1e-5)


def test_cnn_embedding_is_semantic_on_fashion_mnist() -> None:
    """Sneakers are nearer to sneakers than to trousers (golden behaviour of any ImageNet CNN)."""
    from lookalike.datasets import load_fashion_mnist

    data = load_fashion_mnist("test")
    sneakers = [Image.fromarray(x) for x in data.images[data.labels == 7][:4]]
    trousers = [Image.fromarray(x) for x in data.images[data.labels == 1][:4]]
    enc = get_encoder("efficientnet-lite0")
    s, t = enc.encode_pil([img.convert("RGB") for img in sneakers]), enc.encode_pil(
        [img.convert("RGB") for img in trousers])
    within = (s @ s.T)[np.triu_indices(4, 1)].min()
    across = (s @ t.T).max()
    assert within > across


# -- the shared encode() path -----------------------------------------------------------------------------------


def test_encode_accepts_one_source_or_many(rng: np.random.Generator) -> None:
    enc = get_encoder("pixels:size=8")
    img = _images(rng, 1)[0]
    arr = np.asarray(img)
    one = enc.encode(img)
    assert one.shape == (1, 64)
    np.testing.assert_allclose(enc.encode([img, arr]), np.vstack([one, one]), atol=1e-6)


def test_encode_raises_typed_error_naming_the_source(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "notes.png"
    bad.write_text("not an image at all")
    with pytest.raises(NotAnImageError, match="notes.png"):
        get_encoder("pixels").encode([bad])


def test_encoder_is_an_abstract_protocol() -> None:
    with pytest.raises(TypeError):
        Encoder()  # type: ignore[abstract]
    with pytest.raises(InvalidParameterError, match="batch_size"):
        get_encoder("pixels").encode_pil([], batch_size=0)
