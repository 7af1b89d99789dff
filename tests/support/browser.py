"""A real headless Chromium (Debian's, never a downloaded one) driven by Playwright, with
the flags of TESTING.md and a fresh profile; under CI=true a missing browser fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
STEP_TIMEOUT_MS = 15_000


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI is set, so the browser tests may not skip: {why}")
    pytest.skip(why)


def require_browser() -> str:
    """Debian's Chromium and the Playwright package, or a skip (a failure under CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    assert found is not None
    return found


@contextmanager
def chromium_page(profile: Path) -> Iterator[Any]:
    """A Playwright page in a fresh headless Chromium; every step times out on its own."""
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch_persistent_context is how Playwright takes a --user-data-dir of our own
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 800},
            timeout=60_000,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            yield page
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as tests/artifacts/console/<name>.png (kept by CI, not in git)."""
    path = ARTIFACTS / "console" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
