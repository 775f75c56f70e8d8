"""``hotline call``: a caller on the command line, so anyone can try the hotline.

It places a real SIP call with our own user agent and media engine (G.711, with
RFC 4733 keys), then acts like a polite caller: it waits until the IVR's
prompt has finished (our own VAD on the audio it hears), says each ``--say``
text (rendered by TTS at telephone quality) or plays each ``--wav`` file, and
sends ``--dtmf`` keys, one step per prompt. Then it asks the server's API what
the IVR decided and prints it as one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hotline.config import RegistrationConfig
from media_core.media_events import MediaEvent, PromptFinished, SpeechEnded, SpeechStarted
from media_core.prompt import decode_prompt
from media_core.transport_rtp import MediaEngine
from sip.endpoint import SipEndpoint
from sip.errors import RemoteProtocolError
from sip.offer_answer import MediaCapabilities, build_offer, process_answer
from sip.peer import Peer
from sip.registration_service import RegistrationService
from sip.sdp import SessionDescription
from sip.transaction_layer import TransactionLayer
from sip.ua_events import CallAnswered, CallEnded, UaEvent
from sip.uri import SipUri
from sip.user_agent import UaConfig, UserAgent

log = logging.getLogger("hotline.call")

QUIET_S = 0.8  # the IVR has stopped talking once it was silent this long
FIRST_PROMPT_WAIT_S = 15.0  # how long to wait for the IVR to say anything


@dataclass(slots=True)
class Step:
    """One thing the caller does after a prompt: speak audio, or press keys."""

    audio: NDArray[np.int16] | None = None
    digits: str = ""
    label: str = ""


@dataclass(slots=True)
class CallerState:
    """What the caller's leg heard and did, on the media clock."""

    answered: asyncio.Future[bool]
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    ivr_talking: bool = False
    last_ivr_sound_s: float = 0.0
    heard_ivr: asyncio.Event = field(default_factory=asyncio.Event)  # spoke since our last step
    prompt_done: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""


def steps_from_args(
    say: list[str], wav: list[str], dtmf: str | None, tts: str = "hibari"
) -> list[Step]:
    """The caller's script: every ``--say`` and ``--wav``, in order, then the keys."""
    steps: list[Step] = []
    if say:
        from ivr.tts import synthesizer_named, telephone_quality

        synthesizer = synthesizer_named(tts)
        for text in say:
            pcm, rate_hz = synthesizer.synthesize(text)
            steps.append(Step(audio=telephone_quality(pcm, rate_hz, trim=True), label=text))
    for path in wav:
        steps.append(Step(audio=decode_prompt(path), label=path))
    if dtmf:
        steps.append(Step(digits=dtmf, label=f"dtmf {dtmf}"))
    return steps


async def place_call(
    target: str,
    steps: list[Step],
    *,
    from_number: str = "anonymous",
    api_url: str | None = None,
    barge_in: bool = False,
    timeout_s: float = 60.0,
    local_host: str | None = None,
    stay_s: float = 0.0,
) -> dict[str, Any]:
    """Call ``target``, run ``steps``, and return what happened (JSON-ready).

    ``stay_s`` keeps the call up at least that long after the answer (to listen).

    Raises:
        ValueError: ``target`` is not a SIP URI.
        ConnectionError: the call was not answered.
    """
    uri = SipUri.parse(target)
    peer = Peer("udp", uri.host.strip("[]"), uri.port or 5060)
    local = local_host or _route_to(peer.host)
    loop = asyncio.get_running_loop()
    state = CallerState(answered=loop.create_future())

    def on_sip(event: UaEvent) -> None:
        if isinstance(event, CallAnswered) and not state.answered.done():
            state.answered.set_result(True)
        elif isinstance(event, CallEnded):
            status = f" ({event.status_code})" if event.status_code else ""
            state.end_reason = event.reason + status
            if not state.answered.done():
                state.answered.set_result(False)
            state.ended.set()

    def on_media(event: MediaEvent) -> None:
        now = loop.time()
        if isinstance(event, SpeechStarted):
            state.ivr_talking = True
            state.heard_ivr.set()
        elif isinstance(event, SpeechEnded):
            state.ivr_talking = False
            state.last_ivr_sound_s = now
        elif isinstance(event, PromptFinished):
            state.prompt_done.set()

    registration = RegistrationService(
        "caller", {}, secrets.token_bytes(32), local, RegistrationConfig()
    )
    ua = UserAgent(UaConfig(local, 0, contact_user=from_number), TransactionLayer(), registration)
    endpoint = SipEndpoint(ua, on_sip)
    # Many callers may share a process (tests, benchmarks): the kernel picks each
    # one's RTP port pair rather than a shared range.
    rtp_port = _free_rtp_port(local)
    media = MediaEngine(rtp_port, rtp_port + 1, on_event=on_media)
    await endpoint.start(local, 0, udp=True, tcp=False)
    assert endpoint.udp is not None
    ua.config.port = endpoint.udp.local_port
    await media.start()
    started = time.monotonic()
    result: dict[str, Any] = {"target": target, "from": from_number}
    try:
        port = media.allocate_port()
        capabilities = MediaCapabilities.from_names(["PCMU", "PCMA"])
        offer = build_offer(local, port, capabilities, session_id=port)
        leg, outputs = ua.invite(
            uri,
            peer,
            endpoint.now,
            from_uri=f'"{from_number}" <sip:{from_number}@{local}>',
            sdp=bytes(offer),
        )
        result["call_id"] = leg.call_id
        endpoint.apply(outputs)
        if not await asyncio.wait_for(state.answered, timeout_s):
            raise ConnectionError(f"the call was not answered: {state.end_reason}")
        try:
            negotiated = process_answer(offer, SessionDescription.parse(leg.remote_sdp))
        except RemoteProtocolError:
            endpoint.apply(ua.hangup(leg, endpoint.now))
            raise
        telephone_event = negotiated.telephone_event
        stream_id = await media.open_stream(
            local,
            port,
            negotiated.remote_address,
            negotiated.codec.name,
            negotiated.codec.payload_type,
            None,
            vad=True,
            telephone_event_pt=telephone_event.payload_type if telephone_event else None,
        )
        deadline = loop.time() + timeout_s
        for step in steps:
            if not barge_in:
                await _until_ivr_quiet(state, loop, deadline, api_url, leg.call_id)
            if state.ended.is_set() or await _decided(api_url, leg.call_id):
                break  # a later step is an answer to a question that was not asked
            await _do_step(media, stream_id, step, state, loop, deadline)
        answered_at = deadline - timeout_s
        result.update(await _ivr_outcome(api_url, leg.call_id, state, loop, deadline))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.ended.wait(), answered_at + stay_s - loop.time())
        if not state.ended.is_set():
            endpoint.apply(ua.hangup(leg, endpoint.now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.ended.wait(), 5.0)
    finally:
        result["call_duration_s"] = round(time.monotonic() - started, 2)
        result["ended"] = state.end_reason or "local hangup"
        endpoint.close()
        await media.stop()
    return result


async def _until_ivr_quiet(
    state: CallerState,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
    api_url: str | None,
    call_id: str,
) -> None:
    """Wait until the IVR spoke and then fell quiet, or decided.

    Once it decided, what plays is hold music, not a question.
    """
    first_wait_s = min(deadline - loop.time(), FIRST_PROMPT_WAIT_S)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.heard_ivr.wait(), max(first_wait_s, 0.0))
    polls = 0
    while loop.time() < deadline and not state.ended.is_set():
        if not state.ivr_talking and loop.time() - state.last_ivr_sound_s >= QUIET_S:
            return
        polls += 1
        if polls % 25 == 0 and await _decided(api_url, call_id):
            return
        await asyncio.sleep(0.02)


async def _do_step(
    media: MediaEngine,
    stream_id: int,
    step: Step,
    state: CallerState,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
) -> None:
    tick = media.media_tick
    if step.audio is not None:
        state.prompt_done.clear()
        tick.play(stream_id, step.audio)
        wait_s = len(step.audio) / 8000 + 1.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.prompt_done.wait(), min(wait_s, deadline - loop.time()))
    if step.digits:
        if tick.stream(stream_id).telephone_event_pt is None:
            raise ConnectionError("the hotline did not accept RFC 4733 telephone-event")
        for digit in step.digits:
            tick.send_dtmf(stream_id, digit, 120)
            await asyncio.sleep(0.25)  # key down 120 ms, then the gap between keys
    # Whatever the IVR says next is an answer to this step, not to the last one.
    state.heard_ivr.clear()
    state.last_ivr_sound_s = loop.time()


async def _ivr_outcome(
    api_url: str | None,
    call_id: str,
    state: CallerState,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
) -> dict[str, Any]:
    """Poll the server's API until the IVR decided, or the call ended.

    Also stops when the IVR asked something more (it spoke and fell quiet)
    that this caller has no answer for.
    """
    if api_url is None:
        return {}
    url = f"{api_url.rstrip('/')}/api/calls/{urllib.request.quote(call_id, safe='')}/ivr"
    outcome: dict[str, Any] = {}
    while loop.time() < deadline:
        fetched = await asyncio.to_thread(_get_json, url)
        if fetched is not None:
            outcome = fetched
            if fetched.get("queue") or fetched.get("finished"):
                break
        if state.ended.is_set():
            break
        asked_again = state.heard_ivr.is_set() and not state.ivr_talking
        if asked_again and loop.time() - state.last_ivr_sound_s >= QUIET_S:
            outcome["waiting_for_caller"] = True
            break
        if loop.time() >= deadline:
            break
        await asyncio.sleep(0.05)
    return outcome


async def _decided(api_url: str | None, call_id: str) -> bool:
    if api_url is None:
        return False
    outcome = await asyncio.to_thread(_get_json, _outcome_url(api_url, call_id))
    return bool(outcome and (outcome.get("queue") or outcome.get("finished")))


def _outcome_url(api_url: str, call_id: str) -> str:
    return f"{api_url.rstrip('/')}/api/calls/{urllib.request.quote(call_id, safe='')}/ivr"


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 (our own API)
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _free_rtp_port(host: str) -> int:
    """An even port whose odd neighbour (RTCP, RFC 3550 §11) is free too, on ``host``."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port % 2 or port >= 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp, socket.socket(
                socket.AF_INET, socket.SOCK_DGRAM
            ) as rtcp:
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
        except OSError:
            continue
        return port
    raise OSError("no free RTP port pair")


def _route_to(host: str) -> str:
    """Our address on the route to ``host`` (nothing is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((host, 9))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def default_api_url(target: str, http_port: int = 8080) -> str:
    """The API next to the SIP server named in ``target``."""
    host = SipUri.parse(target).host
    return f"http://{host}:{http_port}"
