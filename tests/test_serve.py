"""`python -m hsnet_jax.serve` as a real process on 127.0.0.1, with a run whose network always
answers happiness (tests/handmade_run.py): the API answers what `predict --json --detect_face`
answers, refuses what it must (too large, a decompression bomb, not an image, a full queue)
and keeps serving; the page, in Debian's Chromium driven headless by Selenium, boxes and labels
the faces of an uploaded photo and of the (fake) webcam's live frames, and shows errors in
words. The batcher's time limit and queue bound are also tested in-process, with a real
worker thread. Set SERVE_SCREENSHOT=PATH to save the upload test's page (docs/images/)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import struct
import time
import zlib

import numpy as np
import pytest
import skimage.data
from PIL import Image

from benchmarks.serve import Server, multipart, request
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from hsnet_jax.inference.prediction import predict_files
from hsnet_jax.serving.batcher import Batcher, QueueFull
from tests import photos

QUEUE = 2  # the server's queue and batch: small, so a burst overflows it



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    paths = {name: str(root / name) for name in ("group.png", "astronaut.jpg", "noise.png", "notes.jpg")}
    Image.fromarray(photos.group_photo()).save(paths["group.png"])
    Image.fromarray(skimage.data.astronaut()).save(paths["astronaut.jpg"], quality=90)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)).save(paths["noise.png"])
    with open(paths["notes.jpg"], "w") as f:
        f.write("shopping list: eggs, milk\n")
    return paths


@pytest.fixture(scope="module")
def server(run, env, tmp_path_factory):
    log = str(tmp_path_factory.mktemp("server") / "server.log")
    # A generous time limit: on a loaded machine a new photo size compiles for a while.
    with Server(run, ("--queue", str(QUEUE), "--max_batch", str(QUEUE), "--timeout", "600"), env=env, log=log) as s:
        yield s
        assert s.process.poll() is None, "the server died"


def _post(server, path: str, name: str | None = None) -> tuple[int, dict, dict]:
    with open(path, "rb") as f:
        data = f.read()
    body, headers = multipart(name or os.path.basename(path), data)
    status, response_headers, answer = request(server.port, "POST", "/predict", body, headers)
    return status, response_headers, json.loads(answer)


def _png_header(width: int, height: int) -> bytes:
    """A PNG claiming width x height pixels, a decompression bomb's header (its few bytes of
    pixel data would inflate to width x height x 3 bytes of zeros)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes(4096))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_the_model_flags_are_one_line_errors_before_anything_loads(tmp_path, capsys):
    from hsnet_jax import serve
    from hsnet_jax.runtime import cli

    assert cli.run(serve.main, ["--export", str(tmp_path / "none")]) == 1
    assert cli.run(serve.main, ["--workdir", str(tmp_path), "--int8"]) == 1
    for flags in ([], ["--workdir", "a", "--export", "b"], ["--workdir", "a", "--exp", "b"]):
        with pytest.raises(SystemExit):
            serve.main(flags)
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'none'}: not a directory" in err
    assert "error: --int8 is for --export DIR" in err
    assert "one of the arguments --workdir --export is required" in err and "not allowed with argument" in err
    assert "unrecognized arguments: --exp" in err  # no abbreviations: _model_module reads the full flag


def test_predict_answers_as_the_predict_command_does(server, run, files):
    status, _, answer = _post(server, files["group.png"])
    assert status == 200
    expected, = predict_files(run, [files["group.png"]], detect_face=True, max_side=1024)
    assert answer == {**json.loads(json.dumps(expected)), "file": "group.png"}
    assert len(answer["faces"]) == 7
    assert {f["prediction"] for f in answer["faces"]} == {"happiness"}
    # The same photo as a raw body; a photo without a face is predict's error line, 422.
    with open(files["astronaut.jpg"], "rb") as f:
        status, _, raw = request(server.port, "POST", "/predict", f.read(), {"Content-Type": "image/jpeg"})
    assert status == 200 and json.loads(raw)["file"] == "upload" and len(json.loads(raw)["faces"]) == 1
    assert _post(server, files["noise.png"])[::2] == (422, {"file": "noise.png", "error": "noise.png: no face found"})
    info = json.loads(request(server.port, "GET", "/model")[2])
    assert info["classes"] == list(CANONICAL_EXPRESSIONS) and info["input_size"] == 75
    assert info["test_metrics"] is None  # the handmade run was never evaluated


def test_limits_are_one_line_refusals_and_the_server_keeps_serving(server, files):
    too_large = b"\xff\xd8" + bytes(20_000_001)
    status, _, body = request(server.port, "POST", "/predict", too_large, {"Content-Type": "image/jpeg"})
    assert (status, json.loads(body)) == (413, {"error": "the upload is larger than the limit of 20 MB"})
    bomb, headers = multipart("bomb.png", _png_header(10_000, 10_000))
    status, _, body = request(server.port, "POST", "/predict", bomb, headers)
    assert (status, json.loads(body)["error"]) == (
        413, "bomb.png: 10000x10000 is 100000000 pixels, more than the limit of 40000000")
    status, _, body = request(server.port, "POST", "/predict", _png_header(60_000, 60_000), {})
    assert status == 413 and "pixels" in json.loads(body)["error"]  # Pillow's own bomb limit, also 413
    status, _, answer = _post(server, files["notes.jpg"])
    assert (status, answer) == (415, {"error": "notes.jpg: not an image (accepted: JPEG, PNG, WEBP, GIF, BMP, TIFF)"})
    with open(files["astronaut.jpg"], "rb") as f:
        truncated, headers = multipart("cut.jpg", f.read()[:3000])
    status, _, body = request(server.port, "POST", "/predict", truncated, headers)
    assert status == 400 and json.loads(body)["error"].startswith("cut.jpg: cannot read the image")
    status, _, body = request(server.port, "POST", "/predict", b"", {"Content-Type": "image/jpeg"})
    assert (status, json.loads(body)) == (400, {"error": "no photo in the request (an empty body or file)"})
    assert request(server.port, "GET", "/predict")[0] == 405
    assert "access-control-allow-origin" not in {k.lower() for k in request(
        server.port, "GET", "/model", headers={"Origin": "http://elsewhere.example"})[1]}
    assert _post(server, files["astronaut.jpg"])[0] == 200


def test_a_full_queue_answers_503_with_retry_after_and_recovers(server, files):
    with open(files["astronaut.jpg"], "rb") as f:
        body, headers = multipart("astronaut.jpg", f.read())
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: request(server.port, "POST", "/predict", body, headers), range(16)))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) == {200, 503} and statuses.count(200) >= QUEUE, statuses
    for status, response_headers, answer in answers:
        if status == 503:
            assert response_headers["retry-after"] == "1"
            assert json.loads(answer) == {"error": "the server is busy (its queue is full): try again in a moment"}
    assert _post(server, files["astronaut.jpg"])[0] == 200


def test_the_batcher_batches_bounds_its_queue_and_drops_what_timed_out():
    seen: list[list[int]] = []

    def process(items):
        seen.append(list(items))
        time.sleep(0.3)
        return [i * 10 for i in items]

    async def scenario(batcher):
        first = asyncio.ensure_future(batcher.submit(1, 5))
        await asyncio.sleep(0.05)  # 1 is being processed; 2 and 3 wait; 4 finds the queue full
        rest = [asyncio.ensure_future(batcher.submit(i, 5 if i == 2 else 0.1)) for i in (2, 3)]
        await asyncio.sleep(0.01)  # 2 and 3 are queued
        with pytest.raises(QueueFull):
            await batcher.submit(4, 5)
        return await asyncio.gather(first, *rest, return_exceptions=True)

    batcher = Batcher(process, max_batch=4, window_s=0.01, queue_size=2)
    batcher.start()
    one, two, three = asyncio.run(scenario(batcher))
    time.sleep(0.4)
    batcher.stop()
    assert (one, two) == (10, 20) and isinstance(three, asyncio.TimeoutError)
    # 3 outlived its time limit before its batch started: it was never processed.
    assert seen == [[1], [2]] and batcher.batch_sizes == [1, 1]
    together = Batcher(lambda items: list(items), max_batch=4, window_s=0.2, queue_size=8)
    together.start()

    async def burst():
        return await asyncio.gather(*(together.submit(i, 5) for i in range(6)))

    assert asyncio.run(burst()) == list(range(6))
    together.stop()
    assert together.batch_sizes == [4, 2]


# The page in a real browser.

def _browser(tmp_path, *extra: str):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    os.environ["SE_AVOID_STATS"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1100,1000", *extra):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(options=options, service=Service(driver))


def _wait(browser, condition, seconds: float = 120, what: str = ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = browser.execute_script(condition)
        if value:
            return value
        time.sleep(0.2)
    text = browser.execute_script("return document.body.innerText")
    raise AssertionError(f"timed out waiting for {what or condition}; the page says:\n{text}")


def _clip(path: str) -> None:
    """A 480x360 Y4M clip at 2 frames/s: the astronaut on the left for a second, then Grace
    Hopper on the right, for Chromium's fake webcam."""
    frames = []
    for picture, left in ((skimage.data.astronaut(), 20), (photos.grace_hopper(), 200)):
        canvas = Image.new("RGB", (480, 360), (90, 90, 90))
        tile = Image.fromarray(picture)
        tile.thumbnail((260, 320))
        canvas.paste(tile, (left, 20))
        y, cb, cr = canvas.convert("YCbCr").split()
        planes = [y.tobytes()] + [c.resize((240, 180), Image.BILINEAR).tobytes() for c in (cb, cr)]
        frames += [b"FRAME\n" + b"".join(planes)] * 2
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W480 H360 F2:1 Ip A1:1 C420jpeg\n" + b"".join(frames))


@pytest.mark.slow
def test_the_page_labels_an_uploaded_photo_and_shows_a_bad_file_in_words(server, files, tmp_path):
    browser = _browser(tmp_path)
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        _wait(browser, "return document.getElementById('model').textContent.includes('happiness')", what="/model")
        assert "no test metrics yet" in browser.find_element("id", "model").text
        browser.find_element("id", "file").send_keys(files["group.png"])
        _wait(browser, "return document.querySelectorAll('#faces button').length == 7", what="7 faces")
        labels = [b.text for b in browser.find_elements("css selector", "#faces button")]
        assert labels == ["happiness 90.1%"] * 7
        bars = browser.find_elements("css selector", "#bars .bar")
        assert [b.find_element("class name", "name").text for b in bars] == list(CANONICAL_EXPRESSIONS)
        # The selected (first, largest) face is boxed in orange on the picture: its left edge.
        box = browser.find_element("css selector", "#faces button").get_attribute("data-box")
        x0, y0, x1, y1 = map(int, box.split(","))
        edge = browser.execute_script(
            "const c = document.getElementById('picture'); "
            f"return Array.from(c.getContext('2d').getImageData({x0}, {(y0 + y1) // 2}, 1, 1).data)")
        assert edge[:3] == [0xe8, 0xa3, 0x3d]
        browser.find_elements("css selector", "#faces button")[3].click()
        assert browser.find_element("id", "bars-title").text == "Probabilities of face 4"
        if os.environ.get("SERVE_SCREENSHOT"):
            browser.set_window_size(1000, 1300)
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(os.environ["SERVE_SCREENSHOT"])
        browser.set_window_size(390, 844)  # a phone: nothing wider than the screen
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.find_element("id", "file").send_keys(files["notes.jpg"])
        _wait(browser, "return !document.getElementById('error').hidden", what="the error")
        assert browser.find_element("id", "error").text == \
            "notes.jpg: not an image (accepted: JPEG, PNG, WEBP, GIF, BMP, TIFF)"
    finally:
        browser.quit()


@pytest.mark.slow
def test_the_webcam_gets_live_labels_that_follow_the_faces(server, tmp_path):
    clip = str(tmp_path / "faces.y4m")
    _clip(clip)
    browser = _browser(tmp_path, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                       f"--use-file-for-fake-video-capture={clip}")
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        browser.find_element("id", "camera").click()
        boxes, labels, deadline = set(), set(), time.monotonic() + 300
        while len(boxes) < 2 and time.monotonic() < deadline:
            # One read of the page: the list is replaced with every answer.
            error, found = browser.execute_script(
                "const e = document.getElementById('error'); "
                "return [e.hidden ? '' : e.textContent, "
                "Array.from(document.querySelectorAll('#faces button'), b => [b.dataset.box, b.textContent])]")
            assert not error, error
            boxes |= {box for box, _ in found}
            labels |= {label for _, label in found}
            time.sleep(0.2)
        lefts = sorted(int(b.split(",")[0]) for b in boxes)
        # Both faces of the clip were found in turn: one on the left, one on the right.
        assert lefts[0] < 200 < lefts[-1], boxes
        answers = int(browser.execute_script("return document.body.dataset.answers"))
        assert answers >= 2 and labels == {"happiness 90.1%"}
        assert browser.find_element("id", "camera").text == "Stop the webcam"
        live = browser.execute_script("const c = document.getElementById('picture'); return [c.width, c.height]")
        assert live == [480, 360]
    finally:
        browser.quit()
