"""``--crop auto`` end to end through the library, the CLI and the HTTP API: a composite query finds its product
higher with the crop than without; the crop at ingest keeps its box; hostile input gets the usual errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from lookalike import Catalog
from lookalike.catalog.crop import CROP_FEATURE, CROP_SETTING
from lookalike.cli import main
from lookalike.errors import EncoderError, InvalidParameterError
from lookalike.localise.mask import mask_background

from .conftest import live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def _shop_catalog(shop: tuple[Path, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("loc-cat") / "cat"
    with Catalog(path, create=True) as cat:
        cat.index_folder(shop[0])
    return path


@pytest.fixture
def shop_catalog(_shop_catalog: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(_shop_catalog, tmp_path / "cat"))


def _rank(hits: list, product: str) -> int:
    return next((r for r, h in enumerate(hits, 1) if h.id == product), 41)


def test_crop_auto_finds_composite_queries_products_higher(shop: tuple[Path, list[Path]], shop_catalog: Path,
                                                            small_model: Path) -> None:
    with Catalog(shop_catalog) as cat:
        cat.put_setting(CROP_SETTING, str(small_model))
        plain = [_rank(cat.search(q, k=40), q.name) for q in shop[1]]
        cropped = [_rank(cat.search(q, k=40, crop="auto"), q.name) for q in shop[1]]
        assert [_rank(cat.search(q, k=40, crop=f"auto:{small_model}"), q.name) for q in shop[1]] == cropped
        manual = cat.search(shop[1][0], k=40, crop="auto", box="0,0,64,64")  # a manual box wins
        assert [h.id for h in manual] == [h.id for h in cat.search(shop[1][0], k=40, box="0,0,64,64")]
    # more products in the top 3 with the crop, and most queries at least as high (seeded: ranks [2, 2, 1, 1, 18,
    # 3] cropped against [7, 13, 1, 1, 1, 4] whole, when written)
    assert sum(r <= 3 for r in cropped) > sum(r <= 3 for r in plain), (cropped, plain)
    assert sum(c <= p for c, p in zip(cropped, plain, strict=True)) >= 4, (cropped, plain)


def test_cli_index_with_crop_keeps_boxes_and_search_shows_its_box(shop: tuple[Path, list[Path]], tmp_path: Path,
                                                                   small_model: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cat_path = tmp_path / "cropped"
    folder = tmp_path / "few"
    folder.mkdir()
    for q in shop[1][:3]:
        shutil.copy(q, folder / q.name)
    assert main(["index", str(folder), "--catalog", str(cat_path), "--crop", f"auto:{small_model}"]) == 0
    capsys.readouterr()
    with Catalog(cat_path) as cat:
        assert cat.setting(CROP_SETTING) == str(small_model.resolve())
        boxes = cat.features(CROP_FEATURE)
        assert len(boxes) == 3 and all(b.count(b",") == 3 for b in boxes.values())
        own = cat.search(folder / shop[1][0].name, k=1, crop="auto")[0]  # its own crop: its own vector
        assert own.id == shop[1][0].name and own.score == pytest.approx(1.0, abs=1e-5)
    assert main(["get", shop[1][0].name, "--catalog", str(cat_path)]) == 0
    assert "cropped to " in capsys.readouterr().out
    code = main(["search", str(folder / shop[1][1].name), "--catalog", str(cat_path), "--crop", "auto", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["crop"] == "auto" and out["results"][0]["id"] == shop[1][1].name
    assert out["box"] is None or len(out["box"].split(",")) == 4
    # a catalogue indexed with a crop does not take another one
    code = main(["index", str(folder), "--catalog", str(cat_path), "--crop", "none"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("lookalike: error: ") and err.count("\n") == 1 and "mix crops" in err


def test_cli_crop_errors_are_one_line(shop: tuple[Path, list[Path]], shop_catalog: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.localiser"
    junk.write_bytes(b"not a model")
    for extra, words in ((["--crop", "auto"], "crop=auto needs a localiser model"),
                         (["--crop", f"auto:{junk}"], "not a localiser model file"),
                         (["--crop", "sometimes"], "The 'crop' parameter must be")):
        code = main(["search", str(shop[1][0]), "--catalog", str(shop_catalog), *extra])
        err = capsys.readouterr().err
        assert code == 1 and err.startswith("lookalike: error: ") and err.count("\n") == 1 and words in err, err
    code = main(["index", str(tmp_path), "--catalog", str(tmp_path / "new"), "--crop", f"auto:{junk}"])
    err = capsys.readouterr().err
    assert code == 1 and "not a localiser model file" in err and err.count("\n") == 1


def test_library_crop_errors(shop: tuple[Path, list[Path]], shop_catalog: Path, tmp_path: Path) -> None:
    with Catalog(shop_catalog) as cat:
        with pytest.raises(InvalidParameterError, match="crop=auto needs a localiser model"):
            cat.search(shop[1][0], crop="auto")
        with pytest.raises(EncoderError, match="no such localiser model file"):
            cat.search(shop[1][0], crop=f"auto:{tmp_path / 'gone'}")
        with pytest.raises(InvalidParameterError, match="'crop'"):
            cat.search(shop[1][0], crop="auto:")


@pytest.fixture
def http(shop_catalog: Path, small_model: Path) -> Iterator[httpx.Client]:
    with Catalog(shop_catalog) as cat:
        cat.put_setting(CROP_SETTING, str(small_model))
    with live_server(shop_catalog) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_http_crop_auto_returns_the_query_box(http: httpx.Client, shop: tuple[Path, list[Path]]) -> None:
    query = shop[1][2]
    files = {"image": (query.name, query.read_bytes(), "image/png")}
    plain = http.post("/search", files=files, data={"k": "40"}).json()
    cropped = http.post("/search", files=files, data={"k": "40", "crop": "auto"}).json()
    assert plain["query"]["box"] is None and plain["query"]["crop"] is None
    assert cropped["query"]["crop"] == "auto" and len(cropped["query"]["box"].split(",")) == 4
    raw = http.post("/search?crop=auto&k=40", content=query.read_bytes()).json()
    assert raw["query"]["box"] == cropped["query"]["box"]
    ranks = [next(r for r, h in enumerate(x["results"], 1) if h["id"] == query.name) for x in (plain, cropped)]
    assert ranks[1] <= ranks[0]


def test_http_crop_errors_are_422(http: httpx.Client, shop: tuple[Path, list[Path]], shop_catalog: Path,
                                  small_model: Path) -> None:
    data = shop[1][0].read_bytes()
    for value in (f"auto:{small_model}", "yes", "auto:/etc/passwd"):  # a client never names a file on the server
        answer = http.post("/search", files={"image": ("q.png", data, "image/png")}, data={"crop": value})
        assert answer.status_code == 422 and "'crop'" in answer.json()["error"]["message"], answer.text
    with Catalog(shop_catalog) as cat:
        cat.put_setting(CROP_SETTING, None)
    answer = http.post("/search", files={"image": ("q.png", data, "image/png")}, data={"crop": "auto"})
    assert answer.status_code == 422 and "crop=auto needs a localiser model" in answer.json()["error"]["message"]


def test_http_a_broken_localiser_names_no_server_file(http: httpx.Client, shop: tuple[Path, list[Path]],
                                                      shop_catalog: Path, tmp_path: Path) -> None:
    broken = tmp_path / "secret-dir" / "broken.localiser"
    broken.parent.mkdir()
    broken.write_bytes(b"not a model")
    data = shop[1][0].read_bytes()
    for model in (broken, tmp_path / "secret-dir" / "missing.localiser"):
        with Catalog(shop_catalog) as cat:
            cat.put_setting(CROP_SETTING, str(model))
        answer = http.post("/search", files={"image": ("q.png", data, "image/png")}, data={"crop": "auto"})
        assert answer.status_code >= 400 and "error" in answer.json()
        assert "secret-dir" not in answer.text and str(tmp_path) not in answer.text, answer.text


def test_crop_mask_values_parse() -> None:
    from lookalike.catalog.crop import mask_setting, masks, model_of, parse_crop

    for good in ("auto", "auto,mask", "auto:m.localiser", "auto:m.localiser,mask"):
        assert parse_crop(good) == good
    assert [masks(v) for v in (None, "none", "auto", "auto,mask", "auto:m,mask")] == [False, False, False, True, True]
    assert model_of("auto:dir/m.localiser,mask", None) == "dir/m.localiser"
    assert model_of("auto,mask", "cat.localiser") == "cat.localiser"
    for bad in ("mask", ",mask", "auto,", "auto:,mask", "auto,mask,mask", "auto, mask", "AUTO,MASK", 1):
        with pytest.raises(InvalidParameterError, match="'crop' parameter"):
            parse_crop(bad)
    assert mask_setting(None) is False and mask_setting("grabcut") is True
    with pytest.raises(InvalidParameterError, match="crop.mask must be 'grabcut'"):
        mask_setting("yes")


def test_crop_auto_mask_searches_the_masked_box(shop: tuple[Path, list[Path]], shop_catalog: Path,
                                                small_model: Path) -> None:
    with Catalog(shop_catalog) as cat:
        cat.put_setting(CROP_SETTING, str(small_model))
        pipe = cat.pipeline
        changed = 0
        for q in shop[1]:
            whole, plain, masked = (pipe.decode(q, crop=c) for c in (None, "auto", "auto,mask"))
            assert masked.crop == "auto,mask" and plain.crop == "auto" and masked.box == plain.box is not None
            a, b = np.asarray(plain.loaded.image), np.asarray(masked.loaded.image)
            assert a.shape == b.shape  # the same box, GrabCut's background painted out:
            assert np.array_equal(b, np.asarray(mask_background(whole.loaded.image, masked.box)))
            changed += (a != b).any(axis=-1).mean() > 0.05
        assert changed >= 3
        hits = cat.search(shop[1][0], k=5, crop="auto,mask")
        assert hits == cat.search(shop[1][0], k=5, crop=f"auto:{small_model},mask")
        assert [h.id for h in cat.search(shop[1][0], k=5, crop="auto,mask", box="0,0,64,64")] == \
            [h.id for h in cat.search(shop[1][0], k=5, box="0,0,64,64")]  # a manual box wins
        cat.put_setting(CROP_SETTING, None)
        with pytest.raises(InvalidParameterError, match="crop=auto needs a localiser model"):
            cat.search(shop[1][0], crop="auto,mask")


def test_cli_index_with_crop_mask_keeps_the_setting(shop: tuple[Path, list[Path]], tmp_path: Path,
                                                    small_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.catalog.crop import MASK_SETTING

    cat_path, folder = tmp_path / "masked", tmp_path / "few"
    folder.mkdir()
    for q in shop[1][:3]:
        shutil.copy(q, folder / q.name)
    assert main(["index", str(folder), "--catalog", str(cat_path), "--crop", f"auto:{small_model},mask"]) == 0
    capsys.readouterr()
    with Catalog(cat_path) as cat:
        assert cat.setting(CROP_SETTING) == str(small_model.resolve()) and cat.setting(MASK_SETTING) == "grabcut"
        query = folder / shop[1][0].name
        for q in shop[1][:3]:  # masked as ingest masked them: their own vectors
            own = cat.search(folder / q.name, k=1, crop="auto,mask")[0]
            assert own.id == q.name and own.score == pytest.approx(1.0, abs=1e-5)
        unmasked = [cat.search(folder / q.name, k=1, crop="auto")[0].score for q in shop[1][:3]]
        assert min(unmasked) < 1 - 1e-4, unmasked  # without the mask: other vectors
    code = main(["search", str(folder / shop[1][1].name), "--catalog", str(cat_path), "--crop", "auto,mask",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["crop"] == "auto,mask" and out["results"][0]["id"] == shop[1][1].name
    assert main(["search", str(query), "--catalog", str(cat_path), "--crop", "auto,mask"]) == 0
    shown = capsys.readouterr().out
    assert "cropped to " in shown and ("its background masked" in shown or "no object found" in shown), shown
    for other in (f"auto:{small_model}", "none"):  # the same model unmasked is another crop
        code = main(["index", str(folder), "--catalog", str(cat_path), "--crop", other])
        err = capsys.readouterr().err
        assert code == 1 and "mix crops" in err and "background masked" in err and err.count("\n") == 1, err
    code = main(["index", str(folder), "--catalog", str(tmp_path / "new"), "--crop", "auto,mask"])
    err = capsys.readouterr().err
    assert code == 1 and "names the model" in err and err.count("\n") == 1
    with Catalog(cat_path) as cat:
        cat.put_setting(MASK_SETTING, "yes")  # a typo does not index unmasked
        with pytest.raises(InvalidParameterError, match="crop.mask must be 'grabcut'"):
            cat.add(folder / shop[1][2].name, id="again")


def test_http_crop_auto_mask(http: httpx.Client, shop: tuple[Path, list[Path]], small_model: Path) -> None:
    query = shop[1][2]
    files = {"image": (query.name, query.read_bytes(), "image/png")}
    cropped = http.post("/search", files=files, data={"k": "10", "crop": "auto"}).json()
    masked = http.post("/search", files=files, data={"k": "10", "crop": "auto,mask"}).json()
    assert masked["query"]["crop"] == "auto,mask" and masked["query"]["box"] == cropped["query"]["box"]
    raw = http.post("/search?crop=auto,mask&k=10", content=query.read_bytes()).json()
    assert raw["query"] == masked["query"] and [h["id"] for h in raw["results"]] == \
        [h["id"] for h in masked["results"]]
    for value in (f"auto:{small_model},mask", "mask", "auto,mask,mask", "auto;mask"):
        answer = http.post("/search", files=files, data={"crop": value})
        assert answer.status_code == 422 and "'crop'" in answer.json()["error"]["message"], answer.text
    spec = http.get("/openapi.json").json()
    assert "auto,mask" in json.dumps(spec)


def test_a_localiser_that_cannot_mask_is_refused_clearly() -> None:
    """A third-party localiser registered without ``mask_crop`` gets a clear error for ',mask', not an
    AttributeError (an HTTP 500)."""
    from PIL import Image

    from lookalike.catalog.crop import crop_loaded
    from lookalike.errors import InvalidParameterError
    from lookalike.images import Box, load_image

    class BoxOnly:
        def crop_box(self, image: Image.Image) -> Box | None:
            return Box(2, 2, 20, 20)

    loaded = load_image(Image.new("RGB", (40, 40), (90, 120, 30)))
    cut, box = crop_loaded(loaded, BoxOnly())
    assert box == Box(2, 2, 20, 20) and cut.image.size == (20, 20)
    with pytest.raises(InvalidParameterError, match="cannot remove backgrounds"):
        crop_loaded(loaded, BoxOnly(), mask=True)
