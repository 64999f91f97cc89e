"""A real browser for the tests: Debian's chromium driven by Playwright for Python.

Playwright's own browser download is never used: :func:`launch_chromium` starts
``/usr/bin/chromium`` (installed by ``tests/services.sh``), headless, without its
sandbox when the tests run as root (chromium refuses to start sandboxed as root).
A missing chromium fails the test with the command that installs it (DESIGN §8:
fail, never skip).

:class:`StaticSite` serves a directory of pages from its own loopback origin, so a
test can play a web app on another origin than authd's. Origins differ by port, so
two sites on 127.0.0.1 are two origins of one *site* (what ``SameSite`` looks at),
just as ``app.example.com`` and ``auth.example.com`` are.

Fixtures (re-exported by ``tests/conftest.py``): ``browser`` — one chromium for the
whole run; ``browser_context`` — a fresh profile (cookies, storage) per test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

CHROMIUM = Path("/usr/bin/chromium")


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless; ``--no-sandbox`` only when running as root."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/services.sh` (it installs "
                    "Debian's chromium) or `make test`")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One chromium process for the run; each test takes its own context."""
    async with async_playwright() as playwright:
        launched = await launch_chromium(playwright)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile: no cookie or storage shared with another test."""
    context = await browser.new_context()
    try:
        yield context
    finally:
        await context.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: the test's output stays the test's."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class StaticSite:
    """Serve ``root`` over HTTP on ``host`` and a free port, in a thread.

    Use as a context manager (or call :meth:`close`); ``origin`` is the site's
    serialized origin, ``url(path)`` a page on it.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        handler = partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StaticSite:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
