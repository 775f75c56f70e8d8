"""Several pjsua2 phones in one process, scripted line by line: agents (and callers) for tests.

Each phone is a pjsua2 account with its own UDP transport and RTP ports, as
separate softphones would be. An agent registers with digest auth; a phone with
``"register": false`` only places calls (a caller). Every phone plays its own
tone into each of its calls (a looping 8 kHz WAV made at start-up) and records
what it hears, so a test can tell who hears whom.

Arguments: ``--server-host``, ``--server-port``, ``--phones JSON`` (a list of
``{"username", "password", "register", "behaviour", "tone_hz", "sip_port",
"rtp_port", "display_name", "end_after_transfer"}``; only ``username`` is
required; ``end_after_transfer``, true by default, hangs a call up once the
final NOTIFY of its REFER says 2xx, as softphones do), ``--workdir`` (tone
and recording WAVs, the PJSIP log) and ``--max-lifetime-s`` (the process quits by
itself after that, whatever happens).

Behaviours, what a phone does with an incoming call after its ``180 Ringing``:
``auto-answer``, ``auto-answer after S``, ``ignore`` (rings until cancelled or
told otherwise) and ``reject CODE``.

Events, one JSON object per line on stdout, each with ``event`` and ``t``
(``time.monotonic()``, comparable across processes on Linux):

- ``ready`` {phones}; ``registered`` / ``unregistered`` / ``reg_failed`` {account, code, expires}
- ``incoming`` {account, call, sip_call_id, from, to, request_uri, headers, msg}: headers
  is the INVITE's header set (name as sent -> value; repeats joined with ", "),
  msg the whole message as received (``OnIncomingCallParam.rdata.wholeMsg``)
- ``calling`` {account, call, uri}; ``ringing`` {call, code} (a 18x to our INVITE)
- ``answered`` {account, call, sip_call_id}: the dialog is confirmed
- ``media_active`` {call, codec}
- ``cancelled`` {account, call}: an incoming call ended by the far end before we answered
- ``disconnected`` {account, call, code, reason, answered, incoming}
- ``transfer_result`` {call, code, reason, final}: NOTIFYs of our REFER
- ``transfer_request`` {call, uri}: the far end asked us to transfer (REFER to us)
- ``heard`` {account, call, segment, seconds, dominant_hz, rms, path}: what the call
  heard since media started or since the last ``measure`` (first 0.3 s skipped)
- ``ack`` {command} or ``error`` {command, message} for each command, in order
- ``reg_state``/``call_state`` for diagnosis, ``error`` {message, command}, ``done``

Commands, one per line on stdin (``ID`` is a ``call`` from an event):
``answer ID [CODE]``, ``reject ID CODE``, ``hangup ID``, ``xfer ID URI``,
``xfer_replaces ID OTHER_ID``, ``call ACCOUNT URI``, ``dtmf ID DIGITS``,
``measure ID``, ``behaviour ACCOUNT SPEC``, ``register ACCOUNT``,
``unregister ACCOUNT``, ``quit``. End of input is ``quit`` too.

PJSIP traps (shared/ENVIRONMENT-NOTES.md): no worker threads (``threadCnt=0``),
callbacks on the main thread only, with the main thread polling
``libHandleEvents`` (and stdin between polls); the null sound device; every
Python ``Call``, ``Account``, player and recorder dropped before ``libDestroy``,
a live call hung up before its ``Call`` is dropped, or the process aborts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import time
import traceback
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj

RATE_HZ = 8000  # the conference bridge's rate: 8 kHz WAVs reach G.711 unresampled
SKIP_S = 0.3  # the jitter buffer's start-up, left out of what a call "heard"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}), flush=True)


# ------------------------------------------------------------------ audio


def _gone_port_ok() -> contextlib.AbstractContextManager[None]:
    """Stopping a transmission whose port is gone is done: when a call ends, pjsua
    may remove its conference port before onCallState reports DISCONNECTED."""
    return contextlib.suppress(pj.Error)


def write_tone(path: Path, tone_hz: float, seconds: float = 1.0) -> None:
    """One second of a whole-Hz tone loops without a click."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    pcm = (8000 * np.sin(2 * np.pi * tone_hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        out.writeframes(pcm.tobytes())


def analyse(path: Path) -> dict[str, Any]:
    """Length, dominant frequency and RMS of a recording, its first ``SKIP_S`` left out."""
    try:
        with wave.open(str(path), "rb") as recording:
            rate_hz = recording.getframerate()
            samples = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    except (OSError, EOFError, wave.Error) as exc:
        return {"seconds": 0.0, "dominant_hz": None, "rms": 0.0, "error": str(exc)}
    steady = samples[int(SKIP_S * rate_hz):].astype(np.float64)
    if len(steady) < rate_hz // 10:
        return {"seconds": round(len(samples) / rate_hz, 3), "dominant_hz": None, "rms": 0.0}
    steady -= steady.mean()
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    spectrum[0] = 0.0
    freqs = np.fft.rfftfreq(len(steady), d=1.0 / rate_hz)
    return {
        "seconds": round(len(samples) / rate_hz, 3),
        "dominant_hz": round(float(freqs[int(np.argmax(spectrum))]), 1),
        "rms": round(float(np.sqrt(np.mean(steady**2))), 1),
    }


# ------------------------------------------------------------------ phones


@dataclass
class Behaviour:
    """What a phone does with an incoming call once it rang."""

    action: str = "ignore"  # auto-answer | ignore | reject
    after_s: float = 0.0
    code: int = 0

    @classmethod
    def parse(cls, spec: str) -> Behaviour:
        words = spec.replace(":", " ").split()
        if not words or words[0] in ("ignore", "manual", "ring"):
            return cls("ignore")
        if words[0] in ("auto-answer", "answer"):
            after = float(words[-1]) if len(words) > 1 else 0.0
            return cls("auto-answer", after_s=after)
        if words[0] == "reject":
            return cls("reject", code=int(words[1]) if len(words) > 1 else 486)
        raise ValueError(f"unknown behaviour {spec!r} (auto-answer [after S], ignore, reject CODE)")


class Phone(pj.Account):
    """One softphone: an account on its own transport, with a tone and a behaviour."""

    def __init__(self, harness: Harness, spec: dict[str, Any]) -> None:
        super().__init__()
        self.harness = harness
        self.name: str = spec["username"]
        self.spec = spec
        self.behaviour = Behaviour.parse(spec.get("behaviour", "ignore"))
        self.tone_path = harness.workdir / f"tone-{self.name}.wav"
        write_tone(self.tone_path, float(spec.get("tone_hz", 600)))
        self.registered = False
        self.end_after_transfer = bool(spec.get("end_after_transfer", True))

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 (pjsua2 API)
        emit("reg_state", account=self.name, code=prm.code, reason=prm.reason,
             expires=prm.expiration)
        if prm.code // 100 == 2 and prm.expiration > 0:
            self.registered = True
            emit("registered", account=self.name, code=prm.code, expires=prm.expiration)
        elif prm.code // 100 == 2:
            self.registered = False
            emit("unregistered", account=self.name, code=prm.code)
        else:
            emit("reg_failed", account=self.name, code=prm.code, reason=prm.reason)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        call = PhoneCall(self, prm.callId, incoming=True)
        self.harness.add_call(call)
        message = prm.rdata.wholeMsg
        info = call.getInfo()
        call.sip_call_id = info.callIdString
        emit("incoming", account=self.name, call=call.ref, sip_call_id=info.callIdString,
             **{"from": info.remoteUri}, to=info.localUri,
             request_uri=message.split(" ", 2)[1] if " " in message else "",
             headers=header_set(message), msg=message)
        ringing = pj.CallOpParam()
        ringing.statusCode = 180
        call.answer(ringing)
        behaviour = self.behaviour
        if behaviour.action == "reject":
            self.harness.later(0.05, lambda: call.reject(behaviour.code))
        elif behaviour.action == "auto-answer":
            self.harness.later(behaviour.after_s, lambda: call.accept(200))


class PhoneCall(pj.Call):
    """A call of one phone: its state, tone player and recorder."""

    def __init__(self, phone: Phone, call_id: int = pj.PJSUA_INVALID_ID, *,
                 incoming: bool) -> None:
        super().__init__(phone, call_id)
        self.phone = phone
        self.incoming = incoming
        self.ref = ""
        self.sip_call_id = ""
        self.state = pj.PJSIP_INV_STATE_NULL
        self.confirmed = False
        self.rejected = False
        self.audio: pj.AudioMedia | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.recording: Path | None = None
        self.segment = 0

    # callbacks

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        self.state = info.state
        self.sip_call_id = info.callIdString or self.sip_call_id
        emit("call_state", account=self.phone.name, call=self.ref, state=info.stateText,
             code=info.lastStatusCode, reason=info.lastReason)
        if info.state == pj.PJSIP_INV_STATE_EARLY and not self.incoming:
            emit("ringing", account=self.phone.name, call=self.ref, code=info.lastStatusCode)
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            emit("answered", account=self.phone.name, call=self.ref,
                 sip_call_id=info.callIdString)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.finish_media()
            code = info.lastStatusCode
            if self.incoming and not self.confirmed and not self.rejected and code == 487:
                emit("cancelled", account=self.phone.name, call=self.ref)
            emit("disconnected", account=self.phone.name, call=self.ref, code=code,
                 reason=info.lastReason, answered=self.confirmed, incoming=self.incoming)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        if self.audio is not None:
            return
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            self.audio = self.getAudioMedia(media.index)
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(self.phone.tone_path))  # loops
            # Kept only once created: stopTransmit on a player that failed aborts PJSIP.
            self.player = player
            self.player.startTransmit(self.audio)
            self.start_recording()
            try:
                stream = self.getStreamInfo(media.index)
                codec = f"{stream.codecName}/{stream.codecClockRate}"
            except pj.Error:
                codec = None
            emit("media_active", account=self.phone.name, call=self.ref, codec=codec)
            return

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        emit("transfer_result", account=self.phone.name, call=self.ref, code=prm.statusCode,
             reason=prm.reason, final=bool(prm.finalNotify))
        if prm.finalNotify and prm.statusCode // 100 == 2 and self.phone.end_after_transfer:
            # RFC 5589 §6.1: once the transfer succeeded, the transferor ends its dialog
            # with the transferee, as softphones do.
            self.phone.harness.later(0.0, lambda: self.live and self.hangup(pj.CallOpParam(True)))

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:  # noqa: N802
        emit("transfer_request", account=self.phone.name, call=self.ref, uri=prm.dstUri)

    # actions

    def accept(self, code: int = 200) -> None:
        if self.state in (pj.PJSIP_INV_STATE_DISCONNECTED, pj.PJSIP_INV_STATE_CONFIRMED):
            return
        op = pj.CallOpParam()
        op.statusCode = code
        self.answer(op)

    def reject(self, code: int) -> None:
        if self.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            return
        self.rejected = True
        op = pj.CallOpParam()
        op.statusCode = code
        self.hangup(op)

    def start_recording(self) -> None:
        assert self.audio is not None
        self.segment += 1
        path = self.phone.harness.workdir / f"heard-{self.phone.name}-{self.ref}-{self.segment}.wav"
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        self.recorder, self.recording = recorder, path
        self.audio.startTransmit(self.recorder)

    def measure(self, restart: bool) -> None:
        """Close the current recording, report what it heard, and start the next one."""
        if self.audio is None or self.recorder is None or self.recording is None:
            return
        with _gone_port_ok():
            self.audio.stopTransmit(self.recorder)
        # Dropping the recorder writes the WAV header's sizes, but pjsua2 destroys it
        # only on a later libHandleEvents: read the file a little later.
        self.recorder = None
        path, segment, account, ref = self.recording, self.segment, self.phone.name, self.ref
        self.phone.harness.later(0.1, lambda: emit(
            "heard", account=account, call=ref, segment=segment, path=str(path),
            **analyse(path)), at_exit=True)
        self.recording = None
        if restart:
            self.start_recording()

    def finish_media(self) -> None:
        if self.audio is not None and self.player is not None:
            with _gone_port_ok():
                self.player.stopTransmit(self.audio)
        self.player = None
        self.measure(restart=False)
        self.audio = None

    @property
    def live(self) -> bool:
        return self.state not in (pj.PJSIP_INV_STATE_NULL, pj.PJSIP_INV_STATE_DISCONNECTED)


def header_set(message: str) -> dict[str, str]:
    """The header fields of a SIP message: name as sent -> value (repeats joined, unfolded)."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines: list[str] = []
    for line in head.split("\n")[1:]:
        if line[:1] in (" ", "\t") and lines:  # RFC 3261 §7.3.1: folded continuation
            lines[-1] += " " + line.strip()
        elif line:
            lines.append(line)
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


# ------------------------------------------------------------------ harness


@dataclass
class Harness:
    """The endpoint, its phones and calls, timers, and the command reader."""

    endpoint: pj.Endpoint
    server: str
    workdir: Path
    phones: dict[str, Phone] = field(default_factory=dict)
    calls: dict[str, PhoneCall] = field(default_factory=dict)
    timers: list[tuple[float, Any, bool]] = field(default_factory=list)
    next_ref: int = 1
    quitting: bool = False
    _stdin_buffer: bytes = b""

    def add_call(self, call: PhoneCall) -> None:
        call.ref = f"c{self.next_ref}"
        self.next_ref += 1
        self.calls[call.ref] = call

    def later(self, delay_s: float, action: Any, *, at_exit: bool = False) -> None:
        """Run ``action`` from the loop after ``delay_s``; ``at_exit``: also if quitting."""
        self.timers.append((time.monotonic() + delay_s, action, at_exit))

    def add_phone(self, spec: dict[str, Any], host: str) -> None:
        transport = pj.TransportConfig()
        transport.port = int(spec.get("sip_port", 0))
        transport.boundAddress = host
        transport_id = self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        config = pj.AccountConfig()
        user = spec["username"]
        display = spec.get("display_name")
        config.idUri = f'"{display}" <sip:{user}@{host}>' if display else f"sip:{user}@{host}"
        config.sipConfig.transportId = transport_id
        if spec.get("register", True):
            config.regConfig.registrarUri = f"sip:{self.server}"
            config.regConfig.timeoutSec = int(spec.get("expires_s", 300))
            config.regConfig.retryIntervalSec = 0  # a failure is reported, not retried
            config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", user, 0, spec.get("password", ""))
            )
        config.mediaConfig.transportConfig.boundAddress = host
        if spec.get("rtp_port"):
            # pjsua's default of 4000 would be shared by every phone a test run starts.
            config.mediaConfig.transportConfig.port = int(spec["rtp_port"])
            config.mediaConfig.transportConfig.portRange = 40
        config.natConfig.sdpNatRewriteUse = 0
        config.natConfig.viaRewriteUse = 0
        config.natConfig.contactRewriteUse = 0
        phone = Phone(self, spec)
        phone.create(config)
        self.phones[user] = phone

    # commands

    def read_commands(self) -> list[str]:
        commands: list[str] = []
        while select.select([sys.stdin], [], [], 0)[0]:
            chunk = os.read(sys.stdin.fileno(), 4096)
            if not chunk:
                commands.append("quit")
                break
            self._stdin_buffer += chunk
        while b"\n" in self._stdin_buffer:
            line, self._stdin_buffer = self._stdin_buffer.split(b"\n", 1)
            if line.strip():
                commands.append(line.decode().strip())
        return commands

    def run_command(self, line: str) -> None:
        words = line.split()
        verb, args = words[0], words[1:]
        if verb == "quit":
            self.quitting = True
        elif verb == "answer":
            self.call(args[0]).accept(int(args[1]) if len(args) > 1 else 200)
        elif verb == "reject":
            self.call(args[0]).reject(int(args[1]) if len(args) > 1 else 486)
        elif verb == "hangup":
            call = self.call(args[0])
            if call.live:
                call.hangup(pj.CallOpParam(True))
        elif verb == "xfer":
            self.call(args[0]).xfer(args[1], pj.CallOpParam(True))
        elif verb == "xfer_replaces":
            self.call(args[0]).xferReplaces(self.call(args[1]), pj.CallOpParam(True))
        elif verb == "call":
            phone = self.phones[args[0]]
            call = PhoneCall(phone, incoming=False)
            self.add_call(call)
            emit("calling", account=phone.name, call=call.ref, uri=args[1])
            call.makeCall(args[1], pj.CallOpParam(True))
        elif verb == "dtmf":
            self.call(args[0]).dialDtmf(args[1])
            emit("dtmf_sent", call=args[0], digits=args[1])
        elif verb == "measure":
            self.call(args[0]).measure(restart=True)
        elif verb == "behaviour":
            self.phones[args[0]].behaviour = Behaviour.parse(" ".join(args[1:]))
        elif verb in ("register", "unregister"):
            self.phones[args[0]].setRegistration(verb == "register")
        else:
            raise ValueError(f"unknown command {verb!r}")

    def call(self, ref: str) -> PhoneCall:
        if ref not in self.calls:
            raise KeyError(f"no call {ref!r} (known: {', '.join(self.calls)})")
        return self.calls[ref]

    # the loop

    def step(self) -> None:
        self.endpoint.libHandleEvents(10)
        now = time.monotonic()
        due = [action for at, action, _ in self.timers if at <= now]
        self.timers = [timer for timer in self.timers if timer[0] > now]
        for action in due:
            self.guarded(action, "timer")
        for line in self.read_commands():
            if self.guarded(lambda line=line: self.run_command(line), line):
                emit("ack", command=line)

    def guarded(self, action: Any, what: str) -> bool:
        """Run ``action``; report an exception as an ``error`` event. True if it ran."""
        try:
            action()
        except pj.Error as exc:
            emit("error", command=what, message=f"pjsua2: {exc.info()}")
        except Exception as exc:  # noqa: BLE001 (reported; the phones go on)
            emit("error", command=what, message=f"{type(exc).__name__}: {exc}")
        else:
            return True
        return False

    def poll(self, until: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.endpoint.libHandleEvents(10)
            if until():
                return True
        return bool(until())

    def shut_down(self) -> None:
        """Hang up, unregister, and drop every pjsua2 object in the order PJSIP needs."""
        for call in self.calls.values():
            if call.live:
                self.guarded(lambda call=call: call.hangup(pj.CallOpParam(True)), "hangup")
        self.poll(lambda: not any(c.live for c in self.calls.values()), 3.0)
        for call in self.calls.values():
            call.finish_media()
        registered = [p for p in self.phones.values() if p.registered]
        for phone in registered:
            self.guarded(lambda phone=phone: phone.setRegistration(False), "unregister")
        self.poll(lambda: not any(p.registered for p in registered), 3.0)
        self.poll(lambda: False, 0.2)  # the last transactions, and recorders' destruction
        for _, action, at_exit in self.timers:
            if at_exit:
                self.guarded(action, "report")
        self.timers.clear()
        self.calls.clear()
        self.phones.clear()


def start_endpoint(log_path: Path, max_calls: int) -> pj.Endpoint:
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.maxCalls = max_calls
    config.uaConfig.userAgent = "pjsua2-hotline-agent-phones"
    config.logConfig.level = 5
    config.logConfig.consoleLevel = 0
    config.logConfig.msgLogging = True
    config.logConfig.filename = str(log_path)
    config.medConfig.noVad = True  # every 20 ms goes out
    config.medConfig.clockRate = RATE_HZ
    config.medConfig.sndClockRate = RATE_HZ
    endpoint.libInit(config)
    return endpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-host", default="127.0.0.1")
    parser.add_argument("--server-port", type=int, required=True)
    parser.add_argument("--phones", required=True, help="JSON list of phone specs")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--max-lifetime-s", type=float, default=300.0)
    args = parser.parse_args()
    specs = json.loads(args.phones)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    endpoint = start_endpoint(workdir / "pjsip.log", max_calls=max(8, 4 * len(specs)))
    harness = Harness(endpoint, f"{args.server_host}:{args.server_port}", workdir)
    exit_code = 0
    try:
        for spec in specs:
            harness.add_phone(spec, args.server_host)
        endpoint.libStart()
        endpoint.audDevManager().setNullDev()
        emit("ready", phones=[s["username"] for s in specs])
        deadline = time.monotonic() + args.max_lifetime_s
        while not harness.quitting and time.monotonic() < deadline:
            harness.step()
        if not harness.quitting:
            emit("error", command="", message=f"max lifetime {args.max_lifetime_s} s reached")
            exit_code = 1
    except Exception as exc:  # noqa: BLE001 (reported, then a clean teardown)
        # Handled here: a live traceback keeps pjsua2 objects alive past libDestroy.
        traceback.print_exc()
        detail = exc.info() if isinstance(exc, pj.Error) else str(exc)
        emit("error", command="", message=f"{type(exc).__name__}: {detail}")
        exit_code = 1
    harness.shut_down()
    del harness
    endpoint.libDestroy()
    emit("done", exit_code=exit_code)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
