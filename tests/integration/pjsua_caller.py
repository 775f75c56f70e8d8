"""A pjsua2 phone calling the hotline as a plain caller, run as its own process.

Used by ``test_media_pjsua2`` and ``test_dtmf_calls``. It does not register (a caller
whose From is not an agent needs no credentials), calls the hotline, and once
media is up it can:

- play a WAV into the call (``--play``), as a phone's microphone would;
- record what it hears to a WAV (``--record``);
- dial DTMF keys (``--dtmf``), which pjsua2 sends as RFC 4733 events when the
  answer negotiated telephone-event;
- report every DTMF key it receives, through both of pjsua2's callbacks;

then it hangs up after ``--hold-s`` seconds of media. It prints one JSON object
per line on stdout for the test to read. A subprocess keeps a PJSIP crash out of
pytest and keeps PJSIP's event polling away from pytest's own loop.

PJSIP traps (shared/ENVIRONMENT-NOTES.md): no worker threads (``threadCnt=0``)
and callbacks on the main thread only, with the main thread polling
``libHandleEvents``; the null sound device; every Python pjsua2 object (call,
account, player, recorder) dropped before ``libDestroy``, or the process aborts.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pjsua_agent import emit, poll, start_endpoint  # noqa: E402  (shared with the agent phone)

# pjmedia's PJMEDIA_STREAM_DTMF_IS_END flag of an event (IS_UPDATE is 1); the binding
# does not export the constant.
_DTMF_IS_END = 2


class CallerCall(pj.Call):
    """The call, its media hooks and the DTMF it hears."""

    def __init__(self, account: pj.Account, *, telephone_event: bool = True) -> None:
        super().__init__(account)
        self.telephone_event = telephone_event
        self.state = pj.PJSIP_INV_STATE_NULL
        self.audio: pj.AudioMedia | None = None
        self.media_active_at: float | None = None
        self.codec: str | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.digits: list[str] = []

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 API)
        info = self.getInfo()
        self.state = info.state
        emit("call_state", state=info.stateText, code=info.lastStatusCode, reason=info.lastReason)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        if self.audio is not None:
            return
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            self.audio = self.getAudioMedia(media.index)
            self.media_active_at = time.monotonic()
            try:
                stream = self.getStreamInfo(media.index)
                self.codec = f"{stream.codecName}/{stream.codecClockRate}"
            except pj.Error:
                self.codec = None
            emit("media_active", codec=self.codec, call_id=info.callIdString,
                 wall_time=time.time())
            return

    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:  # noqa: N802
        # pjsua2 has no setting to leave telephone-event out of the offer, but it
        # re-parses the SDP when this callback changes it.
        if not self.telephone_event:
            prm.sdp.wholeSdp = without_telephone_event(prm.sdp.wholeSdp)
            emit("sdp_offer", sdp=prm.sdp.wholeSdp)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        # pjsua2 calls this once per key, when the key starts.
        self.digits.append(prm.digit)
        emit("dtmf_digit", digit=prm.digit, method=_method_name(prm.method))

    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:  # noqa: N802
        # Called on every RFC 4733 update; ``end`` once the E bit came, with the
        # key's full duration in milliseconds.
        emit("dtmf_event", digit=prm.digit, method=_method_name(prm.method),
             duration_ms=int(prm.duration), end=bool(prm.flags & _DTMF_IS_END))

    def start_playing(self, path: str) -> None:
        assert self.audio is not None
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(Path(path).resolve()), pj.PJMEDIA_FILE_NO_LOOP)
        # Kept only once created: stopTransmit on a player that failed aborts PJSIP.
        self.player = player
        self.player.startTransmit(self.audio)
        emit("playing", path=path)

    def start_recording(self, path: str) -> None:
        assert self.audio is not None
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(Path(path).resolve()))
        self.recorder = recorder
        self.audio.startTransmit(self.recorder)

    def stop_media(self) -> None:
        """Detach player and recorder; dropping the recorder writes its WAV sizes."""
        if self.audio is not None:
            if self.player is not None:
                self.player.stopTransmit(self.audio)
            if self.recorder is not None:
                self.audio.stopTransmit(self.recorder)
        self.player = None
        self.recorder = None


def without_telephone_event(sdp: str) -> str:
    """``sdp`` with its telephone-event formats removed from m= lines and attributes."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    events = {
        line.split(":", 1)[1].split()[0]
        for line in lines
        if line.startswith("a=rtpmap:") and "telephone-event/" in line.lower()
    }
    kept = []
    for line in lines:
        if line.startswith("m="):
            fields = line.split()
            line = " ".join(fields[:3] + [pt for pt in fields[3:] if pt not in events])
        elif line.startswith(("a=rtpmap:", "a=fmtp:")):
            if line.split(":", 1)[1].split()[0] in events:
                continue
        kept.append(line)
    return "\r\n".join(kept)


def _method_name(method: int) -> str:
    return {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc2833", pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip_info"}.get(
        method, str(method)
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-port", type=int, required=True)
    parser.add_argument("--local-port", type=int, required=True)
    parser.add_argument("--log", required=True, help="PJSIP log with every SIP message")
    parser.add_argument("--user", default="caller", help="From user (not an agent: no auth)")
    parser.add_argument("--callee", default="hotline")
    parser.add_argument("--play", help="WAV to play into the call once media is up")
    parser.add_argument("--record", help="WAV to record what the caller hears")
    parser.add_argument("--dtmf", default="", help="keys to dial once media is up")
    parser.add_argument("--no-telephone-event", action="store_true",
                        help="offer no RFC 4733 events: keys can only be tones in the audio")
    parser.add_argument("--dtmf-after-s", type=float, default=0.5)
    parser.add_argument("--rtp-port", type=int, default=0, help="local RTP port (RTCP: +1)")
    parser.add_argument("--hold-s", type=float, default=4.0, help="media time before hanging up")
    parser.add_argument("--codec", help="offer this codec first, e.g. G722/16000")
    args = parser.parse_args()
    server = f"127.0.0.1:{args.server_port}"

    # The bridge at 8 kHz: the played WAV reaches the G.711 encoder without resampling.
    endpoint = start_endpoint("pjsua2-hotline-caller", args.log, args.local_port, 8000)
    if args.codec:
        endpoint.codecSetPriority(args.codec, 255)  # the top of pjsua's offer

    account_config = pj.AccountConfig()
    account_config.idUri = f"sip:{args.user}@127.0.0.1"
    account_config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    if args.rtp_port:
        # pjsua's default of 4000 would be shared by every phone a test run starts.
        account_config.mediaConfig.transportConfig.port = args.rtp_port
    account_config.natConfig.sdpNatRewriteUse = 0
    account_config.natConfig.viaRewriteUse = 0
    account_config.natConfig.contactRewriteUse = 0
    # Every pjsua2 object lives in ``phone`` so that it can be dropped before libDestroy.
    phone: dict[str, Any] = {}
    exit_code = 1
    try:
        exit_code = run_call(endpoint, account_config, args, server, phone)
    except Exception as exc:  # noqa: BLE001 (reported, then a clean teardown)
        # Handled here, not left to propagate: a live traceback keeps the Call
        # alive past libDestroy, and its late destructor aborts the process.
        traceback.print_exc()
        detail = exc.info() if isinstance(exc, pj.Error) else str(exc)
        emit("error", message=f"{type(exc).__name__}: {detail}")
    call = phone.get("call")
    if call is not None:
        call.stop_media()
        if call.state not in (pj.PJSIP_INV_STATE_NULL, pj.PJSIP_INV_STATE_DISCONNECTED):
            # Bailing out mid-call: end it first; deleting a live Call aborts PJSIP too.
            call.hangup(pj.CallOpParam(True))
            poll(endpoint, lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
        del call
    poll(endpoint, lambda: False, 0.3)  # the last transactions
    phone.clear()
    endpoint.libDestroy()
    emit("done", exit_code=exit_code)
    return exit_code


def run_call(
    endpoint: pj.Endpoint,
    account_config: pj.AccountConfig,
    args: argparse.Namespace,
    server: str,
    phone: dict[str, Any],
) -> int:
    """Call, play/record/dial, hang up; 0 when the call went as expected."""
    account = phone["account"] = pj.Account()
    account.create(account_config)
    call = phone["call"] = CallerCall(account, telephone_event=not args.no_telephone_event)
    call.makeCall(f"sip:{args.callee}@{server}", pj.CallOpParam(True))

    def disconnected() -> bool:
        return bool(call.state == pj.PJSIP_INV_STATE_DISCONNECTED)

    active = poll(endpoint, lambda: call.media_active_at is not None or disconnected(), 10)
    emit("call_answered", ok=active and call.media_active_at is not None, codec=call.codec)
    if call.media_active_at is None:
        return 1
    if args.record:
        call.start_recording(args.record)
    if args.play:
        call.start_playing(args.play)
    if args.dtmf:
        poll(endpoint, disconnected, args.dtmf_after_s)
        if not disconnected():
            call.dialDtmf(args.dtmf)
            emit("dtmf_sent", digits=args.dtmf)
    left_s = args.hold_s - (time.monotonic() - call.media_active_at)
    poll(endpoint, disconnected, max(0.0, left_s))
    call.stop_media()
    remote_ended = disconnected()
    if not remote_ended:
        call.hangup(pj.CallOpParam(True))
    ended = poll(endpoint, disconnected, 5)
    emit("call_ended", ok=ended, ended_by_remote=remote_ended, digits_received=call.digits)
    return 0 if (ended and not remote_ended) else 1


if __name__ == "__main__":
    sys.exit(main())
