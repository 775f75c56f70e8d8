#!/usr/bin/env python3
"""Media relay efficiency: rtpengine's CPU per million relayed packets, and UDP receive paths.

Two measurements, both on loopback only and bounded in packets and time:

1. ``measure_rtpengine(n_calls, duration_s)``: a userspace rtpengine
   (``benchmarks/rtpengine.py``: one worker thread, pinned to one CPU) relays
   ``n_calls`` calls of two legs each; the C load generator
   (``benchmarks/loadgen``, pinned to the other CPU) sends 50 G.711 packets per
   second per leg, with jitter, A -> rtpengine -> B and B -> rtpengine -> A, and
   counts what comes back. rtpengine's CPU time (``/proc/<pid>/stat``, all
   threads) over the run divided by the packets it delivered is
   ``rtpengine_cpu_s_per_mpkt``: CPU-seconds per million relayed packets (each
   one received and sent once by the relay; per million packets in + out it is
   half that, ``rtpengine_cpu_s_per_m_in_out``). ``benchmarks/media_load.py`` uses
   this function for the rtpengine column next to hotline's.
2. ``measure_io(n_packets)``: a socket pre-filled with 172-byte datagrams (an RTP
   header and 160 bytes of PCMU) is drained by (a) a uvloop ``DatagramProtocol``,
   (b) ``media_core.udp_batch``'s pure-Python twin and (c) its ``recvmmsg``
   kernel, 64 datagrams per call; each reports packets per second. Then the
   media engine's real layout, one socket per leg (2,000 legs, one datagram
   waiting on each, as at a 20 ms tick): 2,000 uvloop protocols against one
   ``udp_batch.recv_many`` call over all the sockets.

Usage::

    .venv/bin/python benchmarks/media_relay.py          # 1,000 calls for 30 s, 400k-packet I/O
    .venv/bin/python benchmarks/media_relay.py --quick  # 200 calls for 10 s (< 60 s in all)

The last line is one JSON object::

    {"bench": "media_relay", "rtpengine_cpu_s_per_mpkt": X, "loss_percent": X,
     "io_pps_uvloop": X, "io_pps_recvmmsg": X, "io_pps_py": X}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make ``benchmarks`` and ``media_core`` importable
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks import loadgen  # noqa: E402
from benchmarks.rtpengine import RtpEngine  # noqa: E402

LOOPBACK = "127.0.0.1"
RTP_DATAGRAM_BYTES = 172  # 12-byte RTP header + 20 ms of PCMU
RCVBUF_BYTES = 4 << 20
#: Load generator sockets per side by default. Each leg still has its own port on
#: the relay, so the relay's work per packet is the same as with a socket per leg
#: (measured equal within noise: 9.2-9.9 against 9.5-9.9 CPU-s per million packets
#: at 1,000 calls), but the load generator makes far fewer system calls, which
#: keeps it clear of saturation at 100k packets/s each way on a 2-core machine.
DEFAULT_SOCKETS_PER_SIDE = 8
#: Sends later than this at p99 mean the load generator could not keep up.
LATE_WARNING_US = 20_000


def cpu_plan() -> tuple[int | None, int | None]:
    """(relay CPU, load generator CPU): one core each when there are two, else no pinning.

    The relay gets the first CPU and the load generator the second, as
    ``benchmarks/media_load.py`` places hotline's media process and its load.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    return None, None


# ------------------------------------------------------------------ rtpengine


def build_legs(
    engine: RtpEngine, n_calls: int, sockets_per_side: int | None
) -> tuple[list[loadgen.Stream], list[Any]]:
    """Bind the load generator's sockets and set up ``n_calls`` calls through rtpengine.

    With ``sockets_per_side`` None every leg has its own socket (as phones do);
    otherwise the A legs share that many sockets and so do the B legs (the load
    generator tells the legs of a shared socket apart by rtpengine's source port).
    """
    streams: list[loadgen.Stream] = []
    calls: list[Any] = []
    owned: list[socket.socket] = []

    def bind(rcvbuf_bytes: int | None = None) -> socket.socket:
        owned.append(loadgen.bind_udp(rcvbuf_bytes=rcvbuf_bytes))
        return owned[-1]

    try:
        if sockets_per_side is not None:
            shared_a = [bind(RCVBUF_BYTES) for _ in range(sockets_per_side)]
            shared_b = [bind(RCVBUF_BYTES) for _ in range(sockets_per_side)]
        for i in range(n_calls):
            if sockets_per_side is None:
                a, b = bind(), bind()
            else:
                a, b = shared_a[i % sockets_per_side], shared_b[i % sockets_per_side]
            call = engine.relay_call(i, a.getsockname()[1], b.getsockname()[1])
            calls.append(call)
            streams.append(loadgen.Stream(a, "a", call.a_target, peer=2 * i + 1))
            streams.append(loadgen.Stream(b, "b", call.b_target, peer=2 * i))
    except BaseException:
        for sock in owned:
            sock.close()
        raise
    return streams, calls


def measure_rtpengine(
    n_calls: int,
    duration_s: float,
    *,
    sockets_per_side: int | None = None,
    jitter_sd_ms: float = 5.0,
    spike_prob: float = 0.002,
    spike_ms: float = 40.0,
    seed: int = 1,
) -> dict[str, Any]:
    """Relay ``n_calls`` bridged calls through rtpengine for ``duration_s`` and measure it.

    Args:
        n_calls: calls (two legs each, 100 packets per second per call each way in total).
        duration_s: how long the load generator sends (at most 120 s).
        sockets_per_side: see ``build_legs``; None (the default, as ``media_load.py``
            drives hotline) gives each leg its own socket; the CLI uses
            ``DEFAULT_SOCKETS_PER_SIDE``.
        jitter_sd_ms: send-time jitter of the load generator (sd, ms).
        spike_prob: probability of a ``spike_ms`` delay on a packet.
        spike_ms: size of the delay spikes.
        seed: load generator seed.

    Returns:
        ``rtpengine_cpu_s_per_mpkt`` (CPU-seconds of rtpengine per million packets
        it relayed: each one received once and sent once),
        ``rtpengine_cpu_s_per_m_in_out`` (the same per million packets in plus out,
        i.e. half of it: the unit of a relay that counts both directions of its
        socket I/O), ``rtpengine_cpu_s``, ``rtpengine_cpu_percent`` (of one
        core, over the load generator's run), ``relayed_packets``,
        ``loss_percent`` (the worse of RFC 3550 sequence-gap loss and loss against
        the packets sent), the rtpengine version, thread count and CPU, and
        ``loadgen``: the load generator's whole summary.

    Raises:
        benchmarks.rtpengine.RtpEngineMissing: rtpengine is not installed.
    """
    relay_cpu, loadgen_cpu = cpu_plan()
    with RtpEngine(cpu=relay_cpu, num_threads=1) as engine:
        setup_start = time.monotonic()
        streams, calls = build_legs(engine, n_calls, sockets_per_side)
        setup_s = time.monotonic() - setup_start
        try:
            cpu_before = engine.cpu_seconds()
            summary = loadgen.run(
                streams,
                duration_s,
                jitter_sd_ms=jitter_sd_ms,
                spike_prob=spike_prob,
                spike_ms=spike_ms,
                seed=seed,
                cpu=loadgen_cpu,
            )
            cpu_s = engine.cpu_seconds() - cpu_before
            threads = engine.threads()
            for call in calls:
                engine.delete_call(call)
        finally:
            loadgen.close_all(streams)
        relayed = int(summary["received"])
        return {
            "relay": "rtpengine",
            "version": engine.version,
            "n_calls": n_calls,
            "legs": 2 * n_calls,
            "duration_s": duration_s,
            "call_setup_s": round(setup_s, 3),
            "relay_threads": threads,
            "relay_worker_threads": engine.num_threads,
            "relay_cpu": relay_cpu,
            "loadgen_cpu": loadgen_cpu,
            "sockets_per_side": sockets_per_side,
            "relayed_packets": relayed,
            "rtpengine_cpu_s": round(cpu_s, 3),
            "rtpengine_cpu_percent": round(100.0 * cpu_s / float(summary["wall_s"]), 2),
            "rtpengine_cpu_s_per_mpkt": round(cpu_s / relayed * 1e6, 4) if relayed else None,
            "rtpengine_cpu_s_per_m_in_out": (
                round(cpu_s / (2 * relayed) * 1e6, 4) if relayed else None
            ),
            "loss_percent": round(
                max(float(summary["loss_percent"]), float(summary["loss_percent_vs_sent"])), 6
            ),
            "latency_us": summary["latency_us"],
            "jitter_ms_mean": round(
                max(d["jitter_ms_mean"] for d in summary["directions"].values()), 3
            ),
            "loadgen": summary,
        }


# ------------------------------------------------------------------ receive paths


def _filled_receiver(rcvbuf_bytes: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, loadgen.SO_RCVBUFFORCE, rcvbuf_bytes)  # CAP_NET_ADMIN
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
    sock.bind((LOOPBACK, 0))
    sock.setblocking(False)
    return sock


class _Filler:
    """Puts ``count`` datagrams in a receiver's queue with sendmmsg (or sendto) batches."""

    def __init__(self, receiver: socket.socket) -> None:
        from media_core import udp_batch

        self.sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sender.bind((LOOPBACK, 0))
        self.send_batch = udp_batch.send_batch
        port = receiver.getsockname()[1]
        self.data = np.zeros((256, RTP_DATAGRAM_BYTES), dtype=np.uint8)
        self.data[:, 0] = 0x80
        self.lengths = np.full(256, RTP_DATAGRAM_BYTES, dtype=np.int32)
        self.hosts = np.full(256, 0x7F000001, dtype=np.uint32)
        self.ports = np.full(256, port, dtype=np.uint16)

    def fill(self, count: int) -> None:
        left = count
        while left > 0:
            n = min(left, 256)
            sent = self.send_batch(
                self.sender.fileno(), self.data, self.lengths, self.hosts, self.ports, n
            )
            if sent <= 0:
                raise RuntimeError("could not fill the receiver: send buffer full")
            left -= sent

    def close(self) -> None:
        self.sender.close()


def _drain_all(fd: int, recv: Any, batch: int) -> int:
    from media_core.udp_batch import RecvBuffers

    rx = RecvBuffers.allocate(batch)
    total = 0
    while (got := recv(fd, rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags)) > 0:
        total += got
    return total


def _capacity(receiver: socket.socket, filler: _Filler, recv: Any) -> int:
    """How many datagrams the receiver's buffer holds: fill more than fits, count what stayed."""
    filler.fill(60000)
    return _drain_all(receiver.fileno(), recv, 256)


def _time_batches(
    receiver: socket.socket, filler: _Filler, recv: Any, n: int, per_round: int, batch: int
) -> float:
    from media_core.udp_batch import RecvBuffers

    rx = RecvBuffers.allocate(batch)
    fd = receiver.fileno()
    done, elapsed = 0, 0.0
    while done < n:
        count = min(per_round, n - done)
        filler.fill(count)
        got = 0
        start = time.perf_counter()
        while got < count:
            received = recv(fd, rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags)
            if received == 0:
                raise RuntimeError(f"queue ran dry after {got} of {count}: datagrams were dropped")
            got += received
        elapsed += time.perf_counter() - start
        done += count
    return n / elapsed


def _time_uvloop(receiver: socket.socket, filler: _Filler, n: int, per_round: int) -> float:
    import uvloop

    class Counter(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.count = 0
            self.target = 0
            self.done: asyncio.Future[None] | None = None

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.count += 1
            if self.count >= self.target and self.done is not None and not self.done.done():
                self.done.set_result(None)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        protocol = Counter()
        transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=receiver)
        done, elapsed = 0, 0.0
        try:
            while done < n:
                count = min(per_round, n - done)
                # The loop does not run while we fill: nothing is read until we await.
                filler.fill(count)
                protocol.target = protocol.count + count
                protocol.done = loop.create_future()
                start = time.perf_counter()
                await asyncio.wait_for(protocol.done, timeout=30)
                elapsed += time.perf_counter() - start
                done += count
        finally:
            transport.close()
        return n / elapsed

    return uvloop.run(main())


def _time_legs(n_legs: int, per_leg: int, rounds: int) -> dict[str, float]:
    """One socket per leg, as the media engine has: uvloop protocols vs one ``recv_many``."""
    import uvloop

    from media_core import udp_batch

    legs = [_filled_receiver(1 << 20) for _ in range(n_legs)]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind((LOOPBACK, 0))
    total = n_legs * per_leg
    data = np.zeros((total, RTP_DATAGRAM_BYTES), dtype=np.uint8)
    data[:, 0] = 0x80
    lengths = np.full(total, RTP_DATAGRAM_BYTES, dtype=np.int32)
    hosts = np.full(total, 0x7F000001, dtype=np.uint32)
    ports = np.tile(np.array([leg.getsockname()[1] for leg in legs], dtype=np.uint16), per_leg)

    def fill() -> None:
        if udp_batch.send_batch(sender.fileno(), data, lengths, hosts, ports, total) != total:
            raise RuntimeError("could not queue a round")

    results: dict[str, float] = {}
    try:
        fds = np.array([leg.fileno() for leg in legs], dtype=np.int32)
        rx = udp_batch.RecvBuffers.allocate(4096)
        sources = np.zeros(4096, dtype=np.int32)
        errnos = np.zeros(n_legs, dtype=np.int32)
        elapsed = 0.0
        for _ in range(rounds):
            fill()
            got, start = 0, time.perf_counter()
            while got < total:
                n = udp_batch.recv_many(
                    fds, rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags, sources, errnos
                )
                if n == 0:
                    raise RuntimeError(f"legs ran dry after {got} of {total}")
                got += n
            elapsed += time.perf_counter() - start
        results["io_pps_recv_many_legs"] = round(total * rounds / elapsed)

        class Counter(asyncio.DatagramProtocol):
            count = 0
            target = 0
            done: asyncio.Future[None] | None = None

            def datagram_received(self, data: bytes, addr: Any) -> None:
                Counter.count += 1
                if Counter.count >= Counter.target and Counter.done and not Counter.done.done():
                    Counter.done.set_result(None)

        async def main() -> float:
            loop = asyncio.get_running_loop()
            transports = [
                (await loop.create_datagram_endpoint(Counter, sock=leg))[0] for leg in legs
            ]
            try:
                spent = 0.0
                for _ in range(rounds):
                    fill()
                    Counter.target = Counter.count + total
                    Counter.done = loop.create_future()
                    start = time.perf_counter()
                    await asyncio.wait_for(Counter.done, timeout=30)
                    spent += time.perf_counter() - start
                return total * rounds / spent
            finally:
                for transport in transports:
                    transport.close()
                await asyncio.sleep(0)

        results["io_pps_uvloop_legs"] = round(uvloop.run(main()))
    finally:
        sender.close()
        for leg in legs:
            leg.close()
    return results


def measure_io(n_packets: int = 400_000, batch: int = 64, n_legs: int = 2000) -> dict[str, Any]:
    """Drain pre-filled sockets with uvloop, the Python twin and ``recvmmsg``; packets per second.

    Each path gets the same ``n_packets`` 172-byte datagrams, queued in rounds
    that fit the socket's receive buffer; only draining is timed.
    """
    from media_core import udp_batch

    kernel, why = udp_batch.load_extension()
    results: dict[str, Any] = {
        "packets": n_packets,
        "batch": batch,
        "datagram_bytes": RTP_DATAGRAM_BYTES,
    }
    receiver = _filled_receiver(64 << 20)
    filler = _Filler(receiver)
    try:
        capacity = _capacity(receiver, filler, udp_batch.recv_batch_py)
        per_round = max(1000, min(50_000, int(capacity * 0.8)))
        results["queue_capacity"] = capacity
        results["per_round"] = per_round
        if kernel is not None:
            results["io_pps_recvmmsg"] = round(
                _time_batches(receiver, filler, kernel.recv_batch, n_packets, per_round, batch)
            )
        else:
            results["io_pps_recvmmsg"] = None
            results["recvmmsg_missing"] = why
        results["io_pps_py"] = round(
            _time_batches(receiver, filler, udp_batch.recv_batch_py, n_packets, per_round, batch)
        )
        results["io_pps_uvloop"] = round(_time_uvloop(receiver, filler, n_packets, per_round))
    finally:
        filler.close()
        receiver.close()
    if kernel is not None and n_legs > 0:
        per_leg = 1  # what each leg has waiting at a 20 ms tick
        results["legs"] = n_legs
        results |= _time_legs(n_legs, per_leg, max(1, n_packets // (n_legs * per_leg)))
    return results


# ------------------------------------------------------------------ CLI


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 calls for 10 s, smaller I/O runs")
    parser.add_argument("--calls", type=int, help="calls through rtpengine (default 1000)")
    parser.add_argument("--duration-s", type=float, help="seconds of traffic (default 30)")
    parser.add_argument(
        "--sockets-per-side",
        type=int,
        default=DEFAULT_SOCKETS_PER_SIDE,
        help=(
            "load generator sockets shared by the A legs and by the B legs "
            f"(default {DEFAULT_SOCKETS_PER_SIDE}; 0: one socket per leg)"
        ),
    )
    parser.add_argument(
        "--io-packets", type=int, help="datagrams per receive path (default 400000)"
    )
    parser.add_argument("--skip-io", action="store_true")
    parser.add_argument("--skip-rtpengine", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print the full summaries")
    args = parser.parse_args()
    calls = args.calls or (200 if args.quick else 1000)
    duration_s = args.duration_s or (10.0 if args.quick else 30.0)
    io_packets = args.io_packets or (100_000 if args.quick else 400_000)
    if not 1 <= calls <= 4000 or not 0 < duration_s <= 120 or not 1000 <= io_packets <= 5_000_000:
        parser.error("calls must be 1..4000, duration 0..120 s, io packets 1000..5000000")
    if args.sockets_per_side < 0:
        parser.error("--sockets-per-side must be >= 0")

    figures: dict[str, Any] = {}
    if not args.skip_io:
        io = measure_io(io_packets)
        print(
            f"receive paths, {io['packets']} x {io['datagram_bytes']}-byte datagrams "
            f"(queue holds {io['queue_capacity']}): uvloop {io['io_pps_uvloop']:,} pkt/s, "
            f"py twin {io['io_pps_py']:,} pkt/s, recvmmsg x{io['batch']} "
            f"{io['io_pps_recvmmsg'] or 0:,} pkt/s",
            flush=True,
        )
        if "legs" in io:
            print(
                f"  one socket per leg, {io['legs']} legs, one datagram each per round (a 20 ms "
                f"tick): uvloop protocols "
                f"{io['io_pps_uvloop_legs']:,} pkt/s, one recv_many per round "
                f"{io['io_pps_recv_many_legs']:,} pkt/s",
                flush=True,
            )
            figures |= {k: io[k] for k in ("io_pps_uvloop_legs", "io_pps_recv_many_legs")}
        figures |= {k: io[k] for k in ("io_pps_uvloop", "io_pps_recvmmsg", "io_pps_py")}
    if not args.skip_rtpengine:
        result = measure_rtpengine(
            calls, duration_s, sockets_per_side=args.sockets_per_side or None
        )
        summary = result["loadgen"]
        print(
            f"rtpengine {result['version']} ({result['relay_worker_threads']} worker thread, "
            f"{result['relay_threads']} threads, CPU {result['relay_cpu']}): {calls} calls "
            f"({2 * calls} legs) for {duration_s:g} s, set up in {result['call_setup_s']} s\n"
            f"  relayed {result['relayed_packets']:,} packets ({summary['received_pps']:,.0f}/s), "
            f"loss {result['loss_percent']:.4f} %, rtpengine CPU {result['rtpengine_cpu_s']:.2f} s "
            f"= {result['rtpengine_cpu_percent']:.1f} % of a core = "
            f"{result['rtpengine_cpu_s_per_mpkt']} CPU-s per million packets\n"
            f"  latency through the relay p50 {summary['latency_us']['p50']} us, p99 "
            f"{summary['latency_us']['p99']} us; arrival jitter {result['jitter_ms_mean']} ms "
            f"(sent with sd 5 ms)\n"
            f"  loadgen: sent {summary['sent']:,} ({summary['sent_pps']:,.0f}/s), CPU "
            f"{summary['cpu_percent']:.1f} % of a core, sends late p99 "
            f"{summary['send_late_us']['p99']} us",
            flush=True,
        )
        late_us = int(summary["send_late_us"]["p99"])
        if late_us > LATE_WARNING_US:
            print(
                f"  WARNING: the load generator sent late (p99 {late_us / 1000:.0f} ms): the "
                "machine was too busy for it; run again on a quiet machine",
                flush=True,
            )
        if args.verbose:
            print(json.dumps(result, indent=1))
        figures |= {
            "rtpengine_cpu_s_per_mpkt": result["rtpengine_cpu_s_per_mpkt"],
            "loss_percent": result["loss_percent"],
            "calls": calls,
            "duration_s": duration_s,
            "rtpengine_cpu_percent": result["rtpengine_cpu_percent"],
            "loadgen_cpu_percent": summary["cpu_percent"],
            "loadgen_send_late_p99_us": late_us,
        }
    order = (
        "rtpengine_cpu_s_per_mpkt",
        "loss_percent",
        "io_pps_uvloop",
        "io_pps_recvmmsg",
        "io_pps_py",
    )
    line = {"bench": "media_relay"} | {key: figures.get(key) for key in order}
    print(json.dumps(line | {k: v for k, v in figures.items() if k not in line}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
