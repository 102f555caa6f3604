"""The large-PNG fast path (lookalike/images/_png.py + _pngreduce.c) against Pillow's own decode and reduce.

The PNGs are written here, row filter by row filter, so that every filter type (None, Sub, Up, Average, Paeth) is
exercised for every colour type; Pillow's encoder picks its filters itself.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

import lookalike.images._png as png
from lookalike.errors import TruncatedImageError
from lookalike.images import load_image
from lookalike.images._png import Reducer, decode_reduced

CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
COLOUR = {"L": 0, "LA": 4, "RGB": 2, "RGBA": 6}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _filter_row(pixels: np.ndarray, y: int, kind: int, bpp: int) -> bytes:
    """Row ``y`` of ``pixels`` (H, W*C uint8) filtered with PNG filter ``kind``, after its type byte."""
    row = pixels[y].astype(np.int32)
    up = pixels[y - 1].astype(np.int32) if y > 0 else np.zeros_like(row)
    left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
    corner = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
    if kind == 0:
        pred = np.zeros_like(row)
    elif kind == 1:
        pred = left
    elif kind == 2:
        pred = up
    elif kind == 3:
        pred = (left + up) // 2
    else:
        p = left + up - corner
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - corner)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
    return bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes()


def write_png(image: np.ndarray, mode: str, filters: list[int], *, idat_sizes: int = 1 << 20,
              extra: bytes = b"", level: int = 6) -> bytes:
    """A PNG of ``image`` (H, W[, C]) in ``mode`` with the given row filters, its IDAT split every ``idat_sizes``
    bytes, and ``extra`` chunks before the image data."""
    height, width = image.shape[:2]
    channels = CHANNELS[mode]
    rows = image.reshape(height, width * channels)
    stream = zlib.compress(b"".join(_filter_row(rows, y, filters[y % len(filters)], channels)
                                    for y in range(height)), level)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR[mode], 0, 0, 0)
    idats = b"".join(_chunk(b"IDAT", stream[i:i + idat_sizes]) for i in range(0, len(stream), idat_sizes))
    return png.SIGNATURE + _chunk(b"IHDR", header) + extra + idats + _chunk(b"IEND", b"")


def _image(mode: str, width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.integers(-3, 4, (height, width, CHANNELS[mode])), axis=1) + 128
    return np.clip(smooth + rng.integers(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def _pillow_reduced(data: bytes, factor: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).reduce(factor))


def _block_means(pixels: np.ndarray, factor: int, alpha: bool) -> np.ndarray:
    """The reference: each factor x factor block's mean, rounded half up; with alpha the colour weighted by it."""
    height, width, channels = pixels.shape
    out = np.zeros((-(-height // factor), -(-width // factor), channels), np.uint8)
    for oy in range(out.shape[0]):
        for ox in range(out.shape[1]):
            block = pixels[oy * factor:(oy + 1) * factor, ox * factor:(ox + 1) * factor].reshape(-1, channels)
            block = block.astype(np.int64)
            weight = block[:, -1] if alpha else np.ones(len(block), np.int64)
            colours = block[:, :-1] if alpha else block
            total = int(weight.sum())
            out[oy, ox, :colours.shape[1]] = ((colours * weight[:, None]).sum(0) + total // 2) // total if total else 0
            if alpha:
                out[oy, ox, -1] = (total + len(block) // 2) // len(block)
    return out


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [4, 3, 2, 1, 0]])
def test_every_filter_and_colour_type_gives_the_block_means(mode: str, filters: list[int]) -> None:
    pixels = _image(mode, 101, 67, seed=len(filters) * 10 + filters[0])
    data = write_png(pixels, mode, filters, idat_sizes=997)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))).reshape(pixels.shape), pixels)  # a valid PNG
    alpha = mode in ("LA", "RGBA")
    for factor in (2, 3, 4, 8):
        got = decode_reduced(data, factor)
        assert got is not None, (mode, factor)
        image, orientation = got
        assert image.mode == mode and orientation == 1
        assert image.size == (-(-101 // factor), -(-67 // factor))  # edge blocks kept, averaged over what they hold
        reduced = np.asarray(image).reshape(image.height, image.width, -1)
        assert np.array_equal(reduced, _block_means(pixels, factor, alpha))
        pillow = _pillow_reduced(data, factor).reshape(reduced.shape).astype(int)  # fixed point, premultiplied
        assert np.abs(reduced.astype(int) - pillow).max() <= (1 if not alpha else 12)
        if not alpha and factor in (2, 4, 8):
            inner = (slice(0, 67 // factor), slice(0, 101 // factor))
            assert np.array_equal(reduced[inner], pillow[inner])  # whole blocks: Pillow's own figures


def test_alpha_is_composited_as_if_at_full_size() -> None:
    rgba = _image("RGBA", 64, 48, seed=4)
    rgba[::3, :, 3] = 0  # every third row transparent: its colour must not show
    data = write_png(rgba, "RGBA", [4])
    small = np.asarray(load_image(data, draft=(16, 12)).image, dtype=float)  # 1/4, composited onto white
    a = rgba[..., 3:].astype(float) / 255
    white = rgba[..., :3] * a + 255 * (1 - a)
    want = white.reshape(12, 4, 16, 4, 3).mean(axis=(1, 3))
    assert np.abs(small - want).max() <= 1.0


def test_rows_split_across_tiny_pieces_decode_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = _image("RGB", 83, 41, seed=3)
    data = write_png(pixels, "RGB", [4, 1, 3], idat_sizes=13)
    whole = np.asarray(decode_reduced(data, 4)[0])  # type: ignore[index]
    monkeypatch.setattr(png, "PIECE", 7)
    monkeypatch.setattr(png, "OUT_PIECE", 5)  # every row split across several feeds
    assert np.array_equal(np.asarray(decode_reduced(data, 4)[0]), whole)  # type: ignore[index]
    assert np.array_equal(whole, _block_means(pixels, 4, alpha=False))


def test_reducer_takes_any_split_and_ignores_bytes_past_the_last_row() -> None:
    rows = bytes([0, 10, 20, 1, 5, 5])  # two 2x1 grey rows: None then Sub
    for cut in range(len(rows) + 1):
        reducer = Reducer(2, 2, 1, 2)
        assert reducer.feed(rows[:cut]) is (cut == len(rows))
        assert reducer.feed(rows[cut:] + b"junk") is True
        assert reducer.result() == bytes([(10 + 20 + 5 + 10 + 2) // 4])  # (10, 20, 5, 10): mean 11.25 -> 11
        assert reducer.size == (1, 1) and reducer.rows == 2


def test_reducer_refuses_bad_arguments_missing_rows_and_unknown_filters() -> None:
    for args in [(0, 1, 1, 2), (1, 0, 1, 2), (1, 1, 5, 2), (1, 1, 1, 0), (1, 1, 1, 65), (1 << 25, 1, 1, 2)]:
        with pytest.raises(ValueError):
            Reducer(*args)
    reducer = Reducer(4, 4, 3, 2)
    reducer.feed(bytes(13))
    with pytest.raises(ValueError, match="1 of 4 rows"):
        reducer.result()
    with pytest.raises(ValueError, match="unknown filter"):
        reducer.feed(bytes([5]) + bytes(12))
    with pytest.raises(ValueError, match="unknown filter"):
        reducer.feed(bytes(13))  # stays refused
    with pytest.raises(TypeError):
        Reducer(4, 4, 3, 2).feed("text")
    with pytest.raises(RuntimeError, match="once"):
        Reducer(4, 4, 3, 2).__init__(4, 4, 3, 2)


def _pillow_png(mode: str, **params: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (64, 48), 1 if mode in ("P", "1") else 0).save(out, "PNG", **params)
    return out.getvalue()


@pytest.mark.parametrize("data", [
    _pillow_png("P"), _pillow_png("1"), _pillow_png("I;16"), _pillow_png("RGB", transparency=(0, 0, 0)),
    _pillow_png("L", transparency=0),
])
def test_palette_16_bit_1_bit_and_transparent_colour_pngs_are_left_to_pillow(data: bytes) -> None:
    assert decode_reduced(data, 2) is None
    assert load_image(data, draft=(8, 8)).image.size == (16, 12)  # libvips or Pillow still shrink it


def test_interlaced_png_is_left_to_the_other_decoders() -> None:
    pixels = _image("RGB", 64, 48, seed=5)
    data = write_png(pixels, "RGB", [0])
    ihdr = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 1)
    interlaced = data[:8] + _chunk(b"IHDR", ihdr) + data[8 + 25:]
    assert decode_reduced(interlaced, 2) is None


def _damaged(data: bytes) -> dict[str, bytes]:
    start = data.index(b"IDAT")
    return {
        "truncated mid-IDAT": data[:start + 300],
        "no IEND": data[:-12],
        "bad IHDR CRC": data[:29] + bytes([data[29] ^ 1]) + data[30:],
        "corrupt deflate": data[:start + 40] + bytes(64) + data[start + 104:],
        "stream ends early": data[:start - 4] + _chunk(b"IDAT", zlib.compress(bytes(300))) + _chunk(b"IEND", b""),
        "unknown filter": write_png(np.zeros((48, 64, 3), np.uint8), "RGB", [0])[:start - 4]
        + _chunk(b"IDAT", zlib.compress(bytes([7]) + bytes(64 * 3) * 48)) + _chunk(b"IEND", b""),
        "not a PNG": b"GIF89a" + data[6:],
    }


@pytest.mark.parametrize("kind", list(_damaged(write_png(_image("RGB", 64, 48, 9), "RGB", [0]))))
def test_a_damaged_png_falls_back_so_pillow_says_what_is_wrong(kind: str) -> None:
    data = _damaged(write_png(_image("RGB", 64, 48, seed=9), "RGB", [0]))[kind]
    assert decode_reduced(data, 2) is None
    if kind in ("truncated mid-IDAT", "stream ends early"):
        with pytest.raises(TruncatedImageError):
            load_image(data, draft=(8, 8))


def test_exif_orientation_is_read_from_the_exif_chunk_and_applied_by_load_image() -> None:
    pixels = np.full((40, 80, 3), 255, np.uint8)
    pixels[:8, :8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = write_png(pixels, "RGB", [4], extra=_chunk(b"eXIf", exif.tobytes()))
    turned = decode_reduced(data, 2)
    assert turned is not None and turned[1] == 6 and turned[0].size == (20, 40)  # upright, as libvips gives it
    small = load_image(data, draft=(10, 10))
    assert small.image.size == (10, 20) and (small.width, small.height) == (40, 80)  # 1/4, turned upright
    assert np.asarray(small.image)[0, 9, 1] < 100  # the red corner went to the top right
    broken = write_png(pixels, "RGB", [4], extra=_chunk(b"eXIf", b"MM\x00*garbage"))
    assert decode_reduced(broken, 2)[1] == 1  # type: ignore[index]


def test_load_image_takes_the_fast_path_and_matches_pillow_full_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = _image("RGB", 960, 720, seed=11)
    data = write_png(pixels, "RGB", [1, 2, 3, 4])
    calls: list[int] = []
    real = png.decode_reduced

    def spy(blob: bytes, factor: int) -> object:
        calls.append(factor)
        return real(blob, factor)

    monkeypatch.setattr("lookalike.images._decode.decode_reduced", spy)
    small = load_image(data, draft=(224, 224))
    assert calls == [2] and small.image.size == (480, 360)
    assert np.array_equal(np.asarray(small.image), _pillow_reduced(data, 2))
    assert small.sha256 == load_image(data).sha256


def test_a_png_bomb_is_inflated_in_bounded_pieces() -> None:
    side = 6000  # 36 M grey pixels that compress to ~35 KB
    stream = zlib.compress(bytes(side + 1) * side, 9)
    data = (png.SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", stream) + _chunk(b"IEND", b""))
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        got = decode_reduced(data, 8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got is not None and got[0].size == (750, 750) and not np.asarray(got[0]).any()
    assert peak < 8 * png.OUT_PIECE  # the pieces in the queue, never the 36 MB image


def test_the_reducer_extension_is_built() -> None:
    assert Reducer is not None, "lookalike/images/_pngreduce.c was not compiled: pip install -e . builds it"
