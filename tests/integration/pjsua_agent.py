"""A pjsua2 phone playing one of hotline's agents, run as its own process by ``test_pjsua2``.

It registers with digest auth, calls the hotline, records what it hears to a WAV,
hangs up, unregisters, and prints one JSON object per line on stdout for the test
to read. It runs in a subprocess so that a PJSIP crash cannot take pytest down and
so that its event polling does not fight pytest's asyncio loop.

PJSIP traps (shared/ENVIRONMENT-NOTES.md): no worker threads (``threadCnt=0``)
and callbacks on the main thread only, with the main thread polling
``libHandleEvents``; the null sound device; the Python ``Call`` and ``Account``
objects deleted before ``libDestroy``, or the process aborts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import pjsua2 as pj


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class AgentAccount(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.reg_states: list[tuple[int, int]] = []  # (status code, expiration s)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 (pjsua2 API)
        self.reg_states.append((prm.code, prm.expiration))
        emit("reg_state", code=prm.code, reason=prm.reason, expiration=prm.expiration)


class AgentCall(pj.Call):
    def __init__(self, account: pj.Account, wav_path: str) -> None:
        super().__init__(account)
        self.wav_path = wav_path
        self.recorder: pj.AudioMediaRecorder | None = None
        self.audio: pj.AudioMedia | None = None
        self.media_active_at: float | None = None
        self.state = pj.PJSIP_INV_STATE_NULL
        self.codec: str | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        self.state = info.state
        emit("call_state", state=info.stateText, code=info.lastStatusCode, reason=info.lastReason)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            if self.recorder is not None:
                continue
            self.audio = self.getAudioMedia(media.index)
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(self.wav_path)
            self.audio.startTransmit(self.recorder)
            self.media_active_at = time.monotonic()
            try:
                stream = self.getStreamInfo(media.index)
                self.codec = f"{stream.codecName}/{stream.codecClockRate}"
            except pj.Error:
                self.codec = None
            emit("media_active", codec=self.codec)

    def stop_recording(self) -> None:
        if self.audio is not None and self.recorder is not None:
            self.audio.stopTransmit(self.recorder)
        self.recorder = None  # closing the recorder writes the WAV header's sizes


def start_endpoint(
    user_agent: str, log_path: str, local_port: int, clock_rate_hz: int | None = None
) -> pj.Endpoint:
    """A started PJSIP endpoint: no threads, every SIP message logged, UDP on loopback.

    No silence suppression, so every 20 ms goes out. ``clock_rate_hz`` sets the
    conference bridge's rate (8000 keeps a played 8 kHz WAV from being resampled).
    """
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.userAgent = user_agent
    config.logConfig.level = 5
    config.logConfig.consoleLevel = 0
    config.logConfig.msgLogging = True
    config.logConfig.filename = log_path
    config.medConfig.noVad = True
    if clock_rate_hz is not None:
        config.medConfig.clockRate = clock_rate_hz
        config.medConfig.sndClockRate = clock_rate_hz
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.port = local_port
    transport.boundAddress = "127.0.0.1"
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()
    return endpoint


def poll(endpoint: pj.Endpoint, until: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        endpoint.libHandleEvents(10)
        if until():
            return True
    return bool(until())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-port", type=int, required=True)
    parser.add_argument("--local-port", type=int, required=True)
    parser.add_argument("--user", default="nurse1")
    parser.add_argument("--password", default="nurse1-demo")
    parser.add_argument("--callee", default="hotline")
    parser.add_argument("--wav", required=True)
    parser.add_argument("--log", required=True, help="PJSIP log with every SIP message")
    parser.add_argument("--record-s", type=float, default=2.0)
    args = parser.parse_args()
    server = f"127.0.0.1:{args.server_port}"

    endpoint = start_endpoint("pjsua2-hotline-test", args.log, args.local_port)

    account_config = pj.AccountConfig()
    account_config.idUri = f"sip:{args.user}@127.0.0.1"
    account_config.regConfig.registrarUri = f"sip:{server}"
    account_config.regConfig.timeoutSec = 300
    account_config.sipConfig.authCreds.append(
        pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
    )
    account_config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account_config.natConfig.sdpNatRewriteUse = 0
    account_config.natConfig.viaRewriteUse = 0
    account_config.natConfig.contactRewriteUse = 0
    # Every pjsua2 object lives in ``phone`` so that it can be dropped before libDestroy.
    phone: dict[str, Any] = {}
    exit_code = 1
    try:
        exit_code = run_phone(endpoint, account_config, args, server, phone)
        return exit_code
    finally:
        # Let the last transactions finish, then tear down in the order PJSIP needs.
        poll(endpoint, lambda: False, 0.3)
        if "call" in phone:
            phone["call"].stop_recording()
        phone.clear()
        endpoint.libDestroy()
        emit("done", exit_code=exit_code)


def run_phone(
    endpoint: pj.Endpoint,
    account_config: pj.AccountConfig,
    args: argparse.Namespace,
    server: str,
    phone: dict[str, Any],
) -> int:
    """Register, call, record, hang up, unregister; 0 when all of it went as expected."""
    account = phone["account"] = AgentAccount()
    account.create(account_config)
    registered = poll(endpoint, lambda: any(c == 200 for c, _ in account.reg_states), 10)
    emit("registered", ok=registered)
    if not registered:
        return 1

    call = phone["call"] = AgentCall(account, args.wav)
    call.makeCall(f"sip:{args.callee}@{server}", pj.CallOpParam(True))

    def disconnected() -> bool:
        return bool(call.state == pj.PJSIP_INV_STATE_DISCONNECTED)

    active = poll(endpoint, lambda: call.media_active_at is not None or disconnected(), 10)
    emit("call_answered", ok=active and call.media_active_at is not None, codec=call.codec)
    if call.media_active_at is None:
        return 1
    poll(endpoint, disconnected, args.record_s)
    call.stop_recording()
    remote_ended = disconnected()
    if not remote_ended:
        call.hangup(pj.CallOpParam(True))
    ended = poll(endpoint, disconnected, 5)
    emit("call_ended", ok=ended, ended_by_remote=remote_ended)

    account.setRegistration(False)
    unregistered = poll(endpoint, lambda: account.reg_states[-1] == (200, 0), 5)
    emit("unregistered", ok=unregistered)
    return 0 if (ended and not remote_ended and unregistered) else 1


if __name__ == "__main__":
    sys.exit(main())
