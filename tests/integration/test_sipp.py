"""``hotline serve`` against SIPp and hand-written datagrams.

Load, media, bad input, overload, drain and a REGISTER flood.

SIPp is a third-party implementation we did not write, so agreeing with it is real
evidence of interoperability. All traffic stays on 127.0.0.1; every SIPp run is
bounded by call count (``-m``) and by time (``-timeout`` and a process timeout).
"""

from __future__ import annotations

import os
import re
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.helpers import (
    LOOPBACK,
    HotlineProcess,
    RawSip,
    RtpSink,
    SippRun,
    ack_for_failure,
    audio_offer,
    decode_g711,
    digest_authorization,
    dominant_frequency_hz,
    free_port,
    parse_rtp,
    rms,
    run_sipp,
    wait_until,
)

SIPP_SCENARIOS = Path(__file__).parent / "sipp"
SIPP_PCAPS = Path("/usr/share/sip-tester")

pytestmark = pytest.mark.integration

HotlineFactory = Callable[..., HotlineProcess]


def _target(server: HotlineProcess) -> str:
    return f"{LOOPBACK}:{server.sip_port}"


def _media_args() -> list[str]:
    # SIPp's own media port must be free, and on loopback like everything else.
    return ["-mi", LOOPBACK, "-mp", str(free_port(tcp=False))]


def _pcap_workdir(tmp_path: Path) -> Path:
    """A SIPp working directory with the ``pcap/`` folder ``uac_pcap`` plays from."""
    if not (SIPP_PCAPS / "g711a.pcap").exists():
        pytest.skip(f"SIPp's sample captures are not in {SIPP_PCAPS}")
    workdir = tmp_path / "sipp"
    (workdir / "pcap").mkdir(parents=True)
    for capture in SIPP_PCAPS.glob("*.pcap"):
        (workdir / "pcap" / capture.name).symlink_to(capture)
    return workdir


def _pcap_packets(path: Path) -> int:
    """How many packets a classic libpcap file holds (24-byte file header, 16-byte records)."""
    data = path.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offset, count = 24, 0
    while offset + 16 <= len(data):
        (captured,) = struct.unpack_from(order + "I", data, offset + 8)
        offset += 16 + captured
        count += 1
    return count


def _media_stats(log: str) -> list[dict[str, int]]:
    """The per-call ``media:`` lines the server logs at info level when a call ends."""
    stats = []
    for line in log.splitlines():
        if "media:" not in line:
            continue
        fields = re.findall(r"(packets_\w+|octets_\w+)\W+(\d+)", line.split("media:", 1)[1])
        counters = {name: int(value) for name, value in fields}
        stats.append(counters)
    return stats


# ----------------------------------------------------------------- (a) load


def test_sipp_uac_500_calls_at_50_cps_all_succeed_without_retransmissions(
    sipp: str, hotline_factory: HotlineFactory, tmp_path: Path
) -> None:
    server = hotline_factory(rtp_range_size=400)
    result = run_sipp(
        _target(server),
        ["-sn", "uac", "-r", "50", "-m", "500", "-l", "100", *_media_args()],
        workdir=tmp_path / "sipp", name="uac500", timeout_s=60,
    )

    assert result.returncode == 0, result.describe()
    assert result.successful == 500, result.describe()
    assert result.failed == 0, result.describe()
    # On loopback nothing is lost, so any retransmission is a protocol bug: SIPp
    # retransmits an INVITE/BYE only when our answer is late or missing, and stray
    # messages for finished calls (DeadCallMsgs) would be our 200s resent after ACK.
    assert result.retransmissions == 0, result.describe()
    assert result.count("DeadCallMsgs(C)") == 0, result.describe()
    assert result.count("OutOfCallMsgs(C)") == 0, result.describe()
    # Our side: a 2xx is resent only until its ACK arrives (RFC 3261 §13.3.1.4);
    # every ACK came within milliseconds, far below T1 = 500 ms, so none was resent.
    _, health = server.health()
    assert health["active_calls"] == 0, health
    assert server.sip_stat("retransmissions_sent") == 0, health


# ---------------------------------------------------------------- (b) media


def test_sipp_uac_pcap_20_calls_replaying_rtp_all_succeed_and_we_receive_it(
    sipp: str, hotline_factory: HotlineFactory, tmp_path: Path
) -> None:
    server = hotline_factory()
    workdir = _pcap_workdir(tmp_path)

    result = run_sipp(
        _target(server),
        # uac_pcap calls last ~9 s (an 8 s recording, then a DTMF): 20 at 10/s, all up at once.
        ["-sn", "uac_pcap", "-r", "10", "-m", "20", "-l", "20", *_media_args()],
        workdir=workdir, name="uac_pcap", timeout_s=45,
    )

    assert result.returncode == 0, result.describe()
    assert (result.successful, result.failed) == (20, 0), result.describe()
    assert server.wait_log("media:", timeout_s=5, count=20), server.log_text()[-3000:]
    stats = _media_stats(server.log_text())
    assert len(stats) == 20, stats
    # Loopback loses nothing: every call got every packet SIPp replayed, the 7 s
    # PCMA recording then the RFC 4733 DTMF '1' (uac_pcap plays both).
    replayed = sum(_pcap_packets(SIPP_PCAPS / name) for name in ("g711a.pcap", "dtmf_2833_1.pcap"))
    assert [s.get("packets_received") for s in stats] == [replayed] * 20, stats
    # And we sent our tone back on every call for as long as it lasted (~9 s of 20 ms).
    assert min(s.get("packets_sent", 0) for s in stats) > 300, stats


@pytest.mark.parametrize(
    "scenario",
    [
        "uac_to_sink.xml",
        pytest.param(
            "uac_pcap_to_sink.xml",
            marks=[
                pytest.mark.skipif(
                    os.geteuid() != 0, reason="SIPp replays pcap via a raw socket: root"
                ),
            ],
        ),
    ],
    ids=["caller-silent", "caller-replays-pcap-from-port-0"],
)
def test_rtp_we_send_back_is_a_440_hz_tone_in_the_answered_codec(
    sipp: str, hotline_factory: HotlineFactory, tmp_path: Path, scenario: str
) -> None:
    server = hotline_factory()
    workdir = _pcap_workdir(tmp_path)
    sink = RtpSink()
    try:
        result = run_sipp(
            _target(server),
            ["-sf", str(SIPP_SCENARIOS / scenario), "-key", "rtp_port", str(sink.port),
             "-d", "2500", "-r", "5", "-m", "5", "-l", "5", *_media_args()],
            workdir=workdir, name="uac_pcap_sink", timeout_s=30,
        )
        time.sleep(0.2)  # the last packets in flight
        packets = sink.snapshot()
    finally:
        sink.close()

    assert (result.returncode, result.successful, result.failed) == (0, 5, 0), result.describe()
    low, high = server.rtp_ports
    ours = {src: pkts for src, pkts in packets.items() if low <= src[1] <= high}
    assert len(ours) == 5, f"RTP sources seen: { {s: len(p) for s, p in packets.items()} }"
    for source, datagrams in ours.items():
        rtp = [parse_rtp(d) for d in datagrams]
        # ~2.5 s of 20 ms packets; allow for set-up and tear-down.
        assert len(rtp) >= 80, (source, len(rtp))
        assert {p.payload_type for p in rtp} == {8}, "we offered only PCMA (8) and events"
        assert len({p.ssrc for p in rtp}) == 1
        rtp.sort(key=lambda p: p.sequence)
        samples = decode_g711(b"".join(p.payload for p in rtp[:50]), 8)  # the first second
        assert rms(samples) > 500, "the tone is audible, not silence"
        assert abs(dominant_frequency_hz(samples, 8000) - 440.0) <= 10.0


# ------------------------------------------------------------- (c) bad input


def _invite(client: RawSip, **overrides: object) -> bytes:
    body = overrides.pop("body", audio_offer(free_port(tcp=False)))
    return client.request("INVITE", body=body, **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("breakage", "reason_names"),
    [
        (lambda m: m.replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"), "Max-Forwards"),
        (lambda m: m.replace(b"CSeq: 1 INVITE", b"CSeq: 1 OPTIONS"), "CSeq"),
        (lambda m: re.sub(rb"Content-Length: \d+", b"Content-Length: 9999", m), "Content-Length"),
        (lambda m: m.replace(b"INVITE sip:hotline@", b"INVITE sip:hotline@@", 1), "Request-URI"),
    ],
    ids=["max-forwards-not-a-number", "cseq-method-mismatch", "body-shorter-than-length",
         "bad-request-uri"],
)
def test_malformed_invite_gets_400_whose_reason_names_the_problem(
    hotline: HotlineProcess, breakage: Callable[[bytes], bytes], reason_names: str
) -> None:
    with RawSip(hotline.sip_port) as client:
        client.send(breakage(_invite(client)))
        reply = client.recv_final()

    assert reply is not None, "no answer to a malformed but addressable INVITE"
    assert reply.status == 400, reply.raw
    assert reason_names.lower() in reply.reason.lower(), reply.reason


def test_garbage_gets_no_reply_and_the_server_stays_up(hotline: HotlineProcess) -> None:
    garbage = [
        os.urandom(300),
        b"\x00\xff" * 100,
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",  # a response we cannot match to anything
        b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: nonsense\r\n\r\n",  # cannot be addressed
        b"\r\n\r\n",  # a keep-alive, not garbage, but it gets no answer either
        b"A" * 65_000,  # a near-maximal datagram of junk
    ]
    with RawSip(hotline.sip_port) as client:
        for datagram in garbage:
            client.send(datagram)
        assert client.recv(timeout_s=1.0) is None

        client.send(client.request("OPTIONS"))
        reply = client.recv_final()

    assert reply is not None and reply.status == 200, "the server still answers after garbage"
    status, health = hotline.health()
    assert status == 200 and health["status"] == "ok", health
    assert hotline.proc is not None and hotline.proc.poll() is None


def test_unknown_method_gets_501(hotline: HotlineProcess) -> None:
    with RawSip(hotline.sip_port) as client:
        client.send(client.request("FROBNICATE"))
        reply = client.recv_final()

    assert reply is not None and reply.status == 501, reply and reply.raw
    assert reply.header("allow") is not None, "501 says what we do support (RFC 3261 §8.2.1)"


@pytest.mark.parametrize(
    "offer",
    [
        audio_offer(40000, media="video", formats="96", rtpmaps=["a=rtpmap:96 H264/90000"]),
        audio_offer(40000, formats="96", rtpmaps=["a=rtpmap:96 AMR-WB/16000"]),
    ],
    ids=["video-only", "audio-with-unknown-codec"],
)
def test_invite_whose_sdp_offers_nothing_we_speak_gets_488(
    hotline: HotlineProcess, offer: bytes
) -> None:
    with RawSip(hotline.sip_port) as client:
        invite = _invite(client, body=offer)
        client.send(invite)
        reply = client.recv_final()
        assert reply is not None, "no final answer"
        client.send(ack_for_failure(invite, reply))

    assert reply.status == 488, reply.raw
    _, health = hotline.health()
    assert health["active_calls"] == 0


def test_invite_from_an_agent_address_is_challenged_with_407(hotline: HotlineProcess) -> None:
    with RawSip(hotline.sip_port) as client:
        invite = _invite(client, from_user="nurse1")
        client.send(invite)
        reply = client.recv_final()
        assert reply is not None
        client.send(ack_for_failure(invite, reply))

    assert reply.status == 407, reply.raw
    challenge = reply.header("proxy-authenticate") or ""
    assert challenge.startswith("Digest ") and 'realm="hotline"' in challenge, challenge


# ---------------------------------------------------------------- (d) overload


def test_above_max_calls_a_new_invite_gets_503_with_retry_after_and_the_calls_up_complete(
    sipp: str, hotline_factory: HotlineFactory, tmp_path: Path
) -> None:
    server = hotline_factory(max_calls=2)
    holders = SippRun(
        _target(server),
        ["-sn", "uac", "-d", "5000", "-r", "10", "-m", "2", "-l", "2", *_media_args()],
        workdir=tmp_path / "sipp", name="hold2", timeout_s=25,
    ).start()
    try:
        assert wait_until(lambda: server.health()[1].get("active_calls") == 2, timeout_s=5), (
            server.health()
        )
        with RawSip(server.sip_port) as client:
            invite = _invite(client)
            client.send(invite)
            reply = client.recv_final()
            assert reply is not None, "the third INVITE got no final answer"
            client.send(ack_for_failure(invite, reply))
        result = holders.finish()
    finally:
        holders.kill()

    assert reply.status == 503, reply.raw
    retry_after = reply.header("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) > 0, reply.raw
    assert (result.returncode, result.successful, result.failed) == (0, 2, 0), result.describe()


# ------------------------------------------------------------------- (e) drain


def test_sigterm_drains_new_invites_get_503_the_call_up_completes_and_we_exit_0(
    sipp: str, hotline_factory: HotlineFactory, tmp_path: Path
) -> None:
    drain_timeout_s = 20.0
    server = hotline_factory(drain_timeout_s=drain_timeout_s)
    caller = SippRun(
        _target(server),
        ["-sn", "uac", "-d", "3000", "-m", "1", *_media_args()],
        workdir=tmp_path / "sipp", name="drain", timeout_s=20,
    ).start()
    try:
        assert wait_until(lambda: server.health()[1].get("active_calls") == 1, timeout_s=5)
        server.terminate()
        signalled_at = time.monotonic()
        assert wait_until(lambda: server.health()[0] == 503, timeout_s=2)
        status, health = server.health()
        with RawSip(server.sip_port) as client:
            invite = _invite(client)
            client.send(invite)
            reply = client.recv_final()
            assert reply is not None, "an INVITE while draining got no final answer"
            client.send(ack_for_failure(invite, reply))
        result = caller.finish()
        exit_code = server.wait(drain_timeout_s)
        exited_after_s = time.monotonic() - signalled_at
    finally:
        caller.kill()

    assert (status, health["status"]) == (503, "draining"), health
    assert reply.status == 503 and reply.header("retry-after") is not None, reply.raw
    assert (result.returncode, result.successful, result.failed) == (0, 1, 0), result.describe()
    assert exit_code == 0, server.log_text()[-3000:]
    # It left when the call ended (~3 s after the call began), not at the timeout.
    assert exited_after_s < drain_timeout_s / 2, exited_after_s


# ------------------------------------------------------------ (f) REGISTER flood


def _register(client: RawSip, cseq: int, call_id: str, authorization: str | None = None) -> bytes:
    host, port = client.server
    return client.request(
        "REGISTER", uri=f"sip:{host}:{port}", from_user="nurse1", to_user="nurse1",
        call_id=call_id, cseq=cseq, from_tag="regtag",
        extra_headers=["Expires: 600", *([authorization] if authorization else [])],
    )


def _md5_challenge(reply: object) -> str:
    challenges = reply.headers.get("www-authenticate", [])  # type: ignore[attr-defined]
    for challenge in challenges:
        algorithm = re.search(r'algorithm="?([\w-]+)', challenge, re.I)
        if algorithm is None or algorithm.group(1).upper() == "MD5":
            return str(challenge)
    raise AssertionError(f"no MD5 challenge offered: {challenges}")


def test_register_flood_with_wrong_passwords_gets_the_address_blocked(
    hotline: HotlineProcess,
) -> None:
    """After ``max_auth_failures`` (5 by default) bad passwords in ``failure_window_s``,
    the source address is blocked for ``block_s`` (300 s): its REGISTERs are dropped
    without an answer, even with the right password, and an INVITE claiming to be
    an agent from there gets 403 "Blocked".
    """
    host, port = LOOPBACK, hotline.sip_port
    uri = f"sip:{host}:{port}"
    call_id = f"{uuid.uuid4().hex}@{LOOPBACK}"
    with RawSip(port) as client:
        client.send(_register(client, 1, call_id))
        challenge_reply = client.recv_final()
        assert challenge_reply is not None and challenge_reply.status == 401, challenge_reply
        challenge = _md5_challenge(challenge_reply)
        # The right password works before the flood (and shows the digest is right).
        good = digest_authorization(challenge, username="nurse1", password="nurse1-demo",
                                    method="REGISTER", uri=uri)
        client.send(_register(client, 2, call_id, good))
        ok = client.recv_final()
        assert ok is not None and ok.status == 200, ok and ok.raw

        refusals: list[int] = []
        for attempt in range(20):  # bounded: the block must come well before this
            bad = digest_authorization(challenge, username="nurse1", password=f"guess{attempt}",
                                       method="REGISTER", uri=uri, nc=attempt + 2)
            client.send(_register(client, 3 + attempt, call_id, bad))
            reply = client.recv_final(timeout_s=1.0)
            if reply is None:
                break
            refusals.append(reply.status)

        right = digest_authorization(challenge, username="nurse1", password="nurse1-demo",
                                     method="REGISTER", uri=uri, nc=99)
        client.send(_register(client, 50, call_id, right))
        while_blocked = client.recv_final(timeout_s=1.0)

        invite = _invite(client, from_user="nurse1")
        client.send(invite)
        agent_invite = client.recv_final()
        if agent_invite is not None:
            client.send(ack_for_failure(invite, agent_invite))

    from hotline.config import load_config

    max_failures = load_config().sip.registration.max_auth_failures  # 5 in the embedded defaults
    assert refusals == [403] * max_failures, refusals
    assert while_blocked is None, "a blocked address still got an answer to the right password"
    assert agent_invite is not None, "an agent INVITE from a blocked address got no answer"
    assert agent_invite.status == 403, agent_invite.raw
    _, health = hotline.health()
    assert health["status"] == "ok"
