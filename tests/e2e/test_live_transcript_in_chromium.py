"""Issue 7, live transcript: what the caller and the agent say appears on the agent's page.

Everything is real and on loopback: ``hotline serve`` with the speech IVR, its
pocketsphinx recognizer and ``recordings.live_transcript`` on, and one agent,
carol (queue ``operator``), whose page in headless Debian Chromium has "Phone in
this browser" on. Chromium's microphone is a WAV of carol's greeting (TTS, looped
with pauses). The caller is a pjsua2 phone (``pjsua_caller.py``) that presses 0
for the operator into the IVR's greeting and plays a WAV into the call: silence
while it waits and is connected, then "I need a prescription refill" a few times.
Carol answers on the page; the Live transcript panel shows the caller's words and
hers as final lines, and keeps them once the caller hangs up. (The caller hangs up,
not carol: pjsua2 aborts when its player is detached from a call the far end ended.)
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bridge.auth import hash_password
from conversations import open_store
from ivr.tts import synthesizer_named, telephone_quality
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, WEBRTC_FLAGS
from tests.integration.helpers import LOOPBACK, HotlineProcess, PjsuaCallerRun, run_pjsua_caller

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("pjsua2") is None,
        reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
    ),
    pytest.mark.timeout(240),
]

AGENT_PASSWORD = "carol page password"  # the page's login (store user)
SIP_PASSWORD = "carol-pw"  # site config; carol never registers a SIP phone
SITE_YAML = f"""
agents:
  - {{username: carol, password: {SIP_PASSWORD}, queues: [operator]}}
routing:
  queues:
    - {{name: operator, ring_timeout_s: 20, wrap_up_s: 0}}
recordings:
  live_transcript: true
"""
CALLER_SAYS = "I need a prescription refill"
AGENT_SAYS = "Thank you for calling, how can I help you?"
# The recognizer may miss a word; one of these must come through in a final line.
CALLER_WORDS = re.compile(r"refill|prescription", re.IGNORECASE)
AGENT_WORDS = re.compile(r"help|calling|thank", re.IGNORECASE)
CALLER_WAITS_S = 10.0  # silence first: the greeting, key 0, the queue, carol answering
CALLER_REPEATS = 4  # a line every 4 s or so
CALLER_HOLD_S = 27.0  # then it hangs up
TIMEOUT_MS = 15_000
LINE_TIMEOUT_MS = 40_000  # the caller's first words come CALLER_WAITS_S after the answer


def write_wav(path: Path, pcm: np.ndarray, rate_hz: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(pcm.astype("<i2").tobytes())


def speech_wavs(caller_path: Path, agent_path: Path) -> None:
    """The caller's WAV (8 kHz, waits then repeats its line) and carol's (48 kHz, loops)."""
    synthesizer = synthesizer_named("hibari")
    pcm, rate_hz = synthesizer.synthesize(CALLER_SAYS)
    line = telephone_quality(pcm, rate_hz, trim=True)
    pause = np.zeros(int(2.5 * 8000), np.int16)
    caller = [np.zeros(int(CALLER_WAITS_S * 8000), np.int16)] + [line, pause] * CALLER_REPEATS
    write_wav(caller_path, np.concatenate(caller), 8000)
    pcm, rate_hz = synthesizer.synthesize(AGENT_SAYS)
    line = telephone_quality(pcm, rate_hz, out_hz=48000, trim=True, ulaw=False)
    # Chromium loops its fake microphone: a line, then a long pause, so the two rarely overlap.
    write_wav(agent_path, np.concatenate([line, np.zeros(6 * 48000, np.int16)]), 48000)


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
async def wavs(tmp_path: Path) -> tuple[Path, Path]:
    caller, agent = tmp_path / "caller.wav", tmp_path / "carol-microphone.wav"
    await asyncio.to_thread(speech_wavs, caller, agent)
    return caller, agent


@pytest.fixture
async def page(wavs: tuple[Path, Path]) -> AsyncIterator[Any]:
    """Carol's page; its microphone says her line. No page errors may happen in it."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian package chromium; `make test` installs it)")
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_FLAGS, *WEBRTC_FLAGS, f"--use-file-for-fake-audio-capture={wavs[1]}"],
        )
        try:
            made = await browser.new_page()
            errors: list[str] = []
            made.on("pageerror", lambda error: errors.append(str(error)))
            yield made
            assert errors == []
        finally:
            await browser.close()


async def test_the_callers_and_the_agents_words_appear_on_the_agents_page_as_they_speak(
    server: HotlineProcess, wavs: tuple[Path, Path], page: Any, tmp_path: Path
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
    panel = page.get_by_test_id("live-transcript")
    await expect(panel).to_be_hidden()

    # The caller dials, presses 0 into the greeting, and later speaks (its own thread).
    caller = asyncio.ensure_future(
        asyncio.to_thread(
            run_pjsua_caller, server.sip_port, tmp_path / "caller",
            "--play", str(wavs[0]), "--dtmf", "0", "--dtmf-after-s", "1.5",
            "--hold-s", str(CALLER_HOLD_S), timeout_s=CALLER_HOLD_S + 30.0,
        )
    )  # fmt: skip
    try:
        # The ACD rings carol's page; she answers there and the transcript goes live.
        await expect(page.get_by_test_id("call-panel")).to_be_visible(timeout=30_000)
        await page.get_by_test_id("call-answer").click()
        await expect(page.get_by_test_id("call-state")).to_have_text(
            "Connected", timeout=TIMEOUT_MS
        )
        await expect(panel).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.get_by_test_id("live-transcript-state")).to_have_text("Listening")

        # Both speakers' words come through as final lines, labelled.
        lines = page.get_by_test_id("live-transcript-lines")
        said = lines.locator('li[data-speaker="customer"][data-final="true"]').filter(
            has_text=CALLER_WORDS
        )
        await expect(said.first).to_be_visible(timeout=LINE_TIMEOUT_MS)
        await expect(said.first.locator(".speaker")).to_have_text("Caller")
        hers = lines.locator('li[data-speaker="agent"][data-final="true"]').filter(
            has_text=AGENT_WORDS
        )
        await expect(hers.first).to_be_visible(timeout=LINE_TIMEOUT_MS)
        await expect(hers.first.locator(".speaker")).to_have_text("You")

        # The caller hangs up: the transcript says so and stays on the page.
        run: PjsuaCallerRun = await asyncio.wait_for(caller, CALLER_HOLD_S + 30.0)
        await expect(page.get_by_test_id("live-transcript-state")).to_have_text(
            "Call ended", timeout=TIMEOUT_MS
        )
        await expect(said.first).to_be_visible()
        shown = await lines.locator("li").all_inner_texts()
        print("live transcript on the page:", *shown, sep="\n  ")
    finally:
        if not caller.done():
            await asyncio.wait_for(caller, CALLER_HOLD_S + 40.0)
    assert run.all("playing"), run.describe()  # the caller's words went into the call
    log = server.log_text()
    assert "live transcript for carol" in log, log[-4000:]
