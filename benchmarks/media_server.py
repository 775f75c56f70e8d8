"""The hotline side of ``media_load.py``: a MediaEngine in its own process.

Run by ``media_load.py``, never by hand. It reads one JSON line on stdin,
``{"mode": "bridged"|"ivr", "peers": [[host, port], ...], "rtp_low": L,
"rtp_high": H, "record_dir": DIR}``, opens one stream per peer on loopback
(bridged: streams 2k and 2k+1 are joined; ivr: every stream has VAD, in-band
DTMF, a recording and a looping prompt), prints ``{"ports": [...]}``, and
then runs until stdin says ``stop`` (or closes, or 150 s pass). It then prints
its figures as one JSON line: CPU seconds, packets in and out, ticks, late
ticks, and the jitter buffers' delay sampled every 100 ms.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media_core.tone import tone_pcm  # noqa: E402
from media_core.transport_rtp import MediaEngine  # noqa: E402

HARD_STOP_S = 150.0


async def main() -> None:
    loop = asyncio.get_running_loop()
    setup = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    engine = MediaEngine(setup["rtp_low"], setup["rtp_high"])
    prompt = tone_pcm(440, 1000)
    ivr = setup["mode"] == "ivr"
    ids: list[int] = []
    for host, port in setup["peers"]:
        ids.append(
            await engine.open_stream(
                "127.0.0.1", None, (host, port), "PCMU", 0, prompt if ivr else None,
                vad=ivr, inband_dtmf=ivr,
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
    cpu_start = _cpu_s()
    delays: list[float] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.1)
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
    cpu_s = _cpu_s() - cpu_start
    sampler.cancel()
    streams = [tick.stats(i) for i in ids]
    delay = np.array(delays or [0.0])
    figures = {
        "cpu_s": cpu_s,
        "packets_in": sum(s.packets_received for s in streams),
        "packets_out": sum(s.packets_sent for s in streams),
        "ticks": engine.ticks_run,
        "late_ticks": engine.late_ticks,
        "overruns": engine.overruns,
        "ticks_skipped": engine.ticks_skipped,
        "tick_errors": engine.tick_errors,
        "jitter_delay_p50_ms": float(np.percentile(delay, 50)),
        "jitter_delay_p99_ms": float(np.percentile(delay, 99)),
        "jitter_lost_frames": sum(tick.stream(i).rx.jitter.lost for i in ids),  # type: ignore[union-attr]
        "jitter_late_packets": sum(tick.stream(i).rx.jitter.late for i in ids),  # type: ignore[union-attr]
    }
    await engine.stop()
    print(json.dumps(figures), flush=True)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
