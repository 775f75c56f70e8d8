"""DTMF from real peers: RFC 4733 events from PJSIP, tones in the audio from SIPp.

The server logs one line per key, ``[<call-id>] DTMF <digit> (<method>, <n> ms)``,
and, when telephone-event was negotiated, sends every key back to the caller as
RFC 4733 events of 100 ms (the test menu).

- RFC 4733: a pjsua2 phone (``pjsua_caller.py``) dials ``159#`` with
  ``Call.dialDtmf``, which pjmedia sends as telephone-event packets of
  ``PJMEDIA_DTMF_DURATION`` = 1600 timestamp units (200 ms) per key. The phone
  reports the keys it receives through its ``onDtmfDigit``/``onDtmfEvent``.
- In-band, from two peers that offer no telephone-event, so that their keys
  can only be tones in the audio: SIPp (PCMU only) replaying a committed
  capture, and the pjsua2 phone (its offer stripped of telephone-event)
  playing the same audio from a WAV. The audio holds the keys 3 (120 ms) and
  7 (200 ms) as tone pairs (``tests/data/media/make_dtmf_fixtures.py`` wrote
  both files; the tones are ours, the detection is the server's).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.helpers import (
    LOOPBACK,
    REPO,
    HotlineProcess,
    dtmf_log_entries,
    free_port,
    run_pjsua_caller,
    run_sipp,
)

pytestmark = pytest.mark.integration

MEDIA = REPO / "tests/data/media"
HotlineFactory = Callable[..., HotlineProcess]

needs_pjsua2 = pytest.mark.skipif(
    importlib.util.find_spec("pjsua2") is None,
    reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
)

PJMEDIA_DTMF_MS = 200  # pjmedia's PJMEDIA_DTMF_DURATION: 1600 units at 8 kHz
ECHO_MS = 100  # what the server's test menu sends back per key


@needs_pjsua2
def test_rfc4733_keys_from_pjsua2_are_logged_in_order_and_echoed_back_to_the_caller(
    hotline: HotlineProcess, tmp_path: Path
) -> None:
    keys = "159#"

    caller = run_pjsua_caller(
        hotline.sip_port, tmp_path / "caller", "--dtmf", keys, "--dtmf-after-s", "0.5",
        "--hold-s", "2.5",
    )

    context = caller.describe()
    assert caller.one("call_answered")["ok"] is True, context
    assert caller.one("dtmf_sent")["digits"] == keys, context
    assert caller.one("call_ended")["ok"] is True and caller.returncode == 0, context
    call_id = str(caller.one("media_active")["call_id"])
    assert hotline.wait_log(f"[{call_id}] ended", timeout_s=5)

    # The server heard each key once, as RFC 4733, with the duration pjmedia sent.
    logged = dtmf_log_entries(hotline.log_text(), call_id)
    assert [e.digit for e in logged] == list(keys), hotline.log_text()[-3000:]
    assert {e.method for e in logged} == {"rfc4733"}, logged
    assert all(abs(e.duration_ms - PJMEDIA_DTMF_MS) <= 20 for e in logged), logged

    # The phone got them back, in order, as RFC 4733 (pjsua's "RFC 2833"), each once.
    digits = caller.all("dtmf_digit")
    assert [d["digit"] for d in digits] == list(keys), context
    assert {d["method"] for d in digits} == {"rfc2833"}, context
    ended = [e for e in caller.all("dtmf_event") if e["end"]]
    assert [e["digit"] for e in ended] == list(keys), context
    assert all(e["duration_ms"] == ECHO_MS for e in ended), ended


INBAND_KEYS = [("3", 120), ("7", 200)]  # make_dtmf_fixtures.KEYS: digit, tone length (ms)


def _assert_inband_keys_logged(log: str, call_id: str | None = None) -> None:
    logged = dtmf_log_entries(log, call_id)
    # Exactly the two keys, no spurious ones from the tone edges or the silence.
    assert [(e.digit, e.method) for e in logged] == [(k, "inband") for k, _ in INBAND_KEYS], (
        log[-2000:]
    )
    for entry, (_, tone_ms) in zip(logged, INBAND_KEYS, strict=True):
        assert abs(entry.duration_ms - tone_ms) <= 30, (entry, tone_ms)


@pytest.mark.skipif(os.geteuid() != 0, reason="SIPp replays a pcap through a raw socket: root")
def test_inband_keys_replayed_by_sipp_without_telephone_event_are_logged_with_their_length(
    sipp: str, hotline: HotlineProcess, tmp_path: Path
) -> None:
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    # SIPp opens play_pcap_audio's file relative to its working directory.
    (workdir / "dtmf_inband_3_7.pcap").symlink_to(MEDIA / "dtmf_inband_3_7.pcap")

    result = run_sipp(
        f"{LOOPBACK}:{hotline.sip_port}",
        ["-sf", str(MEDIA / "uac_inband_dtmf.xml"), "-m", "1",
         "-mi", LOOPBACK, "-mp", str(free_port(tcp=False))],
        workdir=workdir, name="inband", timeout_s=20,
    )

    assert (result.returncode, result.successful, result.failed) == (0, 1, 0), result.describe()
    assert hotline.wait_log("] ended", timeout_s=5), hotline.log_text()[-2000:]
    _assert_inband_keys_logged(hotline.log_text())


@needs_pjsua2
def test_inband_keys_played_by_pjsua2_offering_no_telephone_event_are_logged_and_not_echoed(
    hotline: HotlineProcess, tmp_path: Path
) -> None:
    caller = run_pjsua_caller(
        hotline.sip_port, tmp_path / "caller", "--no-telephone-event",
        "--play", str(MEDIA / "dtmf_inband_3_7_8k.wav"), "--hold-s", "1.6",
    )

    context = caller.describe()
    assert "telephone-event" not in str(caller.one("sdp_offer")["sdp"]), context
    assert caller.one("call_answered")["ok"] is True, context
    assert caller.one("call_ended")["ok"] is True and caller.returncode == 0, context
    call_id = str(caller.one("media_active")["call_id"])
    assert hotline.wait_log(f"[{call_id}] ended", timeout_s=5), hotline.log_text()[-2000:]
    _assert_inband_keys_logged(hotline.log_text(), call_id)
    # Without telephone-event the test menu has no way to send the keys back.
    assert caller.all("dtmf_digit") == [] and caller.all("dtmf_event") == [], context
