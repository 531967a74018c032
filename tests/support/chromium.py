"""The machine's Chromium for Playwright (Playwright's own browser download is not used).

``make browser`` (run by ``make test`` and CI) installs Debian's ``chromium`` when missing; a
test that needs it fails with that instruction rather than being skipped, so CI cannot pass
without running the browser tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import pytest
from playwright.async_api import Browser, async_playwright

LAUNCH_ARGS: Final = (
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the machine's closed network refuses its calls
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
        None,
    )
    if path is None:
        pytest.fail("Chromium not found: run `make browser` (apt-get install chromium)")
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=list(LAUNCH_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
