"""``hotline serve``: the SIP endpoint, the media engine and the call policy, wired.

Inbound calls are answered with SDP from the offer/answer module and go into
the speech IVR (``ivr.runner``): prompts, barge-in, streaming recognition and
intent matching, until the flow transfers the call to a queue. There it waits
with hold music while ``hotline.contact_center`` has the ACD ring an agent's
softphone (our B2BUA's outbound leg, with the context in its headers) or
browser, and bridges the two legs when the agent answers. Each call's IVR
outcome is appended to ``DATA_DIR/ivr/outcomes-DAY.jsonl`` and served at
``/api/calls/{id}/ivr``. With ``ivr.enabled: false`` a call hears the greeting
tone instead (a media test line). Agents register with digest auth. Overload
and drain are handled here: above ``sip.max_calls`` and while draining, a new
INVITE gets 503 with Retry-After and the calls already up are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from asr.service import AsrService
from bridge.hub import Hub
from bridge.live import PHONE_UNAVAILABLE
from hotline.call_records import CallRecords, caller_identity
from hotline.config import Config, ConfigError, recordings_dir
from hotline.contact_center import ContactCenter
from hotline.logs import call_log
from hotline.recordings_service import RecordingsService
from ivr.actions import Hangup, Transfer
from ivr.flow import Flow
from ivr.outcome import IvrOutcome
from ivr.prompts import PromptLibrary
from ivr.runner import IvrCall, IvrRunner
from ivr.session import IvrSession
from ivr.source import FlowError
from ivr.tts import synthesizer_named
from media_core.media_events import DtmfReceived, MediaEvent, SpeechEnded, SpeechStarted
from media_core.prompt import PromptCache
from media_core.tone import tone_pcm
from media_core.transport_rtp import MediaEngine
from sip.address import NameAddress
from sip.call_leg import CallLeg
from sip.endpoint import SipEndpoint
from sip.errors import RemoteProtocolError
from sip.message import Request, Response, make_response
from sip.offer_answer import (
    Codec,
    MediaCapabilities,
    NegotiatedMedia,
    build_offer,
    negotiate_answer,
    process_answer,
)
from sip.peer import Peer
from sip.registration_service import Credential, RegistrationService
from sip.sdp import SessionDescription
from sip.transaction_layer import TransactionLayer
from sip.ua_events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    IncomingCall,
    RegistrationChanged,
    TransferRequested,
    UaEvent,
)
from sip.uri import SipUri
from sip.user_agent import UaConfig, UserAgent

if TYPE_CHECKING:
    from hotline.webrtc import BrowserPhones

log = logging.getLogger("hotline.server")

_RTP_BIND_ATTEMPTS = 8
DEMO_FLOW = Path(__file__).parents[1] / "ivr" / "flows" / "hospital.yaml"
HOLD_MUSIC_HZ = (392, 494, 587)  # a soft G-major arpeggio while a call waits in a queue


@dataclass(slots=True, eq=False)
class Call:
    """One leg we carry media for."""

    leg: CallLeg
    stream_id: int | None = None
    rtp_port: int | None = None  # allocated for this call; owned by the stream once open
    opening: bool = False  # a socket is being bound for rtp_port
    recording_path: Path | None = None
    recording_started_at: float | None = None  # wall clock of the recording's first sample
    answered: asyncio.Future[bool] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    inbound: bool = False
    consult_to: str | None = None  # an agent's call to a colleague or queue: where it waits
    queue: str | None = None  # where the IVR sent it
    priority: int = 0
    offer_for: tuple[str, str] | None = None  # an agent leg: (the caller's Call-ID, agent)
    local_offer: SessionDescription | None = None  # our SDP offer on an outbound leg


class HotlineServer:
    """Everything ``hotline serve`` runs, for one process."""

    def __init__(
        self, config: Config, records: CallRecords | None = None, hub: Hub | None = None
    ) -> None:
        """Build everything; ``records`` writes calls into the conversation store.

        ``hub`` carries screen pops and agent states to the agents' pages.
        """
        self.config = config
        self.records = records
        self.hub = hub
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
        self.flow: Flow | None = None
        self.asr: AsrService | None = None
        self.ivr: IvrRunner | None = None
        self.center: ContactCenter | None = None
        self.browser_phones: BrowserPhones | None = None
        self.prompt_library: PromptLibrary | None = None
        self.prompts = PromptCache()
        self.capabilities = MediaCapabilities.from_names(config.media.codecs)
        self.calls: dict[str, Call] = {}
        self.draining = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._no_calls = asyncio.Event()  # set when the last call ends
        # One second of a steady tone loops without a click at any whole-Hz frequency.
        self._greeting = tone_pcm(config.media.greeting_tone_hz, 1000)
        self._hold_music = _hold_music()
        self._calls_by_stream: dict[int, Call] = {}
        self.recordings_dir = recordings_dir(config)
        # Registration, transcription and retention need the store.
        self.recordings: RecordingsService | None = None
        if records is not None:
            self.recordings = RecordingsService(config, records, self.media.recordings_written)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the data directory, the IVR, the media engine and the SIP transports."""
        await asyncio.to_thread(Path(self.config.data_dir).mkdir, parents=True, exist_ok=True)
        if self.config.ivr.enabled:
            await self._start_ivr()
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
        if self.recordings is not None:
            flow = self.flow
            if flow is None and self.config.recordings.transcribe:
                flow = await self._flow_for_transcription()
            await self.recordings.start(flow)
        self.center = ContactCenter(self, self.flow.queues() if self.flow is not None else ())
        if self.hub is not None:
            self.browser_phones = self._browser_phones(self.center, self.hub)
        self.center.start()
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

    async def _start_ivr(self) -> None:
        """Load the flow, start the recognizer workers and render every prompt once."""
        ivr = self.config.ivr
        path = Path(ivr.flow) if ivr.flow else DEMO_FLOW
        try:
            flow = await asyncio.to_thread(Flow.from_file, path)
        except FlowError as exc:
            raise ConfigError(exc.source, exc.line, exc.field_path, exc.problem) from None
        asr = self.config.asr
        self.asr = AsrService(asr.backend, model_path=asr.model_path, workers=asr.workers)
        await self.asr.start()
        cache = Path(ivr.prompt_cache_dir or Path(self.config.data_dir) / "prompts")
        prompts = PromptLibrary(cache, synthesizer_named(ivr.tts), base_dir=path.parent)
        started = time.monotonic()
        texts = flow.prompt_texts()
        await prompts.prewarm(texts)
        for file in flow.prompt_files():
            await asyncio.to_thread(prompts.load_file, file)
        # The first callers' utterances must not wait seconds for an LM to be built.
        await self.asr.prepare(IvrSession(flow, None, "").recognition_contexts())
        log.info(
            "IVR flow %r from %s: %d prompts ready in %.1f s, recognizer %s x%d",
            flow.name,
            path,
            len(texts),
            time.monotonic() - started,
            asr.backend,
            asr.workers,
        )
        self.flow = flow
        self.prompt_library = prompts
        self.ivr = IvrRunner(
            lambda call_id: IvrSession(flow, None, call_id),
            self.media.media_tick,
            prompts,
            self.asr,
            on_transfer=self._on_transfer,
            on_hangup=self._on_ivr_hangup,
            on_outcome=self._store_outcome,
        )
        self.media.on_audio = self._on_audio
        await self.ivr.start()

    async def _flow_for_transcription(self) -> Flow | None:
        """With the IVR off, the configured flow still tells transcription what callers say."""
        path = Path(self.config.ivr.flow) if self.config.ivr.flow else DEMO_FLOW
        try:
            return await asyncio.to_thread(Flow.from_file, path)
        except FlowError as exc:
            log.warning("transcription without the flow's phrases: %s", exc)
            return None

    async def stop(self) -> None:
        """Close everything; ``serve_forever`` returns."""
        self.endpoint.close()
        if self.center is not None:
            await self.center.close()
        if self.browser_phones is not None:
            await self.browser_phones.close()
        if self.ivr is not None:
            await self.ivr.close()
        if self.asr is not None:
            await self.asr.close()
        await self.media.stop()  # every recording is closed on disk now
        if self.recordings is not None:
            await self.recordings.stop()
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
            "ivr": {
                "calls": len(self.ivr.calls) if self.ivr is not None else 0,
                "queued": {q["name"]: q["length"] for q in self.queues() if q["length"]},
            },
            "recordings": self.recordings.status() if self.recordings is not None else None,
        }

    def call_outcome(self, call_id: str) -> dict[str, object] | None:
        """The IVR outcome of a call (live, or ended recently), for the API."""
        return self.ivr.outcome(call_id) if self.ivr is not None else None

    def queues(self) -> list[dict[str, Any]]:
        """Every queue, with its waiting calls and agents (``Live.queues``)."""
        if self.center is None:
            return []
        return [row | {"length": row["waiting"]} for row in self.center.queues()]

    def agent_state(self, agent: str, state: str, reason: str | None) -> dict[str, Any] | None:
        """An agent chose a state on the page or the REST API (``Live.agent_state``).

        Raises:
            ValueError: the state cannot be taken now.
        """
        if self.center is None or agent not in self.center.agents:
            return None
        self.center.set_agent_state(agent, state, reason)
        return self.agents()[agent]

    def chat_waiting(self, conversation_id: int) -> None:
        """A web chat waits for an agent (``Live.chat_waiting``)."""
        if self.center is not None:
            self.center.chat_waiting(conversation_id)

    def chat_taken(self, conversation_id: int, agent: str) -> None:
        """An agent took a chat (``Live.chat_taken``)."""
        if self.center is not None:
            self.center.chat_taken(conversation_id, agent)

    def chat_ended(self, conversation_id: int) -> None:
        """A chat was closed (``Live.chat_ended``)."""
        if self.center is not None:
            self.center.chat_ended(conversation_id)

    def agents(self) -> dict[str, dict[str, Any]]:
        """Routing's view of every agent (``Live.agents``)."""
        if self.center is None:
            return {}
        return {row["name"]: row for row in self.center.agents_status()}

    async def phone(self, agent: str, page: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """A message from an agent page's browser phone (``Live.phone``)."""
        if self.browser_phones is None:
            return {"type": "phone.error", "error": PHONE_UNAVAILABLE}
        reply = await self.browser_phones.handle(agent, message, page)
        if self.center is not None and message.get("type") in ("phone.ready", "phone.off"):
            self.center.presence_changed(agent)  # the page is a way to reach the agent
        return reply

    def phone_closed(self, agent: str, page: str) -> None:
        """An agent page's socket closed (``Live.phone_closed``)."""
        if self.browser_phones is not None:
            self.browser_phones.page_closed(agent, page)
        if self.center is not None:
            self.center.presence_changed(agent)

    def _browser_phones(self, center: ContactCenter, hub: Hub) -> BrowserPhones:
        from hotline.webrtc import BrowserPhones  # aiortc loads only when pages can call

        hosts = tuple(self.config.http.webrtc_ice_hosts) or (self.address,)
        phones = BrowserPhones(self.media, hub.publish, ice_hosts=hosts)
        phones.on_answered = center.browser_answered
        phones.on_rejected = center.browser_rejected
        phones.on_ended = center.browser_ended
        return phones

    def metrics(self) -> dict[str, Any]:
        """Live figures for the bridge's ``/metrics`` (``Live.metrics``)."""
        in_ivr = len(self.ivr.calls) if self.ivr is not None else 0
        queues = self.queues()
        waiting = sum(row["length"] for row in queues)
        expected = lost = 0
        jitters = []
        for stream_id in list(self._calls_by_stream):
            rx = self.media.media_tick.stream(stream_id).rx
            if rx is not None and rx.stats.expected:
                expected += rx.stats.expected
                lost += max(0, rx.stats.cumulative_lost)
                jitters.append(rx.stats.jitter_s() * 1000.0)
        asr = self.asr.stats() if self.asr is not None else None
        return {
            "active_calls": len(self.calls),
            "calls_by_state": {
                "ivr": in_ivr,
                "queued": waiting,
                "other": max(0, len(self.calls) - in_ivr - waiting),
            },  # fmt: skip
            "queues": {
                row["name"]: {"length": row["length"], "oldest_wait_s": row["oldest_wait_s"]}
                for row in queues
            },
            "asr_latency_ms": {
                "p50": asr.finalize_p50_ms if asr else math.nan,
                "p95": asr.finalize_p95_ms if asr else math.nan,
            },
            "packet_loss_ratio": lost / expected if expected else 0.0,
            "jitter_ms": sum(jitters) / len(jitters) if jitters else 0.0,
            "tick_overruns": self.media.overruns,
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
            if call is not None and call.offer_for is not None and self.center is not None:
                self.center.agent_answered(call)
            elif call is not None and call.answered is not None and not call.answered.done():
                call.answered.set_result(True)
        elif isinstance(event, RegistrationChanged):
            if self.center is not None:
                self.center.presence_changed(SipUri.parse(event.aor).user or "")
        elif isinstance(event, TransferRequested):
            call = self.calls.get(event.leg.leg_id)
            if call is not None and self.center is not None:
                self.center.transfer_requested(call, event)
            else:
                self.endpoint.apply(
                    self.ua.notify_transfer(event.leg, 603, "Declined", self.endpoint.now)
                )
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
        call = Call(leg, inbound=True, consult_to=self._consult_target(request))
        self.calls[leg.leg_id] = call
        if self.records is not None and call.consult_to is None:
            self.records.call_started(
                leg.call_id, request.headers.get("From") or "",
                request.headers.get("P-Asserted-Identity"),
            )  # fmt: skip
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
        in_ivr = call.inbound and call.consult_to is None and self.ivr is not None
        agent_leg = call.offer_for is not None or call.consult_to is not None
        try:
            call.stream_id = await self.media.open_stream(
                self._bind_host(),
                call.rtp_port,
                remote,
                codec.name,
                codec.payload_type,
                None if in_ivr or agent_leg else self._greeting,
                latch_hosts=frozenset(hosts),
                vad=in_ivr,
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
        if call.consult_to is not None and self.center is not None:
            self.media.media_tick.set_source(call.stream_id, self._hold_music)
            self.center.enqueue_consult(call, call.consult_to, _from_user(call.leg.invite))
        if agent_leg:
            return True  # bridged to its caller, whose recording hears both
        self._start_recording(call)
        if in_ivr:
            assert self.ivr is not None
            self.ivr.start_call(call.leg.call_id, call.stream_id)
            return True
        prompt = self.config.media.greeting_prompt
        if prompt:
            self.media.media_tick.play(call.stream_id, self.prompts.load(prompt))
        return True

    # ------------------------------------------------------------------ IVR

    def _on_transfer(self, ivr_call: IvrCall, transfer: Transfer) -> None:
        call = self._call_by_id(ivr_call.call_id)
        if call is None or call.stream_id is None:
            return
        call.queue, call.priority = transfer.queue, transfer.priority
        if self.records is not None:
            records, call_id = self.records, call.leg.call_id
            records.queued(call_id, transfer.queue, transfer.intent, transfer.priority)
        call_log("hotline.server", call.leg.call_id).info(
            "queued in %s (intent %s, priority %d)",
            transfer.queue,
            transfer.intent,
            transfer.priority,
        )
        # The flow's transfer message is still playing; the music goes under it.
        self.media.media_tick.set_source(call.stream_id, self._hold_music)
        if self.center is not None:
            context = self._call_context(call, transfer)
            self.center.enqueue(call, transfer.queue, transfer.priority, context)

    def _consult_target(self, request: Request) -> str | None:
        """The queue an agent's call to a colleague or a queue waits in, else None.

        ``_guard_invite`` has already made a request claiming an agent's From prove it.
        """
        if self.center is None or _from_user(request) not in self.center.agents:
            return None
        return self.center.route_target(request.uri.user)

    def _call_context(self, call: Call, transfer: Transfer) -> dict[str, Any]:
        """What the agent is told about a caller: who, why, and what they said."""
        headers = call.leg.invite.headers
        kind, customer, display_name = caller_identity(
            headers.get("From") or "",
            headers.get("P-Asserted-Identity"),
            self.config.store.default_country_code,
        )
        outcome = self.call_outcome(call.leg.call_id) or {}
        return {
            "call_id": call.leg.call_id,
            "customer": customer,
            "customer_kind": kind,
            "display_name": display_name,
            "intent": transfer.intent or outcome.get("intent"),
            "queue": transfer.queue,
            "priority": transfer.priority,
            "confidence": outcome.get("confidence"),
            "transcript": list(outcome.get("transcript") or []),
        }

    def _on_ivr_hangup(self, ivr_call: IvrCall, hangup: Hangup) -> None:
        call = self._call_by_id(ivr_call.call_id)
        if call is not None:
            call_log("hotline.server", call.leg.call_id).info("IVR hangs up: %s", hangup.reason)
            self.hangup(call)

    def _store_outcome(self, outcome: IvrOutcome) -> None:
        record = outcome.to_dict()
        clog = call_log("hotline.server", outcome.call_id)
        clog.info(
            "IVR outcome: intent=%s queue=%s confidence=%.2f method=%s attempts=%d "
            "decision_latency_ms=%s transcript=%r",
            record.get("intent"),
            record.get("queue"),
            record.get("confidence") or 0.0,
            record.get("method"),
            record.get("attempts") or 0,
            record.get("decision_latency_ms"),
            " / ".join(record.get("transcript") or []),
        )
        day = time.strftime("%Y-%m-%d", time.gmtime())
        path = Path(self.config.data_dir) / "ivr" / f"outcomes-{day}.jsonl"
        self._spawn(asyncio.to_thread(_append_line, path, json.dumps(record)))
        if self.records is not None:
            call = self._call_by_id(outcome.call_id)
            recording = call.recording_path if call is not None else None
            self.records.ivr_outcome(outcome.call_id, record, str(recording) if recording else None)

    def _call_by_id(self, call_id: str) -> Call | None:
        return next((c for c in self.calls.values() if c.leg.call_id == call_id), None)

    def _start_recording(self, call: Call) -> None:
        if not self.config.media.record_calls or call.stream_id is None:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        name = recording_name(call.leg.call_id)
        path = self.recordings_dir / day / f"{name}.{self.config.media.recording_format}"
        call.recording_started_at = time.time()
        self.media.record(call.stream_id, path, started_at=call.recording_started_at)
        call.recording_path = path

    def _on_audio(self, stream_ids: list[int], frames: NDArray[np.int16]) -> None:
        """One tick's tapped legs: callers in the IVR, and legs of live transcripts."""
        if self.ivr is not None:
            self.ivr.on_audio(stream_ids, frames)
        if self.center is not None:
            self.center.live_audio(stream_ids, frames)

    def _on_media_event(self, event: MediaEvent) -> None:
        if self.ivr is not None and self.ivr.on_media_event(event):
            return
        if self.center is not None and self.center.live_media_event(event):
            return
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
        # Still in the IVR, or in a queue: the caller gave up before reaching a person.
        reached = self.center is not None and self.center.reached_agent(call)
        abandoned = (call.queue is not None and not reached) or (
            self.ivr is not None and call.leg.call_id in self.ivr.calls
        )
        if self.ivr is not None:
            self.ivr.end_call(call.leg.call_id)
        if self.records is not None and call.inbound:
            self.records.call_ended(call.leg.call_id, answered_by_agent=not abandoned)
        if self.center is not None:
            self.center.leg_ended(call, event.status_code, event.reason)
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
            if call.recording_path is not None and self.recordings is not None:
                assert call.recording_started_at is not None
                self.recordings.call_ended(
                    call.leg.call_id, call.recording_path, call.recording_started_at
                )
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

    def track_agent_leg(
        self, leg: CallLeg, rtp_port: int, offer: SessionDescription, offer_for: tuple[str, str]
    ) -> Call:
        """Keep the leg of an INVITE the contact center sent to an agent."""
        call = Call(leg, rtp_port=rtp_port, local_offer=offer, offer_for=offer_for)
        self.calls[leg.leg_id] = call
        return call

    async def open_agent_media(self, call: Call, media: NegotiatedMedia) -> bool:
        """Open an answered agent leg's RTP (no greeting, no recording of its own).

        Raises:
            OSError: the port could not be bound.
        """
        return await self._open_media(
            call, media.remote_address, media.codec, media.telephone_event
        )

    def http_base_url(self) -> str | None:
        """Where the bridge's pages and API are reached, for links we hand out."""
        http = self.config.http
        host = self.address if http.host in ("0.0.0.0", "::", "") else http.host
        return f"http://{host}:{http.port}" if http.port else None

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


def _from_user(request: Request) -> str:
    try:
        return NameAddress.parse(request.headers.get("From") or "").uri.user or ""
    except RemoteProtocolError:
        return ""


def recording_name(call_id: str) -> str:
    """A call's recording file name (no suffix): its Call-ID, safe as a file name."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in call_id)


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


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


def _hold_music() -> NDArray[np.int16]:
    """Three soft notes and a rest, looped while a caller waits (peaks at -22 dBFS)."""
    edges = np.arange(3200)
    fade = np.minimum(1.0, np.minimum(edges, edges[::-1]) / 400)  # 50 ms in and out: no clicks
    notes = [(tone_pcm(hz, 400, amplitude=0.08) * fade).astype(np.int16) for hz in HOLD_MUSIC_HZ]
    return np.concatenate([*notes, np.zeros(4000, dtype=np.int16)])
