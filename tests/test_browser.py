"""The HTML as a stakeholder sees it: a real headless Chromium (Debian's) with the network blocked."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import need
from test_report import kit, make_notebook  # noqa: F401  (fixture reuse)

pytestmark = [pytest.mark.browser, pytest.mark.notebook]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    need(os.path.exists(CHROMIUM), "chromium is not installed (`make system-deps` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_offline(browser, path, screenshot):
    """Open a local page with every non-file request blocked; return what it asked for and showed."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    external, failed = [], []

    def route(r):
        if r.request.url.startswith(("file://", "data:")):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(screenshot), full_page=True)
    info = page.evaluate("""() => ({
        text: document.body.innerText.length,
        images: Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth})),
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    })""")
    page.close()
    return external, failed, info


def test_index_and_report_open_offline_and_show_content(kit, browser, tmp_path):  # noqa: F811
    assert kit["run"]() == 0
    out = kit["out"]
    ext, failed, info = open_offline(browser, out / "index.html", tmp_path / "index.png")
    assert ext == [] and failed == []
    assert info["text"] > 200
    assert "2026-10/alpha.html" in info["links"]

    ext, failed, info = open_offline(browser, out / "2026-10" / "alpha.html", tmp_path / "alpha.png")
    assert ext == [], f"the report asked for other hosts: {ext}"
    assert failed == []
    assert info["text"] > 200
    assert info["images"] and all(i["ok"] for i in info["images"]), "an image did not render"
    # a non-blank page: the screenshot has more than one colour
    from PIL import Image

    img = Image.open(tmp_path / "alpha.png").convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100 and img.size[1] > 300


def test_the_check_catches_a_page_that_loads_from_the_internet(browser, tmp_path):
    """Negative control: nbconvert's stock template asks a CDN for require.js; the check must see it."""
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_markdown_cell, new_notebook

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(new_notebook(cells=[new_markdown_cell("# x")]))
    page = tmp_path / "stock.html"
    page.write_text(body)
    ext, failed, _ = open_offline(browser, page, tmp_path / "stock.png")
    assert any("require" in u for u in ext)
    assert failed
