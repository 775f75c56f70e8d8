"""Agents take calls in the browser: ``BrowserPhones``, one aiortc peer connection per call.

The server makes the offer (audio sendrecv, Opus then PCMU) and publishes it
to the agent's pages; a page that answers sends its SDP answer back over
``/ws/agent``. Once the answer is applied, the call's audio is a PCM leg of
the media tick (``MediaEngine.open_pcm_stream``), so the server bridges it to
the caller like any other leg: ``media_tick.bridge(caller, browser_leg)``.

Events to the agent's pages (topic ``agent_topic(agent)``):
- ``call.offer``: ``{call_id, sdp, context}``; ``context`` is the screen pop's
  (``intent``, ``queue``, ``customer``, ``transcript``, ``conversation_id``).
- ``call.answered``: ``{call_id, page}``: one page took it (the others stop ringing).
- ``call.cancel``: ``{call_id, reason}``: it stopped ringing (caller gone, another agent).
- ``call.hangup``: ``{call_id, reason}``: the call ended (``caller`` or ``agent``).

Messages from a page (``handle``; ``bridge.ws_agent`` checks their shapes):
``phone.ready`` and ``phone.off`` (the page's "Phone in this browser"
switch), ``call.answer {call_id, sdp}``, ``call.reject {call_id}``,
``call.hangup {call_id}``. Each may get a reply for that page only:
``phone.state {on}`` or ``phone.error {error, call_id?}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from bridge.hub import agent_topic
from hotline.webrtc_media import TickTrack, pump_received, restrict_ice_hosts
from media_core.transport_rtp import MediaEngine

__all__ = ["BrowserPhones"]

log = logging.getLogger("hotline.webrtc")

# Offered in this order: Opus (wideband, the browser's own), then PCMU (RFC 7874 §3).
_CODECS = ("audio/opus", "audio/PCMU")

Publish = Callable[[str, dict[str, Any]], int]


@dataclass(eq=False)
class _Call:
    agent: str
    call_id: str
    pc: RTCPeerConnection
    track: TickTrack
    state: Literal["ringing", "answering", "answered", "ended"] = "ringing"
    page: str | None = None
    stream_id: int | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _ignore(*_: object) -> None:
    pass


class BrowserPhones:
    """The browser calls of every agent page: offers, answers, media, hang-ups."""

    def __init__(
        self,
        media: MediaEngine,
        publish: Publish,
        *,
        ice_hosts: tuple[str, ...] = ("127.0.0.1",),
    ) -> None:
        """Serve browser calls whose audio is a PCM leg of ``media``'s tick.

        Args:
            media: the running media engine.
            publish: ``Hub.publish``: ``(topic, event) -> receivers``.
            ice_hosts: the addresses ICE host candidates are gathered on (the
                server's addresses the browsers can reach); loopback by default.

        Raises:
            ValueError: no ICE host.
        """
        if not ice_hosts:
            raise ValueError("ice_hosts must name at least one address")
        self.media = media
        self.publish = publish
        self.ice_hosts = tuple(ice_hosts)
        self.on_answered: Callable[[str, str, int], None] = _ignore
        self.on_rejected: Callable[[str, str, str], None] = _ignore
        self.on_ended: Callable[[str, str], None] = _ignore
        self._calls: dict[str, _Call] = {}
        self._ready: dict[str, set[str]] = {}  # agent -> pages with the phone on
        self._closing: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ the server

    def ready(self, agent: str) -> bool:
        """Whether a page of ``agent`` has its phone switched on (and is still open)."""
        return bool(self._ready.get(agent))

    def calls(self) -> list[str]:
        """The call ids ringing or connected in a browser."""
        return list(self._calls)

    async def ring(self, agent: str, call_id: str, context: dict[str, Any]) -> None:
        """Offer a call to the agent's pages (``call.offer``).

        Raises:
            ValueError: ``call_id`` is already ringing or connected.
        """
        if call_id in self._calls:
            raise ValueError(f"call {call_id} is already in a browser")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: host candidates
        call = _Call(agent, call_id, pc, TickTrack(self.media.media_tick.rate_hz))
        self._calls[call_id] = call
        transceiver = pc.addTransceiver(call.track, direction="sendrecv")
        capabilities = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences(
            [codec for name in _CODECS for codec in capabilities if codec.mimeType == name]
        )
        pc.on("track", lambda track: self._on_track(call, track))
        pc.on("connectionstatechange", lambda: self._on_connection_state(call))
        try:
            with restrict_ice_hosts(self.ice_hosts):
                await pc.setLocalDescription(await pc.createOffer())
        except BaseException:
            self._end(call)
            raise
        if call.state != "ringing":
            return  # cancelled while the candidates were gathered
        self.publish(
            agent_topic(agent),
            {
                "type": "call.offer",
                "call_id": call_id,
                "sdp": pc.localDescription.sdp,
                "context": context,
            },
        )

    def cancel(self, agent: str, call_id: str, reason: str) -> None:
        """Stop ringing (``call.cancel``); unknown or already answered calls are left alone."""
        call = self._calls.get(call_id)
        if call is None or call.agent != agent or call.state not in ("ringing", "answering"):
            return
        self.publish(
            agent_topic(agent), {"type": "call.cancel", "call_id": call_id, "reason": reason}
        )
        self._end(call)

    def hangup(self, call_id: str) -> None:
        """The caller hung up: tell the pages (``call.hangup``), close the pc and the PCM leg."""
        call = self._calls.get(call_id)
        if call is None:
            return
        self.publish(
            agent_topic(call.agent), {"type": "call.hangup", "call_id": call_id, "reason": "caller"}
        )
        self._end(call)

    async def close(self) -> None:
        """End every call and wait for their peer connections to close."""
        for call in list(self._calls.values()):
            self.publish(
                agent_topic(call.agent),
                {"type": "call.hangup", "call_id": call.call_id, "reason": "server"},
            )
            self._end(call)
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # ----------------------------------------------------------- the pages

    async def handle(
        self, agent: str, message: dict[str, Any], page: str = ""
    ) -> dict[str, Any] | None:
        """A message from one of the agent's pages; returns the reply for that page, if any.

        ``page`` tells the agent's pages apart (one per open socket).
        """
        kind = message.get("type")
        if kind == "phone.ready":
            self._ready.setdefault(agent, set()).add(page)
            return {"type": "phone.state", "on": True}
        if kind == "phone.off":
            self._phone_off(agent, page)
            return {"type": "phone.state", "on": False}
        call_id = message.get("call_id")
        call = self._calls.get(call_id) if isinstance(call_id, str) else None
        if call is None or call.agent != agent:
            return _error("that call is not ringing or connected here", call_id)
        if kind == "call.answer":
            return await self._answer(call, page, str(message.get("sdp", "")))
        if kind == "call.reject":
            if call.state != "ringing":
                return _error("that call is not ringing", call_id)
            self.publish(
                agent_topic(agent),
                {"type": "call.cancel", "call_id": call_id, "reason": "rejected"},
            )
            self._end(call)
            self.on_rejected(agent, call.call_id, "rejected")
            return None
        if kind == "call.hangup":
            if call.state != "answered" or call.page != page:
                return _error("that call is not connected on this page", call_id)
            self._hung_up_by_agent(call)
            return None
        return _error(f"unknown phone message {kind!r}", call_id)

    def page_closed(self, agent: str, page: str = "") -> None:
        """A page's socket closed: its phone is off, and a call it had ends."""
        self._phone_off(agent, page)

    # ------------------------------------------------------------ internals

    async def _answer(self, call: _Call, page: str, sdp: str) -> dict[str, Any] | None:
        if call.state != "ringing":
            return _error("that call is no longer ringing", call.call_id)
        call.state, call.page = "answering", page
        try:
            await call.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError and its own errors on bad SDP
            if call.state == "answering":
                log.info("call %s: the browser's answer failed: %s", call.call_id, exc)
                self._end(call)
                self.on_rejected(call.agent, call.call_id, "bad answer")
            return _error(f"the answer was refused: {exc}", call.call_id)
        if call.state != "answering":
            return _error("the call ended before it was answered", call.call_id)
        call.stream_id = self.media.open_pcm_stream(call.track.feed)
        call.state = "answered"
        self.publish(
            agent_topic(call.agent),
            {"type": "call.answered", "call_id": call.call_id, "page": page},
        )
        self.on_answered(call.agent, call.call_id, call.stream_id)
        return None

    def _on_track(self, call: _Call, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return

        def push(pcm: Any) -> None:
            if call.stream_id is not None and call.state == "answered":
                self.media.push_pcm(call.stream_id, pcm)

        task = asyncio.get_running_loop().create_task(
            pump_received(track, self.media.media_tick.rate_hz, push),
            name=f"webrtc-receive-{call.call_id}",
        )
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)

    def _on_connection_state(self, call: _Call) -> None:
        if call.pc.connectionState in ("failed", "closed") and call.state != "ended":
            log.info("call %s: the browser's connection %s", call.call_id, call.pc.connectionState)
            answered = call.state == "answered"
            self._end(call)
            if answered:
                self.on_ended(call.agent, call.call_id)
            else:
                self.on_rejected(call.agent, call.call_id, "connection failed")

    def _hung_up_by_agent(self, call: _Call) -> None:
        self.publish(
            agent_topic(call.agent),
            {"type": "call.hangup", "call_id": call.call_id, "reason": "agent"},
        )
        self._end(call)
        self.on_ended(call.agent, call.call_id)

    def _phone_off(self, agent: str, page: str) -> None:
        pages = self._ready.get(agent)
        if pages is not None:
            pages.discard(page)
            if not pages:
                del self._ready[agent]
        for call in [c for c in self._calls.values() if c.agent == agent]:
            if call.state in ("answering", "answered") and call.page == page:
                self._hung_up_by_agent(call)
            elif call.state == "ringing" and not self.ready(agent):
                self.publish(
                    agent_topic(agent),
                    {"type": "call.cancel", "call_id": call.call_id, "reason": "phone off"},
                )
                self._end(call)
                self.on_rejected(agent, call.call_id, "phone off")

    def _end(self, call: _Call) -> None:
        """Forget the call, close its PCM leg now and its peer connection soon (no callback)."""
        if call.state == "ended":
            return
        call.state = "ended"
        self._calls.pop(call.call_id, None)
        if call.stream_id is not None:
            self.media.close_stream(call.stream_id)
        call.track.stop()
        task = asyncio.get_running_loop().create_task(
            self._close_pc(call), name=f"webrtc-close-{call.call_id}"
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_pc(call: _Call) -> None:
        try:
            await call.pc.close()
        except Exception:
            log.exception("call %s: closing the peer connection failed", call.call_id)
        for task in list(call.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _error(text: str, call_id: object) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "phone.error", "error": text}
    if isinstance(call_id, str):
        reply["call_id"] = call_id
    return reply
