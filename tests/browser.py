"""Debian's Chromium driven by Playwright (no browser download), for the browser tests.

:func:`chromium_page` opens a page and, when the test fails inside it, saves the whole page to
``test-artifacts/<test name>.png``; :func:`save_small_png` writes a screenshot for ``docs/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.services import service_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1280, "height": 860}


def require_chromium() -> None:
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is missing (apt-get install -y chromium)")


@contextmanager
def chromium_page(request: Any) -> Iterator[Any]:
    """A page in headless Chromium; on a failure inside, a full-page screenshot named after the test."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            yield page
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
            raise
        finally:
            browser.close()


def save_small_png(page: Any, path: Path) -> None:
    """A screenshot for the docs, reduced to a 256-colour palette (a few tens of KiB)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)
