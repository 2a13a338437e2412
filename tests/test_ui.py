"""The demo page at /ui, driven in real headless Chromium (Debian's package) against a real `bentoml serve`.

Chromium comes from the system (`apt-get install chromium`; .ci/run does it), never from `playwright install`.
Without it the tests fail in CI (``CI`` set) and skip elsewhere, saying why.

``GANSERVE_UI_SCREENSHOT=docs/ui.png GANSERVE_UI_MODELS=models`` makes the screenshot test photograph the
page on the shipped models for the README (default: the tiny test models, saved to a temporary file).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server

CHROMIUM = os.environ.get("GANSERVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Root in a container needs --no-sandbox; the rest keeps Chromium off the (closed) network at start-up.
# Playwright's launch() gives every browser a new, empty temporary profile (user-data-dir).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000  # a shared 2-core machine can be slow; waits end as soon as the page is ready


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must test the page: `make test` installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Page:
    """A fresh browser context (empty sessionStorage) on the demo page, recording script errors."""

    def __init__(self, browser, url: str, models_expected: bool = True):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.url = url
        self.open(models_expected)

    def open(self, models_expected: bool = True) -> None:
        self.page.goto(self.url if "/ui/" in self.url else self.url + "/ui/")
        if models_expected:  # the model list has arrived from POST /models
            self.page.wait_for_function(
                "() => document.querySelectorAll('#model option:not([value=\"\"])').length"
            )
        self.wait_idle()

    def wait_idle(self) -> None:
        self.page.wait_for_function("() => document.getElementById('status').textContent !== 'working…'")

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self.wait_idle()

    def srcs(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('src'))")

    def status(self) -> str:
        return self.page.inner_text("#status")


@pytest.fixture
def ui(browser, server):
    page = Page(browser, server.url)
    yield page
    page.context.close()
    assert not page.errors, page.errors  # no script error, no failed load


def data_url(b64: str) -> str:
    return f"data:image/png;base64,{b64}"


def generate(server, **body) -> dict:
    r = httpx.post(server.url + "/generate", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_page_is_served_with_its_files_and_headers(server):
    r = httpx.get(server.url + "/ui", follow_redirects=True)
    assert r.status_code == 200 and r.url.path == "/ui/" and "<title>ganserve demo</title>" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data:" in csp
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        asset = httpx.get(f"{server.url}/ui/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"], name
    assert httpx.get(server.url + "/ui/..%2Fservice.py").status_code == 404  # no way out of service/ui


def test_page_lists_the_models(ui):
    options = ui.page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert sorted(options) == ["tiny-cgan", "tiny-dcgan"]
    ui.page.select_option("#model", "tiny-dcgan")
    assert "dcgan on digits, 16×16×1, latent 100" in ui.page.inner_text("#model-info")
    assert ui.page.is_hidden("#labels-panel") and ui.page.is_hidden("#label")
    ui.page.select_option("#model", "tiny-cgan")
    assert "10 classes" in ui.page.inner_text("#model-info")
    assert ui.page.is_visible("#labels-panel")
    labels = ui.page.eval_on_selector_all("#label option", "os => os.map(o => o.textContent)")
    assert labels == ["drawn from the seed", *map(str, range(10))]


def test_generate_shows_the_requested_images(ui, server):
    ui.page.select_option("#model", "tiny-dcgan")
    ui.page.fill("#seed", "7")
    ui.page.fill("#count", "5")
    ui.click("#generate")
    assert ui.srcs("#grid img") == [
        data_url(b) for b in generate(server, model="tiny-dcgan", seed=7, count=5)["images"]
    ]
    assert "5 images of tiny-dcgan, seed 7" in ui.status()
    ui.page.fill("#count", "12")
    ui.click("#generate")
    assert len(ui.srcs("#grid img")) == 12


def test_generate_with_a_label_and_a_seed_past_2_to_the_53(ui, server):
    seed = 2**63 - 5  # a JS number would round it; the page must send it digit for digit
    ui.page.select_option("#model", "tiny-cgan")
    ui.page.select_option("#label", "3")
    ui.page.fill("#seed", str(seed))
    ui.page.fill("#count", "4")
    ui.click("#generate")
    expected = generate(server, model="tiny-cgan", seed=seed, count=4, label=3)
    assert ui.srcs("#grid img") == [data_url(b) for b in expected["images"]]
    assert ui.page.eval_on_selector_all("#grid figcaption", "cs => cs.map(c => c.textContent)") == [
        f"#{i} · 3" for i in range(4)
    ]


def test_every_label_view_rows_are_seeds_columns_are_classes(ui, server):
    ui.page.select_option("#model", "tiny-cgan")
    ui.page.fill("#labels-seed", "40")
    ui.page.fill("#labels-rows", "3")
    ui.click("#every-label")
    heads = ui.page.eval_on_selector_all("#label-table thead th", "ths => ths.map(t => t.textContent)")
    assert heads == ["", *map(str, range(10))]
    rows = ui.page.eval_on_selector_all("#label-table tbody th", "ths => ths.map(t => t.textContent)")
    assert rows == ["seed 40", "seed 41", "seed 42"]
    srcs = ui.srcs("#label-table tbody img")
    assert len(srcs) == 30
    for r, c in ((0, 0), (1, 4), (2, 9)):  # spot checks: cell (r, c) is seed 40+r with label c
        assert srcs[r * 10 + c] == data_url(
            generate(server, model="tiny-cgan", seed=40 + r, label=c)["images"][0]
        )


def test_walk_shows_its_frames_and_plays_them(ui, server):
    ui.page.select_option("#model", "tiny-cgan")
    ui.page.fill("#walk-seed-a", "5")
    ui.page.fill("#walk-seed-b", "9")
    ui.page.select_option("#walk-label-a", "2")
    ui.page.select_option("#walk-label-b", "7")
    ui.page.fill("#walk-steps", "7")
    ui.page.fill("#walk-index", "3")
    ui.click("#walk")
    frames = ui.srcs("#walk-frames img")
    assert len(frames) == 7 and len(set(frames)) == 7
    first = generate(server, model="tiny-cgan", seed=5, start=3, label=2)["images"][0]
    last = generate(server, model="tiny-cgan", seed=9, start=3, label=7)["images"][0]
    assert frames[0] == data_url(first) and frames[-1] == data_url(last)
    captions = ui.page.eval_on_selector_all("#walk-frames figcaption", "cs => cs.map(c => c.textContent)")
    assert captions[0] == "t = 0.00 · 2" and captions[-1] == "t = 1.00 · 7"
    # The player: starts on frame 0, then steps through the frames.
    assert ui.page.get_attribute("#walk-current", "src") == frames[0]
    ui.page.click("#walk-play")
    ui.page.wait_for_function("() => document.getElementById('walk-slider').value === '3'")
    ui.page.click("#walk-play")  # pause
    assert ui.page.inner_text("#walk-play") == "Play"
    shown = int(ui.page.input_value("#walk-slider"))
    ui.page.wait_for_timeout(400)  # paused: the frame stays
    assert int(ui.page.input_value("#walk-slider")) == shown
    assert ui.page.get_attribute("#walk-current", "src") == frames[shown]


def test_bad_input_shows_the_servers_message(ui):
    ui.page.select_option("#model", "tiny-dcgan")
    ui.page.fill("#count", "65")  # the session server allows 64
    ui.click("#generate")
    assert ui.page.get_attribute("#status", "class") == "error"
    assert ui.status() == "count: Input should be less than or equal to 64"
    ui.page.fill("#walk-steps", "1")
    ui.click("#walk")
    assert ui.status() == "steps: Input should be greater than or equal to 2"
    ui.page.fill("#seed", "12ab")
    ui.click("#generate")
    assert ui.status().startswith("Seed: a whole number 0 … 9223372036854775807")
    assert ui.srcs("#grid img") == []
    # The two refused requests are logged by the browser; nothing else may be.
    ui.errors = [e for e in ui.errors if "status of 400 (Bad Request)" not in e]


def test_api_key_is_sent_as_a_bearer_token_and_kept_for_the_session(ui):
    sent = []
    ui.page.on("request", lambda req: req.method == "POST" and sent.append(req.headers.get("authorization")))
    ui.page.click("#generate")
    ui.wait_idle()
    assert sent == [None]  # no key typed: no header
    ui.page.fill("#api-key", "s3cret key")
    ui.page.press("#api-key", "Enter")
    ui.wait_idle()
    ui.click("#walk")
    assert sent[-1] == "Bearer s3cret key" and None not in sent[1:]
    ui.open()  # reload: the key stays in this tab's session
    assert ui.page.input_value("#api-key") == "s3cret key"
    other = ui.context.browser.new_context()  # another session does not see it
    try:
        page = other.new_page()
        page.goto(ui.url + "/ui/")
        assert page.input_value("#api-key") == ""
    finally:
        other.close()


def test_screenshot(browser, request, tmp_path):
    """The README's picture: every view filled in, on a conditional model when there is one."""
    models = os.environ.get("GANSERVE_UI_MODELS")
    # The server's log and BENTOML_HOME go to tmp_path, not next to the models folder (the repository).
    own = None
    if models:
        own = Server(
            Path(models).resolve(),
            env={"BENTOML_HOME": str(tmp_path / "bentoml")},
            log_path=tmp_path / "serve.log",
        ).wait_ready()
    try:
        ui = Page(browser, own.url if own else request.getfixturevalue("server").url)
        names = ui.page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
        conditional = [n for n in names if "cgan" in n]
        ui.page.select_option("#model", (conditional or names)[0])
        ui.page.fill("#count", "24")
        ui.click("#generate")
        if conditional:
            ui.page.fill("#labels-rows", "3")
            ui.click("#every-label")
            ui.page.select_option("#walk-label-a", "0")
            last_class = ui.page.locator("#walk-label-b option").count() - 2  # after "drawn from the seed"
            ui.page.select_option("#walk-label-b", str(last_class))
        ui.page.fill("#walk-steps", "12")
        ui.click("#walk")
        ui.page.click("#walk-slider")  # a mid-walk frame in the player
        out = Path(os.environ.get("GANSERVE_UI_SCREENSHOT") or tmp_path / "ui.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        ui.page.screenshot(path=str(out), full_page=True)
        assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not ui.errors, ui.errors
        ui.context.close()
    finally:
        if own:
            own.stop()


def test_page_on_a_server_with_an_api_key(browser, models_dir):
    """The page loads without the key; its API calls work only once the right key is typed."""
    srv = Server(models_dir, env={"GANSERVE_API_KEY": "ui-test-key"}).wait_ready()
    try:
        assert httpx.post(srv.url + "/models", json={}).status_code == 401  # the API is closed…
        ui = Page(browser, srv.url, models_expected=False)  # …the page is not
        assert ui.page.inner_text("h1") == "ganserve demo"
        assert "wants a valid API key" in ui.status()
        assert ui.page.get_attribute("#status", "class") == "error"
        ui.page.fill("#api-key", "wrong")
        ui.page.press("#api-key", "Enter")
        ui.wait_idle()
        assert "wants a valid API key" in ui.status()
        ui.page.fill("#api-key", "ui-test-key")
        ui.page.press("#api-key", "Enter")
        ui.page.wait_for_function("() => document.querySelectorAll('#model option:not([value=\"\"])').length")
        ui.page.fill("#count", "3")
        ui.click("#generate")
        assert len(ui.srcs("#grid img")) == 3
        ui.click("#walk")
        assert len(ui.srcs("#walk-frames img")) == 10
        ui.open()  # a reload keeps the key for this tab: the models load at once
        assert ui.page.input_value("#api-key") == "ui-test-key"
        ui.context.close()
        assert all("status of 401" in e for e in ui.errors), ui.errors  # only the refused calls
    finally:
        srv.stop()


def test_transparent_images_over_a_checkerboard_with_a_background_switch(browser, sprites_models_dir):
    """An RGBA model: the page gets PNGs with their alpha and shows them over the chosen background."""
    srv = Server(sprites_models_dir).wait_ready()
    try:
        ui = Page(browser, srv.url)
        ui.page.select_option("#model", "tiny-sprites")
        assert "64×64×4 (RGBA)" in ui.page.inner_text("#model-info")
        ui.page.fill("#count", "2")
        ui.click("#generate")
        assert len(ui.srcs("#grid img")) == 2
        # The decoded image in the page keeps transparency (alpha below 255 somewhere).
        min_alpha = ui.page.eval_on_selector(
            "#grid img",
            """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
                c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data; let m = 255;
                for (let i = 3; i < d.length; i += 4) m = Math.min(m, d[i]); return m; }""",
        )
        assert min_alpha < 255
        style = "img => { const s = getComputedStyle(img); return [s.backgroundImage, s.backgroundColor]; }"
        image, _ = ui.page.eval_on_selector("#grid img", style)
        assert "conic-gradient" in image  # the default: a checkerboard shows through
        ui.page.select_option("#background", "white")
        assert ui.page.eval_on_selector("#grid img", style) == ["none", "rgb(255, 255, 255)"]
        ui.page.select_option("#background", "black")
        assert ui.page.eval_on_selector("#grid img", style) == ["none", "rgb(0, 0, 0)"]
        ui.open()  # the choice is kept for the tab
        assert ui.page.input_value("#background") == "black"
        assert not ui.errors, ui.errors
        ui.context.close()
    finally:
        srv.stop()


def test_first_paint_shows_samples_and_the_models_card_without_a_click(browser, server, tmp_path):
    ui = Page(browser, server.url)  # waits for the model list and for the page to be idle, nothing clicked
    assert ui.page.input_value("#model") == "tiny-cgan"  # equal sizes: the conditional model first
    expected = generate(server, model="tiny-cgan", seed=42, count=16)
    assert ui.srcs("#grid img") == [data_url(b) for b in expected["images"]]
    assert ui.page.is_hidden("#card-panel")  # the tiny test models have no card
    ui.context.close()
    assert not ui.errors, ui.errors

    folder = tmp_path / "models"  # shipped models with their cards' figures
    folder.mkdir()
    for name in ("digits-cgan", "digits-dcgan"):
        for ext in ("onnx", "json"):
            shutil.copy(ROOT / "models" / f"{name}.{ext}", folder)
    srv = Server(folder).wait_ready()
    try:
        shipped = Page(browser, srv.url)
        assert shipped.page.input_value("#model") == "digits-cgan"
        assert len(shipped.srcs("#grid img")) == 16
        quality = json.loads((folder / "digits-cgan.json").read_text())["quality"]
        card = shipped.page.inner_text("#model-card")
        assert f"{quality['label_accuracy']:.3f}" in card and "Fréchet ratio" in card and "recall" in card
        assert shipped.page.is_visible("#card-panel")
        shipped.context.close()
        chosen = Page(browser, srv.url + "/ui/?model=digits-dcgan")
        assert chosen.page.input_value("#model") == "digits-dcgan" and len(chosen.srcs("#grid img")) == 16
        chosen.context.close()
        assert not shipped.errors and not chosen.errors, shipped.errors + chosen.errors
    finally:
        srv.stop()
