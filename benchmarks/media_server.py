"""The hotline side of ``media_load.py``: a MediaEngine in its own process.

Run by ``media_load.py``, never by hand. It reads one JSON line on stdin,
``{"mode": "bridged"|"ivr", "peers": [[host, port], ...], "rtp_low": L,
"rtp_high": H, "record_dir": DIR}``, opens one stream per peer on loopback
(bridged: streams 2k and 2k+1 are joined; ivr: every stream has VAD, in-band
DTMF, a recording and a looping prompt; floor: no media path at all, see
``floor``), prints ``{"ports": [...]}``, and
then runs until stdin says ``stop`` (or closes, or 150 s pass). It then prints
its figures as one JSON line: CPU seconds, packets in and out, ticks, late
ticks, and the jitter buffers' delay sampled every 100 ms.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media_core import udp_batch  # noqa: E402
from media_core.tone import tone_pcm  # noqa: E402
from media_core.transport_rtp import MediaEngine  # noqa: E402

HARD_STOP_S = 150.0


def floor(peers: list[list[int | str]]) -> None:
    """The kernel's share of a bridged run: relay with the I/O kernels and nothing else.

    One socket per leg, as the engine has; every 20 ms one ``recv_many`` sweep
    over all of them and one ``send_many`` of every datagram, unchanged, out of
    the paired leg's socket to that leg's peer. No Python runs per packet, so
    the CPU this costs is what loopback UDP costs in the kernel: the floor
    under any relay on this machine, ours or rtpengine's.
    """
    sockets = []
    for _ in peers:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets.append(sock)
    print(json.dumps({"ports": [s.getsockname()[1] for s in sockets]}), flush=True)
    fds = np.array([s.fileno() for s in sockets], dtype=np.int32)
    rows = 4 * len(sockets)
    bufs = np.zeros((rows, 2048), dtype=np.uint8)
    lengths, sources = np.zeros(rows, dtype=np.int32), np.zeros(rows, dtype=np.int32)
    hosts, ports = np.zeros(rows, dtype=np.uint32), np.zeros(rows, dtype=np.uint16)
    flags, errnos = np.zeros(rows, dtype=np.uint8), np.zeros(rows, dtype=np.int32)
    loopback = np.full(rows, udp_batch.ipv4_to_u32("127.0.0.1"), dtype=np.uint32)
    peer_ports = np.array([port for _, port in peers], dtype=np.uint16)
    paired = (np.arange(len(sockets)) ^ 1).astype(np.int32)  # legs 2k and 2k+1
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    packets, ticks = 0, 0
    first = last = (_cpu_s(), time.monotonic(), 0, 0)  # as for the engine: the load's window
    due = time.monotonic()
    while not stop.is_set() and ticks < HARD_STOP_S * 50:
        due += 0.02
        count = udp_batch.recv_many(fds, bufs, lengths, hosts, ports, flags, sources, errnos)
        ticks += 1
        if count:
            out = paired[sources[:count]]
            udp_batch.send_many(
                fds, bufs[:count], lengths[:count], loopback[:count], peer_ports[out], out,
                count, errnos,
            )
            packets += count
            last = (_cpu_s(), time.monotonic(), packets, ticks)
            if packets == count:
                first = last
        time.sleep(max(0.0, due - time.monotonic()))
    print(json.dumps({"cpu_s": last[0] - first[0], "wall_s": last[1] - first[1],
                      "packets_in": last[2] - first[2], "packets_out": last[2] - first[2],
                      "ticks": last[3] - first[3]}), flush=True)


async def main() -> None:
    loop = asyncio.get_running_loop()
    setup = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    if setup["mode"] == "floor":
        floor(setup["peers"])
        return
    engine = MediaEngine(setup["rtp_low"], setup["rtp_high"])
    prompt = tone_pcm(440, 1000)
    ivr = setup["mode"] == "ivr"
    # The callers' load generator has no RTCP ports: reports go to one sink here
    # (they are still built and sent, as in production).
    rtcp_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sink.bind(("127.0.0.1", 0))
    ids: list[int] = []
    for host, port in setup["peers"]:
        ids.append(
            await engine.open_stream(
                "127.0.0.1", None, (host, port), "PCMU", 0, prompt if ivr else None,
                vad=ivr, inband_dtmf=ivr, rtcp_addr=rtcp_sink.getsockname(),
            )
        )
    tick = engine.media_tick
    if ivr:
        record_dir = Path(setup["record_dir"])
        for stream_id in ids:
            engine.record(stream_id, record_dir / f"{stream_id}.wav", started_at=0.0)
    else:
        for a, b in zip(ids[0::2], ids[1::2], strict=True):
            tick.bridge(a, b)
    print(json.dumps({"ports": [engine.local_port(i) for i in ids]}), flush=True)
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)
    await engine.start()
    # The step's figures cover the samples between the first and the last that
    # saw packets arriving: the load itself, not the ticks before the callers
    # start or after they all stop at once (when every stream would conceal a
    # loss in the same tick; real calls end with a BYE, which removes them).
    begin = start = window = _counters(engine, ids)
    delays: list[float] = []

    async def sample() -> None:
        nonlocal start, window
        while True:
            await asyncio.sleep(0.1)
            now = _counters(engine, ids)
            if now["packets_in"] == window["packets_in"]:
                continue  # no traffic since the last sample
            if window["packets_in"] == 0:
                start = now
            window = now
            for stream_id in ids:
                rx = tick.stream(stream_id).rx
                if rx is not None and rx.stats.packets_received:
                    delays.append(rx.jitter.delay_ms)

    sampler = loop.create_task(sample())
    stop = loop.run_in_executor(None, sys.stdin.readline)
    try:
        await asyncio.wait_for(stop, HARD_STOP_S)
    except TimeoutError:
        pass
    sampler.cancel()
    if window is start:
        # The sampler never ran twice while traffic flowed: a tick loop so far
        # behind that it never yields. Report the whole run, which shows it.
        start, window = begin, _counters(engine, ids)
    delay = np.array(delays or [0.0])
    figures = {key: window[key] - start[key] for key in window}
    figures.update(
        {
            "jitter_delay_p50_ms": float(np.percentile(delay, 50)),
            "jitter_delay_p99_ms": float(np.percentile(delay, 99)),
            "jitter_lost_frames": sum(tick.stream(i).rx.jitter.lost for i in ids),  # type: ignore[union-attr]
            "jitter_late_packets": sum(tick.stream(i).rx.jitter.late for i in ids),  # type: ignore[union-attr]
        }
    )
    await engine.stop()
    print(json.dumps(figures), flush=True)


def _counters(engine: MediaEngine, ids: list[int]) -> dict[str, float]:
    """CPU and tick counters, and packets in and out, at this instant.

    It reads the two counters off the streams: a ``StreamStats`` snapshot per
    stream every 100 ms would add its own cost to the process being measured.
    """
    streams = [engine.media_tick.stream(i) for i in ids]
    return {
        "cpu_s": _cpu_s(),
        "packets_in": sum(s.packets_received for s in streams),
        "packets_out": sum(s.packets_sent for s in streams),
        "ticks": engine.ticks_run,
        "late_ticks": engine.late_ticks,
        "overruns": engine.overruns,
        "ticks_skipped": engine.ticks_skipped,
        "tick_errors": engine.tick_errors,
        "wall_s": time.monotonic(),
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
