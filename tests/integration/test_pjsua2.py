"""``hotline serve`` against a PJSIP phone (pjsua2-python) playing agent nurse1.

The phone runs in its own process (``pjsua_agent.py``): it registers with digest
auth, calls the hotline, records ~2 s of what it hears to a WAV and hangs up. The
test reads the SIP messages from PJSIP's own log and the tone from the WAV.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.integration.helpers import HotlineProcess, dominant_frequency_hz, free_port, rms

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("pjsua2") is None,
        reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
    ),
]

AGENT = Path(__file__).with_name("pjsua_agent.py")
# PJSIP's message log: "RX 512 bytes Response msg 401/REGISTER/cseq=24191 (rdata...)".
RX_RESPONSE = re.compile(r"RX \d+ bytes Response msg (\d{3})/([A-Z]+)/cseq=(\d+)")
TX_REQUEST = re.compile(r"TX \d+ bytes Request msg ([A-Z]+)/cseq=(\d+)")


def _run_agent(server: HotlineProcess, tmp_path: Path) -> tuple[list[dict[str, object]], str, Path]:
    wav = tmp_path / "heard.wav"
    log = tmp_path / "pjsip.log"
    done = subprocess.run(
        [sys.executable, str(AGENT), "--server-port", str(server.sip_port),
         "--local-port", str(free_port(tcp=False)), "--wav", str(wav), "--log", str(log),
         "--record-s", "2.0"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    lines = done.stdout.decode().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    pjsip_log = log.read_text(errors="replace") if log.exists() else ""
    assert events and events[-1]["event"] == "done", (
        f"agent exited {done.returncode} without finishing\n"
        f"stdout: {done.stdout.decode()[-2000:]}\n"
        f"stderr: {done.stderr.decode()[-2000:]}\npjsip log tail:\n{pjsip_log[-3000:]}"
    )
    return events, pjsip_log, wav


def _event(events: list[dict[str, object]], name: str) -> dict[str, object]:
    matching = [e for e in events if e["event"] == name]
    assert matching, f"no {name!r} event in {events}"
    return matching[-1]


def _responses(pjsip_log: str, method: str) -> list[int]:
    return [int(code) for code, m, _ in RX_RESPONSE.findall(pjsip_log) if m == method]


def test_pjsua2_registers_as_nurse1_calls_the_hotline_hears_440_hz_and_hangs_up_cleanly(
    hotline: HotlineProcess, tmp_path: Path
) -> None:
    events, pjsip_log, wav = _run_agent(hotline, tmp_path)
    context = f"events: {events}\npjsip log tail:\n{pjsip_log[-3000:]}"

    # Registration: challenged first (401), then accepted with digest credentials.
    register = _responses(pjsip_log, "REGISTER")
    assert register[:2] == [401, 200], context
    assert _event(events, "registered")["ok"] is True, context
    # The call: nurse1 is an agent, so its INVITE is challenged (407) before it is answered.
    invite = _responses(pjsip_log, "INVITE")
    assert 407 in invite and invite[-1] == 200, context
    answered = _event(events, "call_answered")
    assert answered["ok"] is True, context
    assert str(answered["codec"]).split("/")[0] in ("PCMU", "PCMA"), answered

    # It hears the greeting tone.
    with wave.open(str(wav), "rb") as recording:
        rate_hz = recording.getframerate()
        assert recording.getsampwidth() == 2 and recording.getnchannels() == 1
        samples = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    assert len(samples) >= 1.5 * rate_hz, f"only {len(samples) / rate_hz:.2f} s recorded"
    steady = samples[int(0.3 * rate_hz):]  # skip the jitter buffer's start-up
    assert rms(steady) > 300, "the recording is silence"
    assert abs(dominant_frequency_hz(steady, rate_hz) - 440.0) <= 10.0

    # Hang-up: pjsua2 sent BYE and we answered 200; we did not hang up first.
    ended = _event(events, "call_ended")
    assert ended == {"event": "call_ended", "ok": True, "ended_by_remote": False}, context
    assert "BYE" in [m for m, _ in TX_REQUEST.findall(pjsip_log)], context
    assert _responses(pjsip_log, "BYE") == [200], context
    assert _event(events, "unregistered")["ok"] is True, context
    assert _event(events, "done")["exit_code"] == 0, context

    _, health = hotline.health()
    assert health["active_calls"] == 0, health
    assert health["registrations"] == 0, health
