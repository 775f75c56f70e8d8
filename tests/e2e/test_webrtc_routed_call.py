"""A real SIP call, routed by the ACD, is answered in the browser; each side hears the other.

Everything is real and on loopback: ``hotline serve`` with the speech IVR and one
agent, carol (queue ``operator``), who has no SIP phone: her agent page in headless
Debian Chromium has "Phone in this browser" on, so she is available and the ACD
rings the page. Chromium's microphone is a 440 Hz WAV written here. The caller is a
pjsua2 phone (``agent_phones.py``, not registered) that plays 1 kHz; after the
greeting starts it presses 0 (RFC 4733), the IVR's operator escape, and waits in
``operator``. Carol answers on the page: the caller hears 440 Hz, the page 1 kHz.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.auth import hash_password
from conversations import open_store
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, WEBRTC_FLAGS
from tests.e2e.test_webrtc_agent import HEARD_IN_PAGE, write_tone_wav
from tests.integration.helpers import LOOPBACK, AgentPhones, HotlineProcess, phone_spec

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("pjsua2") is None,
        reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
    ),
    pytest.mark.timeout(120),
]

AGENT_PASSWORD = "carol page password"  # the page's login (store user)
SIP_PASSWORD = "carol-pw"  # site config; carol never registers a SIP phone
AGENT_HZ = 440  # Chromium's fake microphone
CALLER_HZ = 1000  # the pjsua2 caller's tone
GREETING_S = 2.0  # into the greeting before the caller presses 0 (as test_ivr_calls does)
TALK_S = 2.0
TIMEOUT_MS = 10_000
SITE_YAML = f"""
agents:
  - {{username: carol, password: {SIP_PASSWORD}, queues: [operator]}}
routing:
  queues:
    - {{name: operator, ring_timeout_s: 20, wrap_up_s: 0}}
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[HotlineProcess]:
    workdir = tmp_path / "hotline"
    data_dir = workdir / "data"
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    async with open_store(f"sqlite:///{data_dir}/hotline.db") as store:
        await store.add_user("carol", {"agent"}, hash_password(AGENT_PASSWORD))
    async with HotlineProcess(workdir, ivr=True, config_yaml=SITE_YAML).serving() as process:
        yield process


@pytest.fixture
async def caller(tmp_path: Path, server: HotlineProcess) -> AsyncIterator[AgentPhones]:
    """The caller's phone: not registered, it plays 1 kHz into its calls."""
    made = AgentPhones(
        server.sip_port,
        [phone_spec("caller", register=False, tone_hz=CALLER_HZ)],
        tmp_path / "phones",
        max_lifetime_s=100.0,
    )
    try:
        yield await made.start()
    finally:
        await made.stop()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    """A headless Chromium page whose microphone plays 440 Hz; no page errors may happen."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian package chromium; `make test` installs it)")
    async_api = pytest.importorskip("playwright.async_api")
    microphone = tmp_path / "microphone-440hz.wav"
    await asyncio.to_thread(write_tone_wav, microphone, AGENT_HZ)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                *CHROMIUM_FLAGS,
                *WEBRTC_FLAGS,
                f"--use-file-for-fake-audio-capture={microphone}",
            ],
        )
        try:
            made = await browser.new_page()
            errors: list[str] = []
            made.on("pageerror", lambda error: errors.append(str(error)))
            yield made
            assert errors == []
        finally:
            await browser.close()


async def test_a_routed_sip_call_is_answered_in_the_browser_and_each_side_hears_the_other(
    server: HotlineProcess, caller: AgentPhones, page: Any
) -> None:
    from playwright.async_api import expect

    # Carol logs in, turns the phone in this browser on and is available.
    await page.goto(f"http://{LOOPBACK}:{server.http_port}/agent")
    await page.get_by_label("User name").fill("carol")
    await page.get_by_label("Password").fill(AGENT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#connection")).to_have_text("Live", timeout=TIMEOUT_MS)
    await page.get_by_test_id("phone-switch").check()
    await expect(page.get_by_test_id("phone-status")).to_have_text("Phone on")
    await page.get_by_label("My state").select_option("available")
    panel = page.get_by_test_id("call-panel")
    await expect(panel).to_be_hidden()

    # The caller dials the hotline and, into the greeting, presses 0 for the operator.
    call = await caller.call("caller", f"sip:hotline@{LOOPBACK}:{server.sip_port}")
    await caller.expect("answered", call=call, timeout_s=10.0)
    await caller.expect("media_active", call=call, timeout_s=5.0)
    await asyncio.sleep(GREETING_S)
    await caller.dtmf(call, "0")

    # The ACD rings carol's page; she answers there.
    await expect(panel).to_be_visible(timeout=TIMEOUT_MS)
    await page.get_by_test_id("call-answer").click()
    await expect(page.get_by_test_id("call-state")).to_have_text("Connected", timeout=TIMEOUT_MS)
    await caller.measure(call)  # forget the greeting: from here on, only the agent
    await asyncio.sleep(TALK_S)

    # The caller hears carol's microphone; the page hears the caller.
    heard = await caller.measure(call)
    assert heard["dominant_hz"] == pytest.approx(AGENT_HZ, abs=15), heard
    assert heard["rms"] > 1000, heard  # a tone, not comfort noise
    in_page = await page.evaluate(HEARD_IN_PAGE)
    assert in_page["hz"] == pytest.approx(CALLER_HZ, abs=15), in_page
    assert in_page["db"] > -60, in_page

    # Carol hangs up: the caller's call ends, and so does the page's.
    await page.get_by_test_id("call-hangup").click()
    await caller.expect("disconnected", call=call, timeout_s=10.0)
    await expect(panel).to_be_hidden(timeout=TIMEOUT_MS)

    # The IVR's outcome: the operator escape by key 0, not the speech route.
    outcomes = [
        json.loads(line)
        for path in sorted((server.workdir / "data" / "ivr").glob("outcomes-*.jsonl"))
        for line in path.read_text().splitlines()
        if line
    ]
    assert [(o["queue"], o["method"], o["digits"]) for o in outcomes] == [
        ("operator", "operator", ["0"])
    ], outcomes
