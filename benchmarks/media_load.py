"""Media-core load: how many bridged and IVR calls one core carries, and relay cost vs rtpengine.

For each number of calls N it starts ``media_server.py`` (hotline's MediaEngine
alone in a process pinned to CPU 0), points the C load generator (pinned to CPU
1) at it with N full-duplex G.711 calls at 50 packets/s per direction with
jittered send times, and reads both sides' figures:

* bridged: 2N legs, legs 2k and 2k+1 joined through the one tick (jitter
  buffer, decode, mix, encode), about 100 packets/s in and out per call;
* ivr: N legs, each with jitter buffer, decode, VAD, in-band DTMF detection, a
  WAV recording and a looping prompt.

A step passes when the media process used less than 95% of its core, the
callers lost nothing (``loss_percent`` 0 by RTP sequence numbers), and fewer
than 0.1% of ticks started a period or more late. The relay cost is hotline's
CPU seconds per million packets relayed (in plus out) at the largest passing
bridged step, next to rtpengine's (Debian ``rtpengine-daemon``, userspace)
relaying the same streams in this run. Kernel ratios come from
``kernels.py``.

The kernel floor is a bridged run at the goal (1,000 calls) in which the
media process only moves datagrams: one ``recv_many`` and one ``send_many``
per tick, no Python per packet (``media_server.floor``). Its CPU is what
loopback UDP alone costs on this machine, the part no relay can optimise
away; ``kernel_floor_cpu_percent_at_goal`` and ``kernel_floor_cpu_s_per_mpkt``
report it. A PNG plot of CPU and p99 jitter-buffer delay against N is
written beside the report.

    .venv/bin/python benchmarks/media_load.py            # full: about 5 minutes
    .venv/bin/python benchmarks/media_load.py --quick    # under 60 s

The output ends with one JSON line with the keys of the issue.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import loadgen  # noqa: E402

MEDIA_CPU = 0
LOADGEN_CPU = 1
MAX_CPU_PERCENT = 95.0
MAX_LATE_TICK_PERCENT = 0.1
GOAL_BRIDGED_CALLS = 1000


def run_step(mode: str, n_calls: int, duration_s: float, rtp_low: int) -> dict[str, Any]:
    """One load step against a fresh media process."""
    legs = n_calls if mode == "ivr" else 2 * n_calls
    sockets = [loadgen.bind_udp() for _ in range(legs)]
    peers = [list(s.getsockname()[:2]) for s in sockets]
    with tempfile.TemporaryDirectory(prefix="hotline-media-") as record_dir:
        server = subprocess.Popen(
            [sys.executable, str(HERE / "media_server.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {MEDIA_CPU}),
        )
        try:
            assert server.stdin is not None and server.stdout is not None
            setup = {"mode": mode, "peers": peers, "rtp_low": rtp_low,
                     "rtp_high": rtp_low + 4 * legs + 64, "record_dir": record_dir}
            server.stdin.write(json.dumps(setup) + "\n")
            server.stdin.flush()
            ports = json.loads(server.stdout.readline())["ports"]
            streams = []
            for index, (sock, port) in enumerate(zip(sockets, ports, strict=True)):
                if mode in ("bridged", "floor"):
                    side = "a" if index % 2 == 0 else "b"
                    # What leg 2k sends reaches leg 2k+1 (through the mixer), and back.
                    peer = index + 1 if index % 2 == 0 else index - 1
                else:
                    side, peer = "a", -1
                streams.append(loadgen.Stream(sock, side, ("127.0.0.1", port), peer=peer))
            caller = loadgen.run(streams, duration_s, cpu=LOADGEN_CPU)
            server.stdin.write("stop\n")
            server.stdin.flush()
            media = json.loads(server.stdout.readline())
            media.setdefault("late_ticks", 0)
            media.setdefault("overruns", 0)
            media.setdefault("jitter_delay_p50_ms", 0.0)
            media.setdefault("jitter_delay_p99_ms", 0.0)
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
            for sock in sockets:
                sock.close()
    ticks = max(media["ticks"], 1)
    wall_s = max(media["wall_s"], 1e-3)  # the media process's measuring window
    packets = media["packets_in"] + media["packets_out"]
    return {
        "mode": mode,
        "calls": n_calls,
        "cpu_percent": round(100 * media["cpu_s"] / wall_s, 1),
        "pps_in": round(media["packets_in"] / wall_s),
        "pps_out": round(media["packets_out"] / wall_s),
        "expected_pps_in": 50 * legs,
        "loss_percent": caller["loss_percent"],
        "jitter_delay_p50_ms": round(media["jitter_delay_p50_ms"], 1),
        "jitter_delay_p99_ms": round(media["jitter_delay_p99_ms"], 1),
        "late_tick_percent": round(100 * media["late_ticks"] / ticks, 3),
        "tick_overruns": media["overruns"],
        "cpu_s_per_mpkt": round(media["cpu_s"] / max(packets, 1) * 1e6, 2),
        "loadgen_cpu_percent": caller.get("cpu_percent"),
    }


def passes(step: dict[str, Any]) -> bool:
    """Whether one core kept up: all the traffic, CPU headroom, no loss, ticks on time."""
    return (
        # Every leg's 50 packets/s reached the tick: a step that measured
        # nothing (or lost the traffic before it) passes nothing.
        step["pps_in"] >= 0.9 * step["expected_pps_in"]
        and step["cpu_percent"] < MAX_CPU_PERCENT
        and step["loss_percent"] == 0
        and step["late_tick_percent"] < MAX_LATE_TICK_PERCENT
    )


def sweep(mode: str, counts: list[int], duration_s: float, rtp_low: int) -> list[dict[str, Any]]:
    """Run steps in increasing N; stop after the first two failures."""
    steps: list[dict[str, Any]] = []
    failures = 0
    for n_calls in counts:
        step = run_step(mode, n_calls, duration_s, rtp_low)
        step["passed"] = passes(step)
        steps.append(step)
        print(_row(step), flush=True)
        failures += not step["passed"]
        if failures >= 2:
            break
    return steps


def _row(step: dict[str, Any]) -> str:
    return (
        f"{step['mode']:>8} {step['calls']:>6} calls  cpu {step['cpu_percent']:6.1f}%  "
        f"in {step['pps_in']:>7}/s out {step['pps_out']:>7}/s  loss {step['loss_percent']:.3f}%  "
        f"delay p50/p99 {step['jitter_delay_p50_ms']:.0f}/{step['jitter_delay_p99_ms']:.0f} ms  "
        f"late ticks {step['late_tick_percent']:.3f}%  "
        f"{step['cpu_s_per_mpkt']:.1f} cpu-s/Mpkt  {'ok' if step['passed'] else 'FAIL'}"
    )


def best(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [s for s in steps if s["passed"]]
    return max(good, key=lambda s: s["calls"]) if good else None


def plot(steps: list[dict[str, Any]], path: Path) -> None:
    """CPU and p99 delay against N, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cpu_axis, delay_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in ("bridged", "ivr"):
        rows = [s for s in steps if s["mode"] == mode]
        if not rows:
            continue
        calls = [s["calls"] for s in rows]
        cpu_axis.plot(calls, [s["cpu_percent"] for s in rows], marker="o", label=mode)
        delay_axis.plot(calls, [s["jitter_delay_p99_ms"] for s in rows], marker="o", label=mode)
    cpu_axis.axhline(MAX_CPU_PERCENT, color="grey", linestyle=":")
    cpu_axis.set(xlabel="concurrent calls", ylabel="CPU % of one core", title="Media process CPU")
    delay_axis.set(xlabel="concurrent calls", ylabel="ms", title="Jitter-buffer delay p99")
    for axis in (cpu_axis, delay_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def rtpengine_figures(n_calls: int, duration_s: float) -> dict[str, Any]:
    """rtpengine relaying ``n_calls`` calls; empty when it is not installed."""
    try:
        from benchmarks.media_relay import measure_rtpengine
    except ImportError as exc:
        print(f"rtpengine comparison unavailable: {exc}", file=sys.stderr)
        return {}
    try:
        return measure_rtpengine(n_calls, duration_s)
    except Exception as exc:  # a missing daemon must not lose the rest of the report
        print(f"rtpengine comparison failed: {exc}", file=sys.stderr)
        return {}


def kernel_speedup() -> float | None:
    """Cython vs NumPy G.711 decode, from the kernels micro-benchmark."""
    done = subprocess.run(
        [sys.executable, str(HERE / "kernels.py"), "--quick"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]).get("g711_decode_speedup_c_vs_numpy") if lines else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under 60 s")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where the plot goes")
    args = parser.parse_args()
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        print("needs two cores: one for hotline, one for the load generator", file=sys.stderr)
        return 2
    started = time.monotonic()
    if args.quick:
        bridged_counts, ivr_counts, duration_s = [100, 250], [50, 150], 5.0
    else:
        bridged_counts, ivr_counts = [250, 500, 750, 1000, 1250, 1500], [100, 250, 500, 750, 1000]
        duration_s = 15.0
    steps = sweep("bridged", bridged_counts, duration_s, rtp_low=32000)
    steps += sweep("ivr", ivr_counts, duration_s, rtp_low=32000)
    bridged, ivr = best([s for s in steps if s["mode"] == "bridged"]), best(
        [s for s in steps if s["mode"] == "ivr"]
    )
    relay_calls = bridged["calls"] if bridged else bridged_counts[0]
    rtpengine = rtpengine_figures(relay_calls, duration_s)
    # The kernel's share at the goal: the same streams relayed with no media path.
    floor_step = run_step("floor", GOAL_BRIDGED_CALLS, duration_s, rtp_low=32000)
    floor_step["passed"] = passes(floor_step)
    print(f"kernel floor: {_row(floor_step)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_path = args.out / "media_load.png"
    plot(steps, plot_path)
    reference = bridged or steps[0]
    figures = {
        "bench": "media",
        "bridged_calls_one_core": bridged["calls"] if bridged else 0,
        "ivr_calls_one_core": ivr["calls"] if ivr else 0,
        "loss_percent": reference["loss_percent"],
        "jitter_delay_p99_ms": reference["jitter_delay_p99_ms"],
        "tick_overrun_percent": reference["late_tick_percent"],
        "relay_cpu_s_per_mpkt": reference["cpu_s_per_mpkt"],
        # Both per million packets handled, in plus out, at the same number of calls.
        "rtpengine_cpu_s_per_mpkt": rtpengine.get("rtpengine_cpu_s_per_m_in_out"),
        "g711_decode_speedup_c_vs_numpy": kernel_speedup(),
        "kernel_floor_cpu_percent_at_goal": floor_step["cpu_percent"],
        "kernel_floor_cpu_s_per_mpkt": floor_step["cpu_s_per_mpkt"],
    }
    print(f"plot: {plot_path}; {time.monotonic() - started:.0f} s in all")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
