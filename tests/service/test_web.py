"""The web page end to end in headless Chromium (Debian's /usr/bin/chromium driven by Playwright, no download).

Upload a query, see result thumbnails, draw a box and get different results, click a result to search from it;
browse the catalogue, add and delete with the API key; review the duplicate groups and delete a group's copies, and
see the duplicates of an added image. ``LOOKALIKE_SCREENSHOT=path.png`` keeps a screenshot of
the results page (docs/web-results.png is made this way).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import API_KEY, ServerFactory, edited, encode, photo

CHROMIUM = os.environ.get("LOOKALIKE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, errors
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1:", "blob:", "data:"))]
    assert not outside, f"the page loaded something from elsewhere: {outside}"


def result_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#results .result", "tiles => tiles.map(t => t.dataset.id)")


def wait_for_search(page: Any, n: int) -> list[str]:
    page.wait_for_selector(f'body[data-searches="{n}"]', timeout=20_000)
    return result_ids(page)


def test_upload_draw_a_box_and_click_a_result(serve: ServerFactory, catalog_copy: Path, page: Any,
                                              tmp_path: Path) -> None:
    server = serve(catalog_copy)
    query = tmp_path / "astronaut.jpg"
    query.write_bytes(encode(photo("astronaut").resize((400, 400)), quality=80))

    page.goto(server.url + "/")
    page.set_input_files("#file", str(query))
    first = wait_for_search(page, 1)
    assert first[0] == "astronaut/whole" and len(first) == 20
    page.wait_for_function("() => [...document.querySelectorAll('#results img')].every(i => i.naturalWidth > 0)")
    assert page.inner_text("#results .result .score").strip()  # each tile shows its score

    # drag over the lower-left quarter of the displayed image: a region search
    img = page.query_selector("#query-img").bounding_box()
    x0, y0 = img["x"] + img["width"] * 0.02, img["y"] + img["height"] * 0.52
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + img["width"] * 0.2, y0 + img["height"] * 0.2, steps=5)
    page.mouse.move(img["x"] + img["width"] * 0.48, img["y"] + img["height"] * 0.98, steps=5)
    page.mouse.up()
    region = wait_for_search(page, 2)
    assert region != first and region[0] == "astronaut/q2"
    assert page.is_visible("#box") and "region" in page.inner_text("#status")
    if os.environ.get("LOOKALIKE_SCREENSHOT"):
        page.wait_for_function("() => [...document.querySelectorAll('#results img')].every(i => i.complete)")
        page.screenshot(path=os.environ["LOOKALIKE_SCREENSHOT"], full_page=False)

    # click the third result: the page searches "more like" that item
    clicked = region[2]
    page.click(f'#results .result[data-id="{clicked}"]')
    third = wait_for_search(page, 3)
    assert clicked not in third and third != region
    assert clicked in page.inner_text("#query-caption")
    assert page.eval_on_selector("#query-img", "i => i.naturalWidth") > 0  # the item's image is now the query

    # the "whole image" button goes back to the unboxed search of the same query
    page.mouse.move(img["x"] + 20, img["y"] + 20)
    page.mouse.down()
    page.mouse.move(img["x"] + 120, img["y"] + 120, steps=4)
    page.mouse.up()
    wait_for_search(page, 4)
    page.click("#whole")
    assert wait_for_search(page, 5) == third


DROP = """async ([b64, name]) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, {type: "image/jpeg"}));
    const event = new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true});
    document.getElementById("drop").dispatchEvent(event);
}"""


def test_drop_an_image_then_a_bad_upload_shows_the_error(serve: ServerFactory, catalog_copy: Path, page: Any,
                                                         tmp_path: Path) -> None:
    import base64

    server = serve(catalog_copy)
    page.goto(server.url + "/")
    page.evaluate(DROP, [base64.b64encode(encode(photo("rocket"))).decode(), "rocket.jpg"])
    assert wait_for_search(page, 1)[0] == "rocket/whole"
    assert "rocket.jpg" in page.inner_text("#query-caption")
    page.click("#new-query")
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#status.error", timeout=20_000)
    assert "not an image" in page.inner_text("#status")


def test_browse_add_and_delete(serve: ServerFactory, catalog_copy: Path, page: Any, tmp_path: Path) -> None:
    server = serve(catalog_copy)
    new = tmp_path / "hubble.jpg"
    new.write_bytes(encode(photo("hubble_deep_field")))
    page.goto(server.url + "/browse")
    page.wait_for_selector("#catalog .tile")
    assert page.inner_text("#page-info") == "1–40 of 40"
    assert page.is_hidden("#upload")  # no key yet

    page.fill("#api-key", API_KEY)
    page.wait_for_selector("#upload", state="visible")
    page.set_input_files("#upload-file", str(new))
    page.fill("#upload-id", "space/hubble")
    page.fill("#upload-meta", '{"photo": "hubble"}')
    page.click("#upload button[type=submit]")
    page.wait_for_function("() => document.getElementById('page-info').textContent === '1–41 of 41'")
    assert "added space/hubble" in page.inner_text("#browse-status")

    page.on("dialog", lambda dialog: dialog.accept())
    page.click('#catalog .tile[data-id="space/hubble"] .delete')
    page.wait_for_function("() => document.getElementById('page-info').textContent === '1–40 of 40'")
    assert page.query_selector('#catalog .tile[data-id="space/hubble"]') is None

    page.fill("#api-key", "a-wrong-key-123")
    page.set_input_files("#upload-file", str(new))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#browse-status.error")
    assert "invalid API key" in page.inner_text("#browse-status")

    # a tile of the catalogue is a query too
    page.click('#catalog .tile[data-id="coffee/whole"]')
    ids = wait_for_search(page, 1)
    assert "coffee/whole" not in ids and len(ids) == 20 and "coffee/whole" in page.inner_text("#query-caption")
    assert page.url.endswith("/")



def wait_judged(page: Any, n: int) -> None:
    page.wait_for_selector(f'body[data-judged="{n}"]', timeout=20_000)


def marked(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#results .result.similar, #results .result.dissimilar",
        "tiles => Object.fromEntries(tiles.map(t => [t.dataset.id, t.classList.contains('similar') ? 'similar' : "
        "'not']))")


def test_mark_results_as_similar_and_not_the_triplets_are_stored(serve: ServerFactory, catalog_copy: Path,
                                                                 page: Any) -> None:
    """TiefVision's similarity editor: pick a reference item, mark its results, the judgements are saved with the
    catalogue (with the API key) and shown again on the next visit; toggling a mark off forgets it."""
    import httpx

    server = serve(catalog_copy)
    page.goto(server.url + "/browse")
    page.fill("#api-key", API_KEY)
    page.click('#catalog .tile[data-id="coffee/whole"]')
    ids = wait_for_search(page, 1)
    assert page.is_visible("#judge") and "0 marked similar" in page.inner_text("#marks-info")
    similar, other = [i for i in ids if i.startswith("coffee/")][:2], [i for i in ids if i.startswith("rocket/")][:1]
    for n, (item, button) in enumerate([(similar[0], "similar"), (similar[1], "similar"), (other[0], "dissimilar")]):
        page.click(f'#results .result[data-id="{item}"] .mark-{button}')
        wait_judged(page, n + 1)
    assert marked(page) == {similar[0]: "similar", similar[1]: "similar", other[0]: "not"}
    info = page.inner_text("#marks-info")
    assert "2 marked similar, 1 not similar" in info and "about coffee/whole: 2 triplets" in info
    stored = httpx.get(server.url + "/triplets", params={"reference": "coffee/whole"}).json()
    assert {(j["item"], j["similar"]) for j in stored["judgements"]} == {
        (similar[0], True), (similar[1], True), (other[0], False)}
    assert httpx.get(server.url + "/triplets?format=csv").text.count("\n") == 3  # header + 2 triplets
    assert page.get_attribute("#triplets-csv", "href") == "/triplets?format=csv"

    # a new page visit shows the stored marks; clicking a mark again forgets it
    page.goto(server.url + "/browse")
    page.click('#catalog .tile[data-id="coffee/whole"]')
    wait_for_search(page, 1)
    page.wait_for_function("() => document.querySelectorAll('#results .result.similar').length === 2")
    assert marked(page) == {similar[0]: "similar", similar[1]: "similar", other[0]: "not"}
    page.fill("#api-key", API_KEY)
    page.click(f'#results .result[data-id="{similar[1]}"] .mark-similar')
    wait_judged(page, 1)
    page.click(f'#results .result[data-id="{other[0]}"] .mark-similar')  # changed my mind: similar after all
    wait_judged(page, 2)
    stored = httpx.get(server.url + "/triplets").json()
    assert {(j["item"], j["similar"]) for j in stored["judgements"]} == {(similar[0], True), (other[0], True)}
    assert stored["counts"]["triplets"] == 0

    # without the key, marks stay in the page (for "more like these") and nothing is written
    page.fill("#api-key", "")
    page.click(f'#results .result[data-id="{similar[1]}"] .mark-dissimilar')
    wait_judged(page, 3)
    assert "enter the API key" in page.inner_text("#marks-info")
    assert httpx.get(server.url + "/triplets").json()["counts"]["judgements"] == 2
    # a wrong key shows the service's error and keeps the mark unchanged
    page.fill("#api-key", "a-wrong-key-123")
    assert "1 mark made without saving is not saved" in page.inner_text("#marks-info")  # the keyless one
    page.click(f'#results .result[data-id="{similar[0]}"] .mark-similar')
    wait_judged(page, 4)
    assert "invalid API key" in page.inner_text("#judge-status")
    assert marked(page)[similar[0]] == "similar"
    page.fill("#api-key", API_KEY)
    page.click("#clear-marks")
    wait_judged(page, 5)
    assert marked(page) == {} and httpx.get(server.url + "/triplets").json()["counts"]["judgements"] == 0


def test_more_like_these_less_like_those(serve: ServerFactory, catalog_copy: Path, page: Any) -> None:
    """The marks refine the search (POST /similar): the query item and the similar marks are liked, the others
    unliked, and none of them comes back; works without the API key (nothing is saved)."""
    import httpx

    server = serve(catalog_copy)
    page.goto(server.url + "/browse")
    page.click('#catalog .tile[data-id="coffee/whole"]')
    ids = wait_for_search(page, 1)
    assert page.is_disabled("#clear-marks") and not page.is_disabled("#refine")
    liked = [i for i in ids if i.startswith("coffee/q")][:1]
    unliked = [i for i in ids if not i.startswith("coffee/")][:2]
    page.click(f'#results .result[data-id="{liked[0]}"] .mark-similar')
    wait_judged(page, 1)
    for n, item in enumerate(unliked):
        page.click(f'#results .result[data-id="{item}"] .mark-dissimilar')
        wait_judged(page, n + 2)
    page.click("#refine")
    refined = wait_for_search(page, 2)
    status = page.inner_text("#status")
    assert f"more like coffee/whole, {liked[0]}" in status and all(u in status for u in unliked)
    assert not {"coffee/whole", *liked, *unliked} & set(refined)
    expected = httpx.post(server.url + "/similar", json={"like": ["coffee/whole", *liked], "unlike": unliked,
                                                         "k": 20}).json()
    assert refined == [hit["id"] for hit in expected["results"]]
    assert httpx.get(server.url + "/triplets").json()["counts"]["judgements"] == 0  # no key: nothing saved


def test_review_duplicates_delete_the_copies_and_check_an_upload(serve: ServerFactory, dup_catalog: Path,
                                                                 page: Any, tmp_path: Path) -> None:
    server = serve(Path(shutil.copytree(dup_catalog, tmp_path / "catalog")))
    page.goto(server.url + "/review")
    page.wait_for_selector('body[data-reviews="1"]', timeout=20_000)
    assert "Calibrated on 24 edited copies" in page.inner_text("#calibration-info")
    coffee = '#groups .group[data-keeper="coffee"]'
    assert page.eval_on_selector_all(f"{coffee} .tile", "ts => ts.map(t => t.dataset.id)") == [
        "coffee", "coffee-relisted"]
    assert page.eval_on_selector_all(f"{coffee} .tile.keeper", "ts => ts.map(t => t.dataset.id)") == ["coffee"]
    assert "keep" in page.inner_text(f"{coffee} .tile.keeper .label")
    pairs = page.inner_text(f"{coffee} .pairs")
    assert "coffee-relisted" in pairs and "near-duplicate" in pairs and "evidence" in pairs
    page.wait_for_function("() => [...document.querySelectorAll('#groups img')].every(i => i.naturalWidth > 0)")
    assert page.is_hidden(f"{coffee} .drop-copies") and page.is_hidden("#calibrate")  # no key yet

    page.fill("#api-key", API_KEY)
    assert page.is_visible("#calibrate")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"{coffee} .drop-copies")
    page.wait_for_selector('body[data-reviews="2"]', timeout=20_000)
    assert page.query_selector(coffee) is None  # the group is gone, the other stays
    assert page.query_selector('#groups .group[data-keeper="horse"]') is not None
    assert "1 duplicate group" in page.inner_text("#review-status")

    # adding an image shows its duplicates; refusing near-duplicates shows what it copies
    page.click("#nav-browse")
    page.wait_for_selector("#upload", state="visible")
    assert page.is_checked("#upload-check")  # ticked: the catalogue is calibrated
    rocket = tmp_path / "rocket.jpg"
    rocket.write_bytes(edited("rocket.jpg"))
    page.set_input_files("#upload-file", str(rocket))
    page.click("#upload button[type=submit]")
    page.wait_for_selector('#upload-duplicates .tile[data-id="rocket"]', timeout=20_000)
    assert "near-duplicate" in page.inner_text('#upload-duplicates .tile[data-id="rocket"] .label')
    assert page.inner_text("#browse-status").startswith("added ")
    page.select_option("#upload-refuse", "near")
    page.set_input_files("#upload-file", str(rocket))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#browse-status.error")
    assert "duplicate" in page.inner_text("#browse-status") and "Not added" in page.inner_text("#upload-caption")
    assert page.query_selector('#upload-duplicates .tile[data-id="rocket"]') is not None


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}


def _fits_the_screen(page: Any) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"


def _touch_drag(page: Any, start: tuple[float, float], end: tuple[float, float], steps: int = 6) -> None:
    """A finger drag: touch events through the DevTools protocol (the browser makes its pointer events)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": start[0], "y": start[1]}]})
    for i in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * i / steps
        y = start[1] + (end[1] - start[1]) * i / steps
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def _touch_tap(page: Any, selector: str) -> None:
    """A finger tap on the element's centre, through the same touch events as :func:`_touch_drag`."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    point = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_the_page_on_a_phone(browser: Any, serve: ServerFactory, dup_catalog: Path, tmp_path: Path) -> None:
    """Issue 11: usable at 390x844 with touch: search by photo, draw a box with a finger, browse, review."""
    server = serve(Path(shutil.copytree(dup_catalog, tmp_path / "catalog")))
    context = browser.new_context(**PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        query = tmp_path / "coffee.jpg"
        query.write_bytes(encode(photo("coffee").resize((600, 400)), quality=80))
        page.goto(server.url + "/")
        _fits_the_screen(page)
        page.set_input_files("#file", str(query))
        first = wait_for_search(page, 1)
        assert first[0] == "coffee"
        # every thumbnail on the screen is loaded (those further down load lazily, when scrolled to)
        page.wait_for_function("() => [...document.querySelectorAll('#results img')].every("
                               "i => i.getBoundingClientRect().top > innerHeight || i.naturalWidth > 0)")
        _fits_the_screen(page)
        tiles = page.eval_on_selector_all("#results .result", "ts => ts.map(t => t.getBoundingClientRect().width)")
        assert min(tiles) >= 100  # a thumbnail a finger can hit, several per row
        img = page.query_selector("#query-img").bounding_box()
        assert img["width"] <= 390 - 2 * 8 and img["width"] >= 300  # the query fills the screen's width
        _touch_drag(page, (img["x"] + img["width"] * 0.05, img["y"] + img["height"] * 0.05),
                    (img["x"] + img["width"] * 0.6, img["y"] + img["height"] * 0.7))
        region = wait_for_search(page, 2)
        assert "region" in page.inner_text("#status") and page.is_visible("#box")
        assert region != first
        page.wait_for_timeout(1000)  # Chromium's gesture detector swallows a tap this soon after a drag
        _touch_tap(page, f'#results .result[data-id="{region[1]}"]')  # a tap on a result searches from it
        wait_for_search(page, 3)
        assert region[1] in page.inner_text("#query-caption")
        _touch_tap(page, "#nav-browse")
        page.wait_for_selector("#catalog .tile")
        _fits_the_screen(page)
        _touch_tap(page, "#next")
        page.wait_for_function("() => document.getElementById('page-info').textContent.length > 0")
        _fits_the_screen(page)

        _touch_tap(page, "#nav-review")
        page.wait_for_selector('body[data-reviews="1"]', timeout=20_000)
        assert page.query_selector('#groups .group[data-keeper="coffee"]') is not None
        page.wait_for_function("() => [...document.querySelectorAll('#groups img')].every(i => i.naturalWidth > 0)")
        _fits_the_screen(page)
        page.fill("#api-key", API_KEY)
        _fits_the_screen(page)
        page.on("dialog", lambda dialog: dialog.accept())
        _touch_tap(page, '#groups .group[data-keeper="coffee"] .drop-copies')
        page.wait_for_selector('body[data-reviews="2"]', timeout=20_000)
        assert page.query_selector('#groups .group[data-keeper="coffee"]') is None
    finally:
        context.close()
    assert not errors, errors
