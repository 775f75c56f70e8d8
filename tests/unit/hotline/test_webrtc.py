"""BrowserPhones against an aiortc peer in this process (the "browser"), on loopback only.

The browser plays 440 Hz; the caller is a PCM leg of the same media engine
playing 1 kHz, bridged to the browser's leg when the answer is applied. Each
side must hear the other's tone, over Opus and over PCMU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bridge.hub import agent_topic
from hotline.webrtc import BrowserPhones
from hotline.webrtc_media import restrict_ice_hosts
from media_core.tone import tone_pcm
from media_core.transport_rtp import MediaEngine

pytestmark = pytest.mark.timeout(60)

LOOPBACK = ("127.0.0.1",)
TOPIC = agent_topic("ann")


def dominant_hz(pcm: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate_hz)[np.argmax(spectrum)])


def candidate_hosts(sdp: str) -> set[str]:
    # RFC 8839 §5.1: candidate:<foundation> <component> <transport> <priority> <address> ...
    return {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}


class ToneTrack(MediaStreamTrack):
    """The browser's microphone: a tone at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self, frequency_hz: float) -> None:
        super().__init__()
        self.pcm = tone_pcm(frequency_hz, 1000, rate_hz=48000)  # a whole number of periods
        self.pts = 0
        self.started: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.started is None:
            self.started = time.monotonic()
        await asyncio.sleep(max(0.0, self.started + self.pts / 48000 - time.monotonic()))
        start = self.pts % len(self.pcm)
        chunk = self.pcm[start : start + 960]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.time_base, frame.pts = 48000, Fraction(1, 48000), self.pts
        self.pts += 960
        return frame


@dataclass
class Browser:
    """An aiortc peer answering the server's offer, as the agent page does."""

    codec: str = "audio/opus"
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration([])))
    heard: list[np.ndarray] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def answer(self, offer_sdp: str) -> str:
        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.task = asyncio.get_running_loop().create_task(self._listen(track))

        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        [transceiver] = self.pc.getTransceivers()
        transceiver.sender.replaceTrack(ToneTrack(440))
        transceiver.direction = "sendrecv"
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType == self.codec])
        with restrict_ice_hosts(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                self.heard.append(out.to_ndarray().reshape(-1))

    async def close(self) -> None:
        await self.pc.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@dataclass
class Rig:
    media: MediaEngine
    phones: BrowserPhones
    published: list[tuple[str, dict[str, Any]]]
    answered: list[tuple[str, str, int]] = field(default_factory=list)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [event for topic, event in self.published if event["type"] == kind]

    async def ring(self, call_id: str = "c1") -> str:
        context = {"intent": "refill", "customer": {"display_name": "Bo"}, "transcript": ["hi"]}
        await self.phones.ring("ann", call_id, context)
        [offer] = [e for e in self.events("call.offer") if e["call_id"] == call_id]
        assert offer["context"] == context
        assert all(topic == TOPIC for topic, _ in self.published)
        return str(offer["sdp"])


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    media = MediaEngine(40000, 40999)
    await media.start()
    published: list[tuple[str, dict[str, Any]]] = []

    def publish(topic: str, event: dict[str, Any]) -> int:
        published.append((topic, event))
        return 1

    phones = BrowserPhones(media, publish, ice_hosts=LOOPBACK)
    made = Rig(media, phones, published)
    phones.on_answered = lambda *args: made.answered.append(args)
    phones.on_rejected = lambda *args: made.rejected.append(args)
    phones.on_ended = lambda *args: made.ended.append(args)
    await phones.handle("ann", {"type": "phone.ready"}, page="p1")
    try:
        yield made
    finally:
        await phones.close()
        await media.stop()
        leftovers = [t for t in asyncio.all_tasks() if t.get_name().startswith("webrtc-")]
        assert leftovers == []


async def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("codec", ["audio/opus", "audio/PCMU"])
async def test_each_side_hears_the_others_tone_over_loopback_only(rig: Rig, codec: str) -> None:
    caller_heard: list[np.ndarray] = []
    caller_tone = tone_pcm(1000, 1000)
    position = 0

    def caller_tick(frame: np.ndarray) -> None:
        # The caller's phone: each tick it hears a frame and says the next 20 ms of 1 kHz.
        nonlocal position
        caller_heard.append(frame)
        rig.media.push_pcm(caller, caller_tone[position : position + 160])
        position = (position + 160) % len(caller_tone)

    caller = rig.media.open_pcm_stream(caller_tick)
    rig.phones.on_answered = lambda agent, call_id, leg: (
        rig.answered.append((agent, call_id, leg)),
        rig.media.media_tick.bridge(caller, leg),
    )
    offer = await rig.ring()
    assert "opus/48000/2" in offer and "PCMU/8000" in offer
    browser = Browser(codec)
    try:
        answer = await browser.answer(offer)
        assert candidate_hosts(offer) == {"127.0.0.1"}
        assert candidate_hosts(answer) == {"127.0.0.1"}
        assert (
            await rig.phones.handle(
                "ann", {"type": "call.answer", "call_id": "c1", "sdp": answer}, page="p1"
            )
            is None
        )
        [(agent, call_id, leg)] = rig.answered
        assert (agent, call_id) == ("ann", "c1") and rig.media.media_tick.is_pcm(leg)
        assert rig.events("call.answered") == [
            {"type": "call.answered", "call_id": "c1", "page": "p1"}
        ]
        await wait_for(lambda: len(browser.heard) >= 100)  # 2 s of the browser's audio
        caller_heard.clear()
        await wait_for(lambda: len(caller_heard) >= 50)
        browser_audio = np.concatenate(browser.heard[-50:])
        assert dominant_hz(browser_audio, 48000) == pytest.approx(1000, abs=10)
        assert dominant_hz(np.concatenate(caller_heard), 8000) == pytest.approx(440, abs=10)
        assert rig.media.media_tick.pcm_stats(leg).frames_pushed >= 50
    finally:
        await browser.close()
    rig.phones.hangup("c1")
    assert rig.events("call.hangup") == [
        {"type": "call.hangup", "call_id": "c1", "reason": "caller"}
    ]
    assert leg not in rig.media.media_tick and rig.phones.calls() == []
    assert rig.ended == []  # the server hung up: no callback


async def test_cancel_stops_ringing_and_closes_the_peer_connection(rig: Rig) -> None:
    await rig.ring()
    [pc] = [call.pc for call in rig.phones._calls.values()]
    rig.phones.cancel("ann", "c1", "answered elsewhere")
    assert rig.events("call.cancel") == [
        {"type": "call.cancel", "call_id": "c1", "reason": "answered elsewhere"}
    ]
    assert rig.phones.calls() == []
    await rig.phones.close()
    assert pc.connectionState == "closed"
    reply = await rig.phones.handle("ann", {"type": "call.answer", "call_id": "c1", "sdp": "v=0"})
    assert reply == {
        "type": "phone.error",
        "error": "that call is not ringing or connected here",
        "call_id": "c1",
    }
    assert rig.answered == [] and rig.rejected == []


async def test_the_page_rejects_and_a_bad_answer_is_refused(rig: Rig) -> None:
    await rig.ring("c1")
    assert await rig.phones.handle("ann", {"type": "call.reject", "call_id": "c1"}) is None
    assert rig.rejected == [("ann", "c1", "rejected")]
    await rig.ring("c2")
    reply = await rig.phones.handle(
        "ann", {"type": "call.answer", "call_id": "c2", "sdp": "not sdp"}, page="p1"
    )
    assert reply is not None and reply["type"] == "phone.error" and reply["call_id"] == "c2"
    assert rig.rejected[-1] == ("ann", "c2", "bad answer")
    assert rig.phones.calls() == [] and rig.answered == []
    # Another agent cannot answer or reject ann's call.
    await rig.ring("c3")
    reply = await rig.phones.handle("bob", {"type": "call.reject", "call_id": "c3"})
    assert reply is not None and reply["type"] == "phone.error"
    assert rig.phones.calls() == ["c3"]


async def test_the_browser_hangs_up_or_its_page_closes(rig: Rig) -> None:
    for call_id, how in (("c1", "hangup"), ("c2", "page closed")):
        offer = await rig.ring(call_id)
        browser = Browser()
        try:
            answer = await browser.answer(offer)
            message = {"type": "call.answer", "call_id": call_id, "sdp": answer}
            await rig.phones.handle("ann", message, page="p1")
            leg = rig.answered[-1][2]
            if how == "hangup":
                hangup = {"type": "call.hangup", "call_id": call_id}
                assert await rig.phones.handle("ann", hangup, page="p2") is not None  # not its call
                assert await rig.phones.handle("ann", hangup, page="p1") is None
            else:
                rig.phones.page_closed("ann", "p1")
            assert rig.ended[-1] == ("ann", call_id)
            assert leg not in rig.media.media_tick
            assert rig.events("call.hangup")[-1]["reason"] == "agent"
        finally:
            await browser.close()
        if how == "hangup":
            assert rig.phones.ready("ann")
    assert not rig.phones.ready("ann")  # the closed page had the phone on


async def test_phone_switch_ready_and_off(rig: Rig) -> None:
    phones = rig.phones
    assert phones.ready("ann") and not phones.ready("bob")
    assert await phones.handle("ann", {"type": "phone.ready"}, page="p2") == {
        "type": "phone.state",
        "on": True,
    }
    assert await phones.handle("ann", {"type": "phone.off"}, page="p1") == {
        "type": "phone.state",
        "on": False,
    }
    assert phones.ready("ann")  # p2 still has it on
    await rig.ring()
    phones.page_closed("ann", "p2")
    assert not phones.ready("ann")
    # No page can answer any more: the ringing call is withdrawn.
    assert rig.rejected == [("ann", "c1", "phone off")]
    assert rig.events("call.cancel")[-1]["reason"] == "phone off"
    with pytest.raises(ValueError):
        BrowserPhones(rig.media, lambda topic, event: 0, ice_hosts=())


async def test_ringing_the_same_call_twice_is_refused(rig: Rig) -> None:
    await rig.ring()
    with pytest.raises(ValueError, match="already"):
        await rig.phones.ring("ann", "c1", {})
