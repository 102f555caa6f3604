"""Tests for lookalike.images: every accepted input kind, every mode conversion, every typed failure."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from lookalike.errors import (
    EmptyImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageUnreadableError,
    InvalidParameterError,
    InvalidRegionError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from lookalike.images import (
    SUPPORTED_FORMATS,
    Box,
    ImageLimits,
    ImageSource,
    Skipped,
    crop,
    describe_source,
    find_images,
    is_image_file,
    load_image,
    read_bytes,
    sniff_format,
)

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ROOT_REASON = "running as root: chmod 000 does not stop root from reading, so permissions cannot be tested"


def blocks(width: int = 32, height: int = 16) -> np.ndarray:
    """Four flat colour quadrants: exact through palette formats, close through JPEG."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = RED
    pixels[: height // 2, width // 2 :] = GREEN
    pixels[height // 2 :, : width // 2] = BLUE
    pixels[height // 2 :, width // 2 :] = WHITE
    return pixels


def pixel_list(image: Image.Image) -> list[tuple[int, ...]]:
    return [tuple(pixel) for pixel in np.asarray(image).reshape(-1, 3).tolist()]


def reds(image: Image.Image) -> list[int]:
    return [pixel[0] for pixel in pixel_list(image)]


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise_png(seed: int = 0, size: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    return encode(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR (CRC fixed up) claims ``width`` x ``height``: a decompression bomb's header."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


ENCODINGS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "subsampling": 0},  # 4:4:4, so colour edges on the 8x8 grid stay sharp
    "PNG": {},
    "WEBP": {"lossless": True},
    "BMP": {},
    "GIF": {},
    "TIFF": {},
}


# --- accepted inputs


@pytest.mark.parametrize("fmt", sorted(ENCODINGS))
def test_each_format_round_trips_from_path_bytes_pil_and_array(tmp_path: Path, fmt: str) -> None:
    expected = blocks()
    data = encode(Image.fromarray(expected), fmt, **ENCODINGS[fmt])
    path = write(tmp_path / "picture", data)  # no extension: the content decides
    tolerance = 8 if fmt == "JPEG" else 0
    pil = Image.open(io.BytesIO(data))
    sources: list[ImageSource] = [path, str(path), data, bytearray(data), memoryview(data), pil]
    for source in sources:
        loaded = load_image(source)
        assert loaded.image.mode == "RGB"
        assert (loaded.width, loaded.height) == loaded.image.size == (32, 16)
        assert loaded.format == fmt
        assert np.abs(np.asarray(loaded.image, np.int16) - expected).max() <= tolerance
    from_array = load_image(np.asarray(load_image(data).image))
    assert from_array.format is None and from_array.source == "<array>"
    assert np.abs(np.asarray(from_array.image, np.int16) - expected).max() <= tolerance


def test_sha256_is_the_digest_of_the_encoded_file(tmp_path: Path) -> None:
    data = noise_png()
    path = write(tmp_path / "a.png", data)
    assert load_image(path).sha256 == load_image(data).sha256 == hashlib.sha256(data).hexdigest()
    assert read_bytes(path) == data


def test_sha256_of_arrays_and_pil_images_is_canonical() -> None:
    pixels = blocks()
    assert load_image(pixels).sha256 == load_image(pixels.copy()).sha256
    assert load_image(pixels).sha256 != load_image(pixels.astype(np.uint16) * 257).sha256
    assert load_image(pixels).sha256 != load_image(pixels[:, :16]).sha256
    assert load_image(Image.fromarray(pixels)).sha256 == load_image(Image.fromarray(pixels.copy())).sha256


def test_source_names() -> None:
    assert describe_source("a/b.png") == "a/b.png"
    assert describe_source(Path("a") / "b.png") == os.path.join("a", "b.png")
    assert describe_source(b"x") == describe_source(memoryview(b"x")) == "<bytes>"
    assert describe_source(np.zeros((1, 1))) == "<array>"
    assert describe_source(Image.new("RGB", (1, 1))) == "<PIL image>"


def test_animated_gif_and_webp_and_multipage_tiff_give_the_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, BLUE)]
    for fmt, options in (("GIF", {}), ("WEBP", {"lossless": True}), ("TIFF", {})):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)
        assert load_image(data).image.getpixel((4, 4)) == RED, fmt


def test_pil_image_is_not_returned_or_changed() -> None:
    original = Image.fromarray(blocks())
    loaded = load_image(original)
    assert loaded.image is not original
    loaded.image.putpixel((0, 0), BLACK)
    assert original.getpixel((0, 0)) == RED


# --- orientation


def jpeg_with_orientation(width: int, height: int, orientation: int) -> bytes:
    """White, with a red 8x8 marker in the stored top-left corner."""
    pixels = np.full((height, width, 3), 255, np.uint8)
    pixels[:8, :8] = RED
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())


def is_red(image: Image.Image, x: int, y: int) -> bool:
    r, g, b = np.asarray(image)[y, x].tolist()
    return bool(r > 200 and g < 60 and b < 60)


def test_exif_orientation_6_rotates_clockwise() -> None:
    loaded = load_image(jpeg_with_orientation(40, 20, 6))
    assert (loaded.width, loaded.height) == loaded.image.size == (20, 40)
    assert is_red(loaded.image, 16, 3)  # the stored top-left lands top-right
    assert not is_red(loaded.image, 3, 3)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillows_exif_transpose(fmt: str, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    data = encode(image, fmt, exif=exif.tobytes(), **ENCODINGS[fmt])
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    loaded = load_image(data)
    assert np.array_equal(np.asarray(loaded.image), np.asarray(reference))
    assert (loaded.width, loaded.height) == reference.size == ((5, 7) if orientation >= 5 else (7, 5))


def test_exif_orientation_applies_to_pil_images_too() -> None:
    image = Image.open(io.BytesIO(jpeg_with_orientation(40, 20, 6)))
    assert load_image(image).image.size == (20, 40)


def test_draft_decodes_a_jpeg_smaller_but_reports_the_true_size() -> None:
    data = jpeg_with_orientation(800, 400, 6)
    loaded = load_image(data, draft=(100, 100))
    assert loaded.image.size == (100, 200)  # 1/4 scale, never below the draft size, upright
    assert (loaded.width, loaded.height) == (400, 800)
    assert is_red(loaded.image, 98, 0)
    assert load_image(data, draft=(100, 100), box=Box(0, 0, 400, 800)).image.size == (400, 800)



@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_shrink_on_load_upright_like_jpeg(fmt: str) -> None:
    """Issue 11: libvips decodes large PNG and WebP straight to a reduced size, never at full size."""
    pixels = np.full((400, 800, 3), 255, np.uint8)
    pixels[:16, :16] = RED
    exif = Image.Exif()
    exif[0x0112] = 6
    extra = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(Image.fromarray(pixels), fmt, exif=exif.tobytes(), **extra)
    full = load_image(data)
    assert full.image.size == (full.width, full.height) == (400, 800) and is_red(full.image, 398, 0)
    small = load_image(data, draft=(100, 100))
    assert small.image.size == (100, 200) and (small.width, small.height) == (400, 800)  # 1/4, upright
    assert is_red(small.image, 99, 0) and not is_red(small.image, 0, 0)
    assert small.sha256 == full.sha256
    assert load_image(data, draft=(300, 300)).image.size == (400, 800)  # 1/2 would go below 300: full size
    assert load_image(noise_png(), draft=(8, 8)).image.size == (8, 8)
    assert load_image(data, draft=(100, 100), box=Box(0, 0, 400, 800)).image.size == (400, 800)  # a box: full


# --- pixel modes


def test_palette_transparency_becomes_white() -> None:
    image = Image.new("P", (4, 1), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    data = encode(image, "PNG", transparency=0)
    assert pixel_list(load_image(data).image) == [WHITE, RED, WHITE, WHITE]
    gif = encode(image, "GIF", transparency=0)
    assert pixel_list(load_image(gif).image) == [WHITE, RED, WHITE, WHITE]


def test_rgba_is_composited_onto_white_not_stripped() -> None:
    pixels = np.array([[[0, 0, 0, 0], [255, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)  # transparent black first
    for source in (encode(Image.fromarray(pixels), "PNG"), pixels, Image.fromarray(pixels)):
        image = load_image(source).image
        assert image.getpixel((0, 0)) == WHITE
        assert image.getpixel((1, 0)) == RED
        assert image.getpixel((2, 0)) == (127, 127, 127)


def test_la_grey_with_alpha_is_composited_onto_white() -> None:
    image = Image.new("LA", (2, 1))
    image.putpixel((0, 0), (0, 0))
    image.putpixel((1, 0), (50, 255))
    assert pixel_list(load_image(encode(image, "PNG")).image) == [WHITE, (50, 50, 50)]


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    r, g, b = load_image(data).image.getpixel((8, 8))  # type: ignore[misc]
    assert r < 10 and g > 245 and b > 245  # pure cyan


def test_16_bit_png_keeps_its_full_range() -> None:
    data = encode(Image.fromarray(np.array([[0, 32768, 65535, 257]], np.uint16)), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert reds(load_image(data).image) == [0, 128, 255, 1]


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_wide_integer_modes_scale_by_257(mode: str) -> None:
    image = Image.new(mode, (3, 1))
    for x, value in enumerate((0, 32768, 65535)):
        image.putpixel((x, 0), value)
    assert reds(load_image(image).image) == [0, 128, 255]


def test_float_mode_scales_unit_range_and_stretches_others() -> None:
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert reds(load_image(unit).image) == [0, 128, 255]
    wide = Image.fromarray(np.array([[-10.0, 0.0, 10.0, np.nan]], np.float32))
    assert reds(load_image(wide).image) == [0, 128, 255, 0]


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grey_and_bilevel_become_rgb(tmp_path: Path, mode: str) -> None:
    image = Image.new(mode, (2, 1))
    image.putpixel((1, 0), 255)
    for fmt in ("PNG", "TIFF", "BMP"):
        assert pixel_list(load_image(encode(image, fmt)).image) == [BLACK, WHITE], fmt


# --- arrays


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        (np.array([[0, 255]], np.uint8), [BLACK, WHITE]),
        (np.array([[[0], [255]]], np.uint8), [BLACK, WHITE]),
        (np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8), [RED, BLUE]),
        (np.array([[[255, 0, 0, 255], [0, 0, 0, 0]]], np.uint8), [RED, WHITE]),
        (np.array([[0, 25700, 65535]], np.uint16), [BLACK, (100, 100, 100), WHITE]),
        (np.array([[0, 25700, 65535]], ">u2"), [BLACK, (100, 100, 100), WHITE]),
        (np.array([[False, True]]), [BLACK, WHITE]),
        (np.array([[0.0, 0.5, 1.0]], np.float32), [BLACK, (128, 128, 128), WHITE]),
        (np.array([[0.0, 1.0]], np.float16), [BLACK, WHITE]),
        (np.array([[[1.0, 0.0, 0.0]]], np.float64), [RED]),
    ],
)
def test_arrays_of_each_shape_and_dtype(pixels: np.ndarray, expected: list[tuple[int, int, int]]) -> None:
    loaded = load_image(pixels)
    assert pixel_list(loaded.image) == expected
    assert (loaded.width, loaded.height) == (pixels.shape[1], pixels.shape[0])


def test_non_contiguous_arrays_are_accepted() -> None:
    pixels = blocks()
    assert np.array_equal(np.asarray(load_image(pixels[:, ::-1]).image), pixels[:, ::-1])


@pytest.mark.parametrize(
    "pixels",
    [
        np.array([[np.nan, 0.5]]),
        np.array([[np.inf, 0.5]]),
        np.array([[-0.1, 0.5]]),
        np.array([[1.1, 0.5]]),
        np.zeros(5, np.uint8),
        np.zeros((2, 2, 3, 1), np.uint8),
        np.zeros((2, 2, 2), np.uint8),
        np.zeros((0, 4), np.uint8),
        np.zeros((2, 2), np.int32),
        np.zeros((2, 2), np.uint32),
        np.zeros((2, 2), np.complex64),
        np.zeros((2, 2), object),
    ],
)
def test_arrays_that_are_not_images_are_refused(pixels: np.ndarray) -> None:
    with pytest.raises(NotAnImageError, match="<array>"):
        load_image(pixels)


# --- bad input


def test_zero_byte_file_and_buffer(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.png", b"")
    with pytest.raises(EmptyImageError, match="empty.png"):
        load_image(path)
    with pytest.raises(EmptyImageError, match="<bytes>"):
        load_image(b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(tmp_path: Path, fmt: str) -> None:
    data = encode(Image.open(io.BytesIO(noise_png())), fmt)
    path = write(tmp_path / f"cut.{fmt.lower()}", data[: len(data) // 2])
    with pytest.raises(TruncatedImageError, match=f"cut.{fmt.lower()}.*truncated"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_garbage_after_a_valid_signature_is_corrupt(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    with pytest.raises(TruncatedImageError, match="bad.png"):
        load_image(path)


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.jpg", b"just some text, not a photo\n")
    with pytest.raises(NotAnImageError, match="notes.jpg"):
        load_image(path)


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("icon.ico", encode(Image.new("RGB", (16, 16)), "ICO"), "ICO"),
        ("picture.ppm", encode(Image.new("RGB", (4, 4)), "PPM"), "PPM"),
        ("doc.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        ("layers.psd", b"8BPS\x00\x01" + bytes(20), "PSD"),
    ],
)
def test_recognised_but_unsupported_formats_name_the_format(
    tmp_path: Path, name: str, data: bytes, fmt: str
) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(UnsupportedFormatError, match=f"{name}: unsupported format {fmt}"):
        load_image(path)


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.png", png_claiming(10_000, 10_000))  # 1e8 pixels, Pillow only warns
    with pytest.raises(ImageTooLargeError, match="bomb.png.*100,000,000 pixels"):
        load_image(path)
    bomb = write(tmp_path / "bomb.png", png_claiming(100_000, 100_000))  # Pillow refuses it before we see its size
    with pytest.raises(ImageTooLargeError) as refused:
        load_image(bomb)
    assert str(refused.value).endswith("bomb.png: 10,000,000,000 pixels, over the limit of 64,000,000 "
                                       "(ImageLimits.max_pixels)")  # lookalike's own limit, not Pillow's words
    with pytest.raises(ImageTooLargeError, match="over Pillow's own limit of 178,956,970 .*raise both"):
        load_image(write(tmp_path / "b.png", png_claiming(15_000, 15_000)), limits=ImageLimits(max_pixels=10**9))
    with pytest.raises(ImageTooLargeError, match="<bytes>.*ImageLimits.max_pixels"):
        load_image(png_claiming(300, 300), limits=ImageLimits(max_pixels=50_000))


def test_pixel_limit_applies_to_arrays_and_pil_images() -> None:
    limits = ImageLimits(max_pixels=100)
    with pytest.raises(ImageTooLargeError, match="<array>"):
        load_image(np.zeros((11, 10), np.uint8), limits=limits)
    with pytest.raises(ImageTooLargeError, match="<PIL image>"):
        load_image(Image.new("RGB", (11, 10)), limits=limits)
    assert load_image(np.zeros((10, 10), np.uint8), limits=limits).image.size == (10, 10)


def test_byte_limit_is_checked_before_reading(tmp_path: Path) -> None:
    data = noise_png()
    limits = ImageLimits(max_bytes=len(data) - 1)
    path = write(tmp_path / "big.png", data)
    with pytest.raises(ImageTooLargeError, match="big.png.*ImageLimits.max_bytes"):
        read_bytes(path, limits)
    with pytest.raises(ImageTooLargeError, match="big.png"):
        load_image(path, limits=limits)
    with pytest.raises(ImageTooLargeError, match="<bytes>"):
        load_image(memoryview(data), limits=limits)
    assert load_image(path, limits=ImageLimits(max_bytes=len(data))).width == 64


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.png"
    with pytest.raises(ImageNotFoundError, match="nowhere.png: no such file") as caught:
        load_image(missing)
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(ImageNotFoundError, match="inside"):
        load_image(write(tmp_path / "file.png", noise_png()) / "inside")


def test_directory_passed_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageUnreadableError, match="folder.png: is a directory"):
        load_image(tmp_path / "folder.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageUnreadableError, match="pipe.png: not a regular file"):
        load_image(tmp_path / "pipe.png")


@pytest.mark.skipif(AS_ROOT or os.name == "nt", reason=ROOT_REASON)
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.png", noise_png())
    path.chmod(0)
    try:
        with pytest.raises(ImageUnreadableError, match="secret.png: permission denied"):
            load_image(path)
    finally:
        path.chmod(0o600)


def test_unknown_source_type_and_bad_options() -> None:
    for source in ([1, 2], 3, None):
        with pytest.raises(InvalidParameterError, match="path, bytes, an array or a PIL image"):
            load_image(source)  # type: ignore[arg-type]
    for draft in ((0, 10), (10,), "10,10", (1.5, 2)):
        with pytest.raises(InvalidParameterError, match="draft"):
            load_image(noise_png(), draft=draft)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="box"):
        load_image(noise_png(), box="0,0,1,1")  # type: ignore[arg-type]
    bad: dict[str, Any]
    for bad in ({"max_pixels": 0}, {"max_bytes": -1}, {"max_bytes": True}, {"max_pixels": 1.5}):
        with pytest.raises(InvalidParameterError, match="ImageLimits"):
            ImageLimits(**bad)


def mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    """Seeded corruptions: flipped bytes, and cuts at many offsets."""
    rng = np.random.default_rng(seed)
    out = [data[:cut] for cut in range(1, len(data), max(1, len(data) // count))]
    for _ in range(count):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), 3):
            damaged[position] = int(rng.integers(0, 256))
        out.append(bytes(damaged))
    return out


@pytest.mark.parametrize("fmt", sorted(ENCODINGS))
def test_no_raw_pillow_exception_or_warning_escapes_on_damaged_data(fmt: str) -> None:
    data = encode(Image.fromarray(blocks(16, 16)), fmt, **ENCODINGS[fmt])
    for seed, damaged in enumerate(mutations(data, seed=len(fmt), count=40)):
        try:
            load_image(damaged)
        except ImageError:
            pass
        except Exception as err:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{fmt} mutation {seed}: {type(err).__name__}: {err}")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_concurrent_loads_leave_the_warning_filters_as_they_were() -> None:
    data = [noise_png(seed) for seed in range(8)] + [png_claiming(10_000, 10_000)]  # PIL warns on this one
    before = list(warnings.filters)

    def load(source: bytes) -> str:
        try:
            return load_image(source).sha256
        except ImageTooLargeError as err:
            return err.reason

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(load, data * 20))
    assert warnings.filters == before
    assert len(set(results)) == len(data)


# --- sniffing, boxes


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"GIF89a\x01\x00", "GIF"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00", "BMP"),
        (b"II*\x00\x08\x00", "TIFF"),
        (b"MM\x00*\x00\x00", "TIFF"),
        (b"\x00\x00\x01\x00\x01\x00", "ICO"),
        (b"P6\n4 4\n255\n", "PPM"),
        (b"P5 4 4 255 ", "PGM"),
        (b"%PDF-1.4", "PDF"),
        (b"8BPS\x00\x01", "PSD"),
        (b"\x00\x00\x00\x18ftypheic", "HEIC"),
        (b"\x00\x00\x00\x18ftypavif", "AVIF"),
        (b"\x00\x00\x00\x18ftypisom", None),  # an MP4 video
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"BMW is a car, not a bitmap", None),
        (b"Plain text", None),
        (b"", None),
    ],
)
def test_sniff_format(header: bytes, expected: str | None) -> None:
    assert sniff_format(header) == expected
    assert (expected in SUPPORTED_FORMATS) == (expected in {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIC", "HEIF",
                                                            "AVIF"})


def test_is_image_file_looks_at_content(tmp_path: Path) -> None:
    assert is_image_file(write(tmp_path / "no_extension", noise_png()))
    assert not is_image_file(write(tmp_path / "fake.jpg", b"hello"))
    assert not is_image_file(write(tmp_path / "icon.png", encode(Image.new("RGB", (8, 8)), "ICO")))
    assert not is_image_file(tmp_path)
    assert not is_image_file(tmp_path / "missing.png")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1,2,3,4", Box(1, 2, 3, 4)), (" 10 , 20,30 ,40 ", Box(10, 20, 30, 40)), ("0,0,1,1", Box(0, 0, 1, 1))],
)
def test_box_parse_accepts(text: str, expected: Box) -> None:
    assert Box.parse(text) == expected
    assert Box.parse(str(expected)) == expected


@pytest.mark.parametrize(
    "text",
    ["1,2,3", "1,2,3,4,5", "a,b,c,d", "-1,0,5,5", "0,0,0,5", "0,0,5,0", "1.5,2,3,4", "", " ", "1;2;3;4",
     "\u0663,1,1,1", "+1,2,3,4", "1_0,2,3,4", "99999999999,0,1,1", "0,0,2147483648,1", "9" * 5000 + ",0,1,1"],
)
def test_box_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="[Bb]ox"):
        Box.parse(text)


def test_box_parse_refuses_non_strings_and_box_validates_fields() -> None:
    with pytest.raises(InvalidParameterError):
        Box.parse(None)  # type: ignore[arg-type]
    fields: tuple[Any, ...]
    for fields in ((-1, 0, 1, 1), (0, 0, 1.5, 1), (0, 0, True, 1), (2**31, 0, 1, 1)):
        with pytest.raises(InvalidParameterError, match="Box"):
            Box(*fields)


def test_box_clip() -> None:
    assert Box(5, 5, 10, 10).clip(8, 20) == Box(5, 5, 3, 10)
    assert Box(0, 0, 4, 4).clip(8, 8) == Box(0, 0, 4, 4)
    assert Box(10, 0, 4, 4).clip(8, 8).is_empty
    assert Box(0, 2**31 - 1, 2**31 - 1, 2**31 - 1).clip(8, 8).is_empty


def test_crop_clips_to_the_image_and_refuses_empty_regions() -> None:
    image = Image.fromarray(blocks())
    part = crop(image, Box(24, 12, 100, 100))
    assert part.size == (8, 4) and set(pixel_list(part)) == {WHITE}
    with pytest.raises(InvalidRegionError, match="shot.png: box 32,0,5,5"):
        crop(image, Box(32, 0, 5, 5), "shot.png")


def test_load_image_with_a_box(tmp_path: Path) -> None:
    path = write(tmp_path / "shot.png", encode(Image.fromarray(blocks(64, 32)), "PNG"))
    loaded = load_image(path, box=Box.parse("32,0,32,16"))
    assert loaded.image.size == (32, 16) and set(pixel_list(loaded.image)) == {GREEN}
    assert (loaded.width, loaded.height) == (64, 32)
    with pytest.raises(InvalidRegionError, match="shot.png: box 100,100,5,5 .*lies outside the 64x32 image"):
        load_image(path, box=Box(100, 100, 5, 5))
    assert load_image(blocks(64, 32), box=Box(0, 16, 32, 16)).image.getpixel((0, 0)) == BLUE


@pytest.mark.parametrize(("box", "words"), [
    (Box(40, 0, 30, 20), "box 40,0,30,20 (x,y,w,h) extends past the 64x32 image: x + w must be at most 64"),
    (Box(0, 20, 16, 16), "extends past the 64x32 image: x + w must be at most 64 and y + h at most 32"),
    (Box(0, 0, 1, 1), "box 0,0,1,1 (x,y,w,h) is 1x1 pixels; a region must be at least 16x16 pixels"),
    (Box(0, 0, 64, 15), "is 64x15 pixels; a region must be at least 16x16"),
])
def test_a_region_partly_outside_or_too_small_is_refused(box: Box, words: str) -> None:
    """Issue 11.9: a box partly outside the image was clipped silently, and a 1x1 box searched."""
    with pytest.raises(InvalidRegionError) as refused:
        load_image(blocks(64, 32), box=box)
    assert words in str(refused.value)


def test_a_tiny_image_may_be_searched_whole_by_a_box() -> None:
    assert load_image(blocks(8, 6), box=Box(0, 0, 8, 6)).image.size == (8, 6)  # the minimum is the image's side
    with pytest.raises(InvalidRegionError, match="at least 8x6"):
        load_image(blocks(8, 6), box=Box(0, 0, 8, 5))


# --- find_images


def test_find_images_walks_a_tree_by_content(tmp_path: Path) -> None:
    png, root = noise_png(), tmp_path / "photos"
    expected = [
        write(root / "a.png", png),
        write(root / "sub" / "deeper" / "b.jpg", encode(Image.new("RGB", (4, 4)), "JPEG")),
        write(root / "sub" / "no_extension", png),
        write(root / "truncated.png", png[:100]),  # only the header is checked here
    ]
    write(root / "fake.jpg", b"this is not a photo")
    write(root / "empty.png", b"")
    write(root / "doc.gif", b"%PDF-1.4 ...")
    write(root / "notes.txt", b"ignored silently")
    write(root / "icon.ico", encode(Image.new("RGB", (8, 8)), "ICO"))  # no image extension: ignored
    write(root / ".hidden" / "c.png", png)
    write(root / ".lookalike" / "d.png", png)
    write(root / "._resource_fork.jpg", b"\x00\x05\x16\x07")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "broken.png").symlink_to(root / "gone.png")
    found, skipped = find_images(root)
    assert found == expected
    assert [(Path(item.source).name, item.reason.split(" (")[0]) for item in skipped] == [
        ("broken.png", "broken symbolic link"),
        ("doc.gif", "unsupported format PDF"),
        ("empty.png", "empty"),
        ("fake.jpg", "not an image"),
        ("loop", f"symbolic link to a folder indexed as {root} already"),  # issue 11.8: no longer silent
    ]
    assert all(isinstance(item, Skipped) for item in skipped)


def test_find_images_lists_a_symlinked_folder_once(tmp_path: Path) -> None:
    write(tmp_path / "real" / "a.png", noise_png())
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    found, skipped = find_images(tmp_path)
    assert found == [tmp_path / "real" / "a.png"]  # the real path, though "alias" sorts first
    assert skipped == [Skipped(str(tmp_path / "alias"), f"symbolic link to a folder indexed as {tmp_path / 'real'} "
                                                        "already")]


def test_find_images_root_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="missing"):
        find_images(tmp_path / "missing")
    with pytest.raises(InvalidParameterError, match="a.png"):
        find_images(write(tmp_path / "a.png", noise_png()))


@pytest.mark.skipif(AS_ROOT or os.name == "nt", reason=ROOT_REASON)
def test_find_images_reports_unreadable_folders(tmp_path: Path) -> None:
    write(tmp_path / "locked" / "a.png", noise_png())
    (tmp_path / "locked").chmod(0)
    try:
        found, skipped = find_images(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert found == [] and skipped == [Skipped(str(tmp_path / "locked"), "permission denied")]


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_photo_formats_decode_upright(fmt: str) -> None:
    """Issue 11: HEIC phone photos were not read at all (pillow-heif; AVIF by Pillow itself)."""
    import pillow_heif  # noqa: F401  (registers the HEIF plugin, as lookalike.images does)

    pixels = np.full((60, 120, 3), 255, np.uint8)
    pixels[:20, :20] = RED
    data = encode(Image.fromarray(pixels), fmt, quality=90)
    assert sniff_format(data[:16]) in ({"HEIC", "HEIF"} if fmt == "HEIF" else {"AVIF"})
    loaded = load_image(data)
    assert loaded.image.size == (120, 60) and loaded.format in ("HEIC", "HEIF", "AVIF") and is_red(loaded.image, 5, 5)
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 2])


def test_a_progressive_jpeg_at_one_eighth_skips_the_scans_it_does_not_use() -> None:
    """Issue 11: a 5120x2880 progressive JPEG query spent most of its decode on AC scans a 1/8 decode drops."""
    from lookalike.images._jpeg import dc_only

    rng = np.random.default_rng(3)
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((1024, 768)))
    noisy = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(noisy), "JPEG", quality=90, progressive=True, exif=exif.tobytes())
    reduced = dc_only(data)
    assert reduced is not None and len(reduced) < len(data) / 3  # most of the bytes were the luma's AC scans
    assert dc_only(encode(Image.fromarray(noisy), "JPEG", quality=90)) is None  # baseline: nothing to drop
    small = load_image(data, draft=(96, 96))
    assert small.image.size == (96, 128) and (small.width, small.height) == (768, 1024)  # 1/8, upright
    whole = Image.open(io.BytesIO(data))
    whole.draft("RGB", (128, 96))
    reference = np.asarray(whole.convert("RGB").transpose(Image.Transpose.ROTATE_270), dtype=np.float64)
    assert np.abs(np.asarray(small.image, dtype=np.float64) - reference).mean() < 2.0  # ~1 grey level
    half = load_image(data, draft=(200, 200))  # 1/2 scale needs the AC scans: the whole file, as before
    whole = Image.open(io.BytesIO(data))
    whole.draft("RGB", (200, 200))
    upright = whole.convert("RGB").transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(np.asarray(half.image), np.asarray(upright))
    for cut in (len(reduced) // 2, len(data) - 10):  # a file cut short is truncated, whatever scans it lost
        assert dc_only(data[:cut]) is None
        with pytest.raises(TruncatedImageError):
            load_image(data[:cut], draft=(96, 96))
