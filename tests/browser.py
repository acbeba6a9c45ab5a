"""Headless Debian chromium driven by Playwright, for page tests (skipped where chromium is missing).

`.ci/run` installs Debian's ``chromium``; locally the tests are skipped with the reason.
Every request the page makes is recorded, so tests can assert that nothing left the machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = Path(__file__).parent / "output"
# The flags the machine doc recommends: no sandbox as root, and no background traffic to the closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

requires_browser = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


@contextmanager
def browser_page() -> Iterator[tuple[Any, list[str]]]:
    """A fresh page in headless chromium and the list of URLs it requests."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    requests: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            yield page, requests
        finally:
            browser.close()


def external_requests(urls: list[str]) -> list[str]:
    """The requested URLs that are not on this machine (data: and blob: URLs are local)."""
    out = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about", "file"):
            continue
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            out.append(url)
    return out


def screenshot_path(name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT / name
