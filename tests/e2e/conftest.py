"""Browser tests: Debian's Chromium driven by Playwright against a real bridge process.

No browser is ever downloaded: Playwright launches ``/usr/bin/chromium`` (Debian
package ``chromium``), and the tests skip with the reason when it is missing.
The flags are those this closed network needs (no background connections,
which would be refused) plus ``--no-sandbox`` for running as root in CI.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# WebRTC on loopback only: Chromium gathers no loopback candidates unless allowed, and
# hides host addresses behind mDNS names (which aioice would resolve by multicast).
# The fake microphone plays a WAV the test writes; the fake UI grants getUserMedia.
WEBRTC_FLAGS = [
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, or skip.

    Module-scoped, not session: Playwright's sync API keeps an event loop
    running in the main thread while it is open, and pytest-asyncio cannot
    run the async tests of other modules meanwhile.
    """
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian package chromium; `make test` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()
