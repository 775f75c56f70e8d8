"""An agent answers a call in headless Chromium over WebRTC; each side hears the other.

The harness, not the SIP server, rings the agent: the bridge app runs in this
process with a ``Live`` that owns a real ``MediaEngine`` and ``BrowserPhones``.
The caller is an RTP leg of that engine on loopback, fed by a second RTP leg
(the caller's phone) that plays 1 kHz and keeps what it receives. When the
page answers, the caller's leg is bridged to the browser's PCM leg, as the
server does. Chromium's microphone is a 440 Hz WAV written here.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bridge.app import run_bridge
from bridge.auth import hash_password
from bridge.hub import Hub
from bridge.live import StaticLive
from bridge.settings import BridgeSettings
from conversations import open_store
from hotline.webrtc import BrowserPhones
from media_core.tone import tone_pcm
from media_core.transport_rtp import MediaEngine
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, WEBRTC_FLAGS

pytestmark = pytest.mark.timeout(120)

PASSWORD = "agent password 1"
TIMEOUT_MS = 15_000
CONTEXT = {
    "intent": "refill",
    "queue": "pharmacy",
    "customer": {"display_name": "Bo Caller"},
    "transcript": ["I need a prescription refill"],
    "conversation_id": None,
}


def dominant_hz(pcm: np.ndarray, rate_hz: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate_hz)[np.argmax(spectrum)])


def write_tone_wav(path: Path, frequency_hz: float) -> None:
    pcm = tone_pcm(frequency_hz, 10_000, rate_hz=48000, amplitude=0.5)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(pcm.tobytes())


@dataclass
class Harness:
    """The server side: bridge app, media engine, browser phones, and the caller."""

    url: str
    media: MediaEngine
    phones: BrowserPhones
    caller: int  # the caller's leg, bridged to the browser on answer
    phone: int  # the caller's phone, the far end of ``caller``
    phone_heard: list[np.ndarray] = field(default_factory=list)
    answered: list[tuple[str, str, int]] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)


class HarnessLive(StaticLive):
    """``StaticLive`` whose phone messages go to ``BrowserPhones``, as the server's do."""

    phones: BrowserPhones | None = None

    async def phone(self, agent: str, page: str, message: dict[str, Any]) -> dict[str, Any] | None:
        assert self.phones is not None
        return await self.phones.handle(agent, message, page)

    def phone_closed(self, agent: str, page: str) -> None:
        if self.phones is not None:
            self.phones.page_closed(agent, page)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = open_store(f"sqlite:///{tmp_path}/hotline.db")
    await store.start()
    await store.add_user("ann", {"agent"}, hash_password(PASSWORD))
    media = MediaEngine(42000, 42999)
    await media.start()
    hub = Hub()
    live = HarnessLive()
    phones = live.phones = BrowserPhones(media, hub.publish)
    runner = await run_bridge(
        "127.0.0.1", 0, store, live, BridgeSettings(secret_key=b"k" * 32), hub=hub
    )
    host, port = runner.addresses[0][:2]
    # The caller's phone plays 1 kHz to the caller's leg; both are RTP on loopback.
    caller = await media.open_stream("127.0.0.1", None, None, "PCMU", 0, None)
    phone = await media.open_stream(
        "127.0.0.1",
        None,
        ("127.0.0.1", media.local_port(caller)),
        "PCMU",
        0,
        tone_pcm(1000, 1000),
    )
    made = Harness(f"http://{host}:{port}", media, phones, caller, phone)
    media.media_tick.stream_audio(phone)

    def heard(stream_ids: list[int], frames: np.ndarray) -> None:
        made.phone_heard.append(frames[stream_ids.index(phone)].copy())

    def answered(agent: str, call_id: str, leg: int) -> None:
        made.answered.append((agent, call_id, leg))
        media.media_tick.bridge(caller, leg)

    media.on_audio = heard
    phones.on_answered = answered
    phones.on_ended = lambda agent, call_id: made.ended.append((agent, call_id))
    try:
        yield made
    finally:
        await phones.close()
        await runner.cleanup()
        await media.stop()
        await store.close()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian package chromium; `make test` installs it)")
    async_api = pytest.importorskip("playwright.async_api")
    microphone = tmp_path / "microphone-440hz.wav"
    write_tone_wav(microphone, 440)
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


async def until(predicate: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# What the page's <audio> plays, by WebAudio: the strongest frequency and its level.
HEARD_IN_PAGE = """async () => {
  const stream = document.getElementById("call-audio").srcObject;
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(stream).connect(analyser);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 1;
  for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  await context.close();
  return { hz: (best * context.sampleRate) / analyser.fftSize, db: bins[best] };
}"""


async def test_agent_answers_in_the_browser_and_each_side_hears_the_other(
    harness: Harness, page: Any
) -> None:
    from playwright.async_api import expect

    await page.goto(f"{harness.url}/agent")
    await page.fill("#login-name", "ann")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#connection")).to_have_text("Live", timeout=TIMEOUT_MS)
    await page.get_by_test_id("phone-switch").check()
    await expect(page.get_by_test_id("phone-status")).to_have_text("Phone on")
    assert harness.phones.ready("ann")

    await harness.phones.ring("ann", "call-1", CONTEXT)
    panel = page.get_by_test_id("call-panel")
    await expect(panel).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#call-title")).to_have_text("Incoming call from Bo Caller")
    await expect(page.get_by_test_id("call-context")).to_have_text("refill · pharmacy")
    await expect(page.locator("#call-transcript")).to_have_text("I need a prescription refill")
    await page.get_by_test_id("call-answer").click()
    await expect(page.get_by_test_id("call-state")).to_have_text("Connected", timeout=TIMEOUT_MS)
    [(agent, call_id, leg)] = harness.answered
    assert (agent, call_id) == ("ann", "call-1")

    # The caller's phone hears the agent's microphone (440 Hz) through the tick.
    await asyncio.sleep(1.0)
    harness.phone_heard.clear()
    await until(lambda: len(harness.phone_heard) >= 75)
    heard_by_caller = np.concatenate(harness.phone_heard)
    assert dominant_hz(heard_by_caller) == pytest.approx(440, abs=10)
    assert np.abs(heard_by_caller).max() > 2000  # a tone, not comfort noise
    # The agent hears the caller (1 kHz) in the page.
    in_page = await page.evaluate(HEARD_IN_PAGE)
    assert in_page["hz"] == pytest.approx(1000, abs=15), in_page
    assert in_page["db"] > -60, in_page
    assert harness.media.media_tick.pcm_stats(leg).frames_pushed > 100

    await page.get_by_test_id("call-hangup").click()
    await expect(panel).to_be_hidden()
    await until(lambda: harness.ended == [("ann", "call-1")])
    assert leg not in harness.media.media_tick
    assert harness.phones.calls() == []
