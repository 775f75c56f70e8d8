"""The relay benchmark's harness: rtpengine over its ng protocol, and the C load generator.

A userspace rtpengine on loopback relays a few calls set up with ``offer`` and
``answer``; the load generator sends G.711 both ways through it and must get
every packet back on the right leg. The load generator is also checked on its
own (legs talking directly to each other), and it must refuse any target that
is not loopback. Skipped with the reason when rtpengine (Debian package
``rtpengine-daemon``) or a C compiler is missing; ``make test`` installs both.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator

import pytest

from benchmarks import loadgen
from benchmarks.rtpengine import (
    NgError,
    RtpEngine,
    RtpEngineMissing,
    audio_sdp,
    bdecode,
    bencode,
    find_binary,
    media_address,
)

CALLS = 5
DURATION_S = 2.0


@pytest.fixture(scope="module")
def loadgen_binary() -> None:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build the load generator (Debian: build-essential)")
    loadgen.binary()


@pytest.fixture
def engine() -> Iterator[RtpEngine]:
    try:
        find_binary()
    except RtpEngineMissing as exc:
        pytest.skip(str(exc))
    relay = RtpEngine()
    try:
        yield relay.start()
    finally:
        print(f"--- rtpengine log (tail) ---\n{relay.log_tail()}")
        relay.cleanup()


def streams_through(relay: RtpEngine, calls: int) -> tuple[list[loadgen.Stream], list]:
    streams: list[loadgen.Stream] = []
    relayed = []
    for i in range(calls):
        a, b = loadgen.bind_udp(), loadgen.bind_udp()
        streams += [
            loadgen.Stream(a, "a", ("127.0.0.1", 9)),
            loadgen.Stream(b, "b", ("127.0.0.1", 9)),
        ]
        call = relay.relay_call(i, a.getsockname()[1], b.getsockname()[1])
        relayed.append(call)
        streams[-2:] = [
            loadgen.Stream(a, "a", call.a_target, peer=2 * i + 1),
            loadgen.Stream(b, "b", call.b_target, peer=2 * i),
        ]
    return streams, relayed


def test_bencode_round_trips_what_the_ng_protocol_carries() -> None:
    command = {"command": "offer", "call-id": "c1", "flags": ["trust-address"], "n": 5}
    encoded = bencode(command)
    assert encoded == b"d7:call-id2:c17:command5:offer5:flagsl13:trust-addresse1:ni5ee"
    assert bdecode(encoded) == command
    with pytest.raises(ValueError):
        bdecode(b"d7:command")
    with pytest.raises(ValueError):
        bdecode(encoded + b"x")


def test_media_address_reads_the_audio_stream_of_an_sdp() -> None:
    assert media_address(audio_sdp(40000)) == ("127.0.0.1", 40000)
    sdp = "v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 1234 RTP/AVP 0\r\nc=IN IP4 127.0.0.3\r\n"
    assert media_address(sdp) == ("127.0.0.3", 1234)  # media-level c= wins
    video_first = (
        "v=0\r\nc=IN IP4 127.0.0.2\r\nm=video 5 RTP/AVP 96\r\nc=IN IP4 127.0.0.9\r\n"
        "m=audio 7 RTP/AVP 0\r\n"
    )
    assert media_address(video_first) == ("127.0.0.2", 7)  # the video section's c= is not audio's
    with pytest.raises(NgError):
        media_address("v=0\r\nm=video 5 RTP/AVP 96\r\n")


@pytest.mark.usefixtures("loadgen_binary")
def test_rtpengine_relays_every_packet_both_ways_on_the_right_legs(engine: RtpEngine) -> None:
    assert engine.client is not None
    engine.client.ping()
    streams, calls = streams_through(engine, CALLS)
    try:
        targets = [port for call in calls for _, port in (call.a_target, call.b_target)]
        assert len(set(targets)) == 2 * CALLS  # a port of its own for every leg
        assert all(engine.port_min <= port <= engine.port_max for port in targets)
        cpu_before = engine.cpu_seconds()

        summary = loadgen.run(streams, DURATION_S, drain_ms=300)

        cpu_s = engine.cpu_seconds() - cpu_before
    finally:
        loadgen.close_all(streams)

    expected_per_direction = CALLS * 50 * DURATION_S
    for name in ("a_to_b", "b_to_a"):
        direction = summary["directions"][name]
        assert direction["sent"] >= 0.95 * expected_per_direction, name
        assert direction["received"] == direction["sent"], name  # zero loss
        assert direction["lost"] == 0 and direction["loss_percent"] == 0.0, name
        assert direction["misrouted"] == 0, name  # each leg hears its own peer only
        assert direction["from_unexpected_source"] == 0, name  # symmetric RTP
        assert direction["silent_streams"] == 0, name
        assert direction["not_rtp"] == 0 and direction["ssrc_changes"] == 0, name
    assert summary["unmatched"] == 0
    # The payload (with the load generator's send stamp) came through unchanged.
    assert summary["latency_us"]["count"] == summary["received"]
    assert 0.0 <= cpu_s < 2 * DURATION_S

    # rtpengine's own counters agree: it received every packet the legs sent.
    relayed_rtp = [engine.client.query(call.call_id)["totals"]["RTP"]["packets"] for call in calls]
    assert sum(relayed_rtp) == summary["sent"]
    for call in calls:
        engine.delete_call(call)
    with pytest.raises(NgError, match="Unknown call-id"):
        engine.client.query(calls[0].call_id)  # it is gone


def test_rtpengine_refuses_an_answer_for_an_unknown_call(engine: RtpEngine) -> None:
    assert engine.client is not None
    with pytest.raises(NgError):
        engine.client.answer("no-such-call", "a", "b", audio_sdp(40000))


def test_rtpengine_is_stopped_and_reaped(engine: RtpEngine) -> None:
    pid = engine.pid
    engine.stop()
    assert engine.process is not None and engine.process.returncode is not None
    with pytest.raises(FileNotFoundError):
        open(f"/proc/{pid}/stat").close()


@pytest.mark.usefixtures("loadgen_binary")
def test_loadgen_counts_every_packet_of_legs_talking_directly() -> None:
    streams = loadgen.direct_pairs(3)
    try:
        summary = loadgen.run(streams, 1.0, drain_ms=200, jitter_sd_ms=5.0, spike_prob=0.05)
    finally:
        loadgen.close_all(streams)
    assert summary["streams"] == 6
    assert summary["sent"] >= 0.95 * 6 * 50
    assert summary["received"] == summary["sent"]
    assert summary["loss_percent"] == 0.0
    for direction in summary["directions"].values():
        assert direction["jitter_ms_mean"] > 1.0  # the send jitter shows on arrival
        assert direction["misrouted"] == 0
    assert summary["cpu_s"] >= 0.0


@pytest.mark.usefixtures("loadgen_binary")
@pytest.mark.parametrize("target", ["10.0.0.1", "192.168.1.1", "8.8.8.8", "::2"])
def test_loadgen_refuses_targets_off_loopback(target: str) -> None:
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(("::1" if ":" in target else "127.0.0.1", 0))
    try:
        with pytest.raises(loadgen.LoadgenError, match="refusing target"):
            loadgen.run([loadgen.Stream(sock, "a", (target, 4000))], 1.0)
    finally:
        sock.close()
