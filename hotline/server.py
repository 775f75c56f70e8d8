"""``hotline serve``: the SIP endpoint, the media engine and the call policy, wired.

Inbound calls are answered with SDP from the offer/answer module and a tone
from the media core. Agents register with digest auth; ``call_agent`` places the
outbound (UAC) leg to one of their registrations. Overload and drain are
handled here: above ``sip.max_calls`` and while draining, a new INVITE gets 503
with Retry-After and the calls already up are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from hotline.config import Config, ConfigError
from hotline.logs import call_log
from media_core.media_events import DtmfReceived, MediaEvent, SpeechEnded, SpeechStarted
from media_core.prompt import PromptCache
from media_core.tone import tone_pcm
from media_core.transport_rtp import MediaEngine
from sip.call_leg import CallLeg
from sip.endpoint import SipEndpoint
from sip.errors import RemoteProtocolError
from sip.message import Request, Response, make_response
from sip.offer_answer import (
    Codec,
    MediaCapabilities,
    build_offer,
    negotiate_answer,
    process_answer,
)
from sip.peer import Peer
from sip.registration_service import Credential, RegistrationService
from sip.sdp import SessionDescription
from sip.transaction_layer import TransactionLayer
from sip.ua_events import CallAnswered, CallConfirmed, CallEnded, IncomingCall, UaEvent
from sip.uri import SipUri
from sip.user_agent import UaConfig, UserAgent

log = logging.getLogger("hotline.server")

_RTP_BIND_ATTEMPTS = 8


@dataclass(slots=True, eq=False)
class Call:
    """One leg we carry media for."""

    leg: CallLeg
    stream_id: int | None = None
    rtp_port: int | None = None  # allocated for this call; owned by the stream once open
    opening: bool = False  # a socket is being bound for rtp_port
    recording_path: Path | None = None
    answered: asyncio.Future[bool] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class HotlineServer:
    """Everything ``hotline serve`` runs, for one process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        sip = config.sip
        self.address = sip.advertised_address or _guess_address(sip.host)
        self.domain = sip.domain or self.address
        self.registration = RegistrationService(
            realm=sip.realm,
            digest_algorithms=tuple(sip.digest_algorithms),
            credentials={a.username: Credential(a.username, a.password) for a in config.agents},
            secret=secrets.token_bytes(32),
            domain=self.domain,
            limits=sip.registration,
        )
        self.transactions = TransactionLayer()
        self.ua = UserAgent(
            UaConfig(host=self.address, port=sip.port),
            self.transactions,
            self.registration,
            invite_guard=self._guard_invite,
        )
        self.endpoint = SipEndpoint(self.ua, self._on_event)
        low, high = config.media.rtp_port_range
        self.media = MediaEngine(low, high, on_event=self._on_media_event)
        self.prompts = PromptCache()
        self.capabilities = MediaCapabilities.from_names(config.media.codecs)
        self.calls: dict[str, Call] = {}
        self.draining = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._no_calls = asyncio.Event()  # set when the last call ends
        # One second of a steady tone loops without a click at any whole-Hz frequency.
        self._greeting = tone_pcm(config.media.greeting_tone_hz, 1000)
        self._calls_by_stream: dict[int, Call] = {}
        self.recordings_dir = Path(config.data_dir) / "recordings"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the data directory, the media engine and the SIP transports."""
        await asyncio.to_thread(Path(self.config.data_dir).mkdir, parents=True, exist_ok=True)
        prompt = self.config.media.greeting_prompt
        if prompt:
            # Decoded once here, so a bad file stops start-up rather than a call.
            try:
                await asyncio.to_thread(self.prompts.load, prompt)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    "configuration", None, "media.greeting_prompt", str(exc)
                ) from None
        await self.media.start()
        sip = self.config.sip
        await self.endpoint.start(
            sip.host, sip.port, udp="udp" in sip.transports, tcp="tcp" in sip.transports
        )
        if sip.port == 0 and self.endpoint.udp is not None:
            self.ua.config.port = self.endpoint.udp.local_port
        log.info(
            "hotline listening on %s:%d (%s), advertising %s, RTP %s",
            sip.host,
            self.ua.config.port,
            "+".join(sip.transports),
            self.address,
            self.config.media.rtp_ports,
        )

    async def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT, then drain and stop."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.begin_drain)
        await self._stopped.wait()

    def begin_drain(self) -> None:
        """Stop taking calls; end when the last call ends or the drain timeout passes."""
        if self.draining:
            return
        self.draining = True
        log.info(
            "draining: %d call(s) up, timeout %.0f s", len(self.calls), self.config.drain_timeout_s
        )
        self._spawn(self._drain())

    async def _drain(self) -> None:
        await self._calls_ended(self.config.drain_timeout_s)
        for call in list(self.calls.values()):
            self.endpoint.apply(self.ua.hangup(call.leg, self.endpoint.now))
        # Give the BYEs a moment to be answered; their transactions time out anyway.
        await self._calls_ended(2.0)
        await self.stop()

    async def _calls_ended(self, timeout_s: float) -> None:
        """Wait until no call is up, or ``timeout_s`` passes."""
        if self.calls:
            self._no_calls.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._no_calls.wait(), timeout_s)

    async def stop(self) -> None:
        """Close everything; ``serve_forever`` returns."""
        self.endpoint.close()
        await self.media.stop()
        for task in list(self._tasks):
            task.cancel()
        self._stopped.set()
        log.info("stopped")

    def status(self) -> dict[str, object]:
        """What the health endpoint reports."""
        return {
            "status": "draining" if self.draining else "ok",
            "active_calls": len(self.calls),
            "registrations": self.registration.registrar.bindings_count(),
            "media": {
                "streams": len(self.media.media_tick),
                "tick_overruns": self.media.overruns,
                "ticks_skipped": self.media.ticks_skipped,
                "tick_errors": self.media.tick_errors,
                "recording_write_errors": self.media.write_errors,
            },
            "sip": dict(self.endpoint.stats) | dict(self.transactions.stats),
        }

    # --------------------------------------------------------------- policy

    def _guard_invite(self, request: Request, source: Peer, now: float) -> Response | None:
        retry = [("Retry-After", str(self.config.sip.retry_after_s))]
        if self.draining:
            return make_response(
                request, 503, "Draining", to_tag=secrets.token_hex(4), headers=retry
            )
        if len(self.calls) >= self.config.sip.max_calls:
            return make_response(
                request, 503, "Too Many Calls", to_tag=secrets.token_hex(4), headers=retry
            )
        # A request claiming to come from one of our agents must prove it (§22.3).
        return self.registration.check_agent_request(request, source, now)

    # --------------------------------------------------------------- events

    def _on_event(self, event: UaEvent) -> None:
        if isinstance(event, IncomingCall):
            self._on_incoming(event)
        elif isinstance(event, CallEnded):
            self._on_ended(event)
        elif isinstance(event, CallAnswered):
            call = self.calls.get(event.leg.leg_id)
            if call is not None and call.answered is not None and not call.answered.done():
                call.answered.set_result(True)
        elif isinstance(event, CallConfirmed):
            call_log("hotline.server", event.leg.call_id).debug("confirmed (ACK received)")

    def _on_incoming(self, event: IncomingCall) -> None:
        leg = event.leg
        clog = call_log("hotline.server", leg.call_id)
        now = self.endpoint.now
        request = event.request
        if request.body and request.content_type != "application/sdp":
            self.endpoint.apply(
                self.ua.reject(leg, 415, now, headers=[("Accept", "application/sdp")])
            )
            return
        try:
            offer = SessionDescription.parse(request.body) if request.body else None
        except RemoteProtocolError as exc:
            clog.info("bad SDP offer: %s", exc.reason)
            self.endpoint.apply(self.ua.reject(leg, 488, now, reason=exc.reason))
            return
        call = Call(leg)
        self.calls[leg.leg_id] = call
        clog.debug("incoming call from %s via %s", request.headers.get("From"), event.source)
        self._spawn(self._answer(call, offer))

    async def _answer(self, call: Call, offer: SessionDescription | None) -> None:
        leg = call.leg
        clog = call_log("hotline.server", leg.call_id)
        if offer is None:
            reason = "INVITE without SDP offer is not supported"
            self.endpoint.apply(self.ua.reject(leg, 488, self.endpoint.now, reason=reason))
            return
        # Another process may hold a port of our range: try a few before giving up.
        for _ in range(_RTP_BIND_ATTEMPTS):
            if not leg.is_active:  # CANCELed meanwhile
                return
            try:
                call.rtp_port = self.media.allocate_port()
            except RuntimeError:
                clog.warning("no RTP port free")
                self.endpoint.apply(
                    self.ua.reject(leg, 503, self.endpoint.now, reason="No Media Ports")
                )
                return
            try:
                media = negotiate_answer(
                    offer, self.address, call.rtp_port, self.capabilities, session_id=call.rtp_port
                )
            except RemoteProtocolError as exc:
                clog.info("SDP negotiation failed: %s", exc.reason)
                self.endpoint.apply(
                    self.ua.reject(leg, exc.status_code, self.endpoint.now, reason=exc.reason)
                )
                return
            try:
                opened = await self._open_media(
                    call, media.remote_address, media.codec, media.telephone_event
                )
            except OSError as exc:
                clog.info("RTP port %d unusable (%s); trying another", call.rtp_port, exc.strerror)
                self.media.release_port(call.rtp_port)
                call.rtp_port = None
                continue
            if not opened:
                return
            clog.info(
                "answering %s from %s: %s/%d, RTP %d -> %s, recording to %s",
                leg.invite.headers.get("From"),
                leg.peer,
                media.codec.name,
                media.codec.clock_rate_hz,
                call.rtp_port,
                media.remote_address,
                call.recording_path,
            )
            self.endpoint.apply(self.ua.answer(leg, bytes(media.answer), self.endpoint.now))
            return
        self.endpoint.apply(self.ua.reject(leg, 503, self.endpoint.now, reason="No Media Ports"))

    async def _open_media(
        self,
        call: Call,
        remote: tuple[str, int] | None,
        codec: Codec,
        telephone_event: Codec | None = None,
    ) -> bool:
        """Bind the call's RTP socket; False when the call ended meanwhile.

        Raises:
            OSError: the port could not be bound.
        """
        # Symmetric RTP may latch only to the SDP's address or the signalling peer's.
        hosts = {call.leg.peer.host} | ({remote[0]} if remote else set())
        call.opening = True
        try:
            call.stream_id = await self.media.open_stream(
                self._bind_host(),
                call.rtp_port,
                remote,
                codec.name,
                codec.payload_type,
                self._greeting,
                latch_hosts=frozenset(hosts),
                telephone_event_pt=telephone_event.payload_type if telephone_event else None,
                # A peer without RFC 4733 sends its keys as tones in the audio.
                inband_dtmf=telephone_event is None,
            )
        finally:
            call.opening = False
        if not call.leg.is_active:  # ended while the socket was bound
            self.media.close_stream(call.stream_id)
            return False
        self._calls_by_stream[call.stream_id] = call
        self._start_recording(call)
        prompt = self.config.media.greeting_prompt
        if prompt:
            self.media.media_tick.play(call.stream_id, self.prompts.load(prompt))
        return True

    def _start_recording(self, call: Call) -> None:
        if not self.config.media.record_calls or call.stream_id is None:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in call.leg.call_id)
        path = self.recordings_dir / day / f"{name}.{self.config.media.recording_format}"
        self.media.record(call.stream_id, path, started_at=time.time())
        call.recording_path = path

    def _on_media_event(self, event: MediaEvent) -> None:
        call = self._calls_by_stream.get(event.stream_id)
        if call is None:
            return
        clog = call_log("hotline.server", call.leg.call_id)
        if isinstance(event, DtmfReceived):
            digit = event.digit
            clog.info("DTMF %s (%s, %d ms)", digit.digit, event.method, digit.duration_ms)
            # The test menu: every key comes back, as RFC 4733 when the peer speaks it.
            if self.media.media_tick.stream(event.stream_id).telephone_event_pt is not None:
                self.media.media_tick.send_dtmf(event.stream_id, digit.digit, 100)
        elif isinstance(event, (SpeechStarted, SpeechEnded)):
            clog.info("%s at %.2f s", type(event).__name__, event.timestamp_s)

    def _on_ended(self, event: CallEnded) -> None:
        call = self.calls.pop(event.leg.leg_id, None)
        ended = f"ended: {event.reason}" + (f" ({event.status_code})" if event.status_code else "")
        clog = call_log("hotline.server", event.leg.call_id)
        if call is None or call.stream_id is None:
            clog.info("%s", ended)
        if call is None:
            return
        if call.stream_id is not None:
            self._calls_by_stream.pop(call.stream_id, None)
            s = self.media.stats(call.stream_id)
            # One line per call end: why it ended, then its media counters.
            clog.info(
                "%s; media: packets_sent=%d packets_received=%d packets_ignored=%d "
                "packets_invalid=%d send_errors=%d latched=%s",
                ended,
                s.packets_sent,
                s.packets_received,
                s.packets_ignored,
                s.packets_invalid,
                s.send_errors,
                s.latched,
            )
            self.media.close_stream(call.stream_id)
        elif call.rtp_port is not None and not call.opening:
            self.media.release_port(call.rtp_port)
        if call.answered is not None and not call.answered.done():
            call.answered.set_result(False)
        call.ended.set()
        if not self.calls:
            self._no_calls.set()

    # ------------------------------------------------------- outbound calls

    async def call_agent(self, username: str, timeout_s: float = 30.0) -> Call:
        """Call the preferred registration of ``username``; return once answered.

        Raises:
            LookupError: the agent has no registration.
            TimeoutError: nobody answered in ``timeout_s``.
        """
        aor = f"sip:{username}@{self.domain}"
        bindings = self.registration.registrar.lookup(aor, self.endpoint.now)
        if not bindings:
            raise LookupError(f"{username} is not registered")
        binding = bindings[0]
        contact = SipUri.parse(binding.contact_uri)
        transport, host, src_port = binding.source
        peer = Peer(transport, host, src_port)  # RFC 3581: reach it where it registered from
        port = self.media.allocate_port()
        offer = build_offer(self.address, port, self.capabilities, session_id=port)
        leg, outputs = self.ua.invite(
            contact,
            peer,
            self.endpoint.now,
            from_uri=f"<sip:hotline@{self.domain}>",
            sdp=bytes(offer),
            to_uri=f"<{aor}>",
        )
        answered = asyncio.get_running_loop().create_future()
        call = Call(leg, rtp_port=port, answered=answered)
        self.calls[leg.leg_id] = call
        self.endpoint.apply(outputs)
        try:
            ok = await asyncio.wait_for(asyncio.shield(answered), timeout_s)
        except TimeoutError:
            self.endpoint.apply(self.ua.hangup(leg, self.endpoint.now))
            raise
        if not ok:
            raise ConnectionRefusedError(f"{username} did not take the call")
        try:
            media = process_answer(offer, SessionDescription.parse(leg.remote_sdp))
        except RemoteProtocolError:
            # RFC 3264: the INVITE succeeded, so an unusable answer ends the call with BYE.
            self.endpoint.apply(self.ua.hangup(leg, self.endpoint.now))
            raise
        try:
            opened = await self._open_media(
                call, media.remote_address, media.codec, media.telephone_event
            )
        except OSError:
            self.endpoint.apply(self.ua.hangup(leg, self.endpoint.now))
            raise
        if not opened:
            raise ConnectionAbortedError(f"{username}'s call ended before media started")
        return call

    def hangup(self, call: Call) -> None:
        """Hang a call up from our side."""
        self.endpoint.apply(self.ua.hangup(call.leg, self.endpoint.now))

    # -------------------------------------------------------------- helpers

    def _bind_host(self) -> str:
        return self.config.sip.host

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed", exc_info=task.exception())


def _guess_address(bind_host: str) -> str:
    """The address peers should reach us at, when the config does not say."""
    if bind_host not in ("0.0.0.0", "::", ""):
        return bind_host
    # Connecting a UDP socket only asks the kernel for a route; nothing is sent.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()
