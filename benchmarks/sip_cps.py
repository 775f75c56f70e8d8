#!/usr/bin/env python3
"""SIP calls per second: the highest rate ``hotline serve`` answers with zero failed calls.

Starts ``hotline serve`` on loopback with its own ports, then drives SIPp's built-in
``uac`` scenario at it (INVITE, 200, ACK, and the caller hangs up at once: ``-d 0``).
Each step runs one rate for a fixed window; the search doubles the rate until a
step fails, then bisects between the last good and the first bad rate. A step
passes when SIPp reports every call successful, none failed, and the calls went
through at (nearly) the asked rate: SIPp's ``-l`` cap slows the offered rate when
calls pile up, so a server that falls behind shows as a low achieved rate.

The server's CPU is read from ``/proc/<pid>/stat`` (utime + stime) over each
window; it is one asyncio process, so 100 % is one core. SIPp's CPU is measured
too (``RUSAGE_CHILDREN`` around each run), to show it is not the bottleneck.

The last line of the output is one JSON object:
``{"bench": "sip_cps", "max_cps_zero_failures": N, "cpu_percent": X}``.
Every run is bounded in calls (``-m``) and time (``-timeout`` and a kill); all
traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def free_port(tcp: bool = True) -> int:
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((LOOPBACK, 0))
        port = int(probe.getsockname()[1])
        probe.close()
        if not tcp:
            return port
        stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            stream.bind((LOOPBACK, port))
            return port
        except OSError:
            continue
        finally:
            stream.close()
    raise RuntimeError("no free port")


def ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def hotline_command() -> list[str]:
    script = REPO / ".venv" / "bin" / "hotline"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "hotline.cli"]


def health(http_port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/health", timeout=1) as reply:
            return dict(json.loads(reply.read()))
    except (OSError, ValueError):
        return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Step:
    target_cps: int
    calls: int
    successful: int
    failed: int
    retransmissions: int
    elapsed_s: float
    server_cpu_percent: float
    sipp_cpu_percent: float
    sipp_exit: int
    achieved_cps: float  # SIPp's CallRate(C): calls placed per second of its run
    mean_response_ms: float  # SIPp's ResponseTime1(C): INVITE to 200
    media_lag_ms: int  # the worst "media tick N ms late" the server logged during the step

    @property
    def passed(self) -> bool:
        # Zero failed calls is the headline; a retransmission means an answer took
        # more than T1 (500 ms), and a rate SIPp could not hold means calls piled up
        # against -l: both are overload even while no call has failed yet.
        return (
            self.sipp_exit == 0
            and self.failed == 0
            and self.successful == self.calls
            and self.retransmissions == 0
            and self.achieved_cps >= 0.9 * self.target_cps
        )


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.sip_port = free_port()
        self.http_port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "hotline.log"

    def start_server(self) -> None:
        # RTP ports are taken and freed per call; with calls of ~0 ms few are held at once.
        # Below the kernel's ephemeral range, where SIPp's own sockets get their ports: a
        # port SIPp holds would make the call the server bound it for fail.
        rtp_low = random.randrange(10000, max(10002, ephemeral_low() - 10000), 2)
        command = hotline_command() + [
            "serve", "--sip-host", LOOPBACK, "--sip-port", str(self.sip_port),
            "--http-port", str(self.http_port), "--rtp-ports", f"{rtp_low}-{rtp_low + 9999}",
            "--data-dir", str(self.workdir / "data"), "--log-level", self.args.log_level,
            "--max-calls", str(self.args.max_calls),
        ]
        log = self.log_path.open("wb")
        self.server = subprocess.Popen(
            command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"hotline serve exited early; see {self.workdir / 'hotline.log'}")
            if health(self.http_port) is not None:
                return
            time.sleep(0.1)
        raise SystemExit("hotline serve did not become ready in 20 s")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def restart_server(self) -> None:
        """A fresh server after a failed step: an overload leaves calls and
        transactions behind (2xx retransmitted to a SIPp that gave up, for 32 s)
        that would fail the next step whatever its rate."""
        self.stop_server()
        self.start_server()

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Let the calls of the previous step end before the next one starts."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = health(self.http_port)
            if status is not None and status.get("active_calls") == 0:
                return
            time.sleep(0.1)

    def run_step(self, cps: int) -> Step:
        assert self.server is not None
        window_s = self.args.window_s
        calls = max(1, int(cps * window_s))
        name = f"cps{cps}"
        stat_file = self.workdir / f"{name}.csv"
        timeout_s = int(window_s * 2 + 10)
        command = [
            self.args.sipp, f"{LOOPBACK}:{self.sip_port}",
            "-sn", "uac", "-d", "0",
            "-r", str(cps), "-m", str(calls),
            # At most one second's worth of calls open at once: a server that falls
            # behind then shows as a lower achieved rate, not as a pile-up.
            "-l", str(max(10, cps)),
            "-t", "u1",  # one UDP socket, as a trunk would use
            "-i", LOOPBACK, "-p", str(free_port(tcp=False)),
            "-mi", LOOPBACK, "-mp", str(free_port(tcp=False)),
            "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
            "-trace_stat", "-stf", str(stat_file), "-fd", "1",
        ]
        log_offset = self.log_path.stat().st_size
        sipp_cpu_before = children_cpu_seconds()
        server_cpu_before = cpu_seconds(self.server.pid)
        started = time.monotonic()
        with (self.workdir / f"{name}.out").open("wb") as out:
            try:
                sipp_exit = subprocess.run(
                    command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, timeout=timeout_s + 5,
                ).returncode
            except subprocess.TimeoutExpired:
                sipp_exit = -9
        elapsed_s = time.monotonic() - started
        server_cpu = cpu_seconds(self.server.pid) - server_cpu_before
        sipp_cpu = children_cpu_seconds() - sipp_cpu_before
        stats = last_stat_row(stat_file)
        return Step(
            target_cps=cps,
            calls=calls,
            successful=int(stats.get("SuccessfulCall(C)", 0) or 0),
            failed=int(stats.get("FailedCall(C)", 0) or 0),
            retransmissions=int(stats.get("Retransmissions(C)", 0) or 0),
            elapsed_s=elapsed_s,
            server_cpu_percent=100.0 * server_cpu / elapsed_s,
            sipp_cpu_percent=100.0 * sipp_cpu / elapsed_s,
            sipp_exit=sipp_exit,
            achieved_cps=float(stats.get("CallRate(C)", 0) or 0),
            mean_response_ms=sipp_duration_ms(stats.get("ResponseTime1(C)", "")),
            media_lag_ms=self.worst_media_lag_ms(log_offset),
        )

    def worst_media_lag_ms(self, offset: int) -> int:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        lags = [int(m) for m in re.findall(r"media tick (\d+) ms late", text)]
        return max(lags, default=0)


def sipp_duration_ms(text: str) -> float:
    """SIPp's ``HH:MM:SS:microseconds`` durations, in milliseconds."""
    try:
        hours, minutes, seconds, micros = (int(part) for part in text.split(":"))
    except ValueError:
        return 0.0
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + micros / 1000


def last_stat_row(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}


def search(bench: Bench, args: argparse.Namespace, steps: list[Step]) -> Step | None:
    """Double until a step fails, then bisect; bounded by ``max_steps`` and ``budget_s``."""
    started = time.monotonic()
    best: Step | None = None
    worst_failed: int | None = None
    cps = args.start_cps

    def out_of_budget() -> bool:
        # A step costs about a window plus SIPp's and the server's wind-down.
        return (
            len(steps) >= args.max_steps
            or time.monotonic() - started + args.window_s + 3 > args.budget_s
        )

    while not out_of_budget():
        bench.wait_idle()
        step = bench.run_step(cps)
        steps.append(step)
        print_step(step)
        if step.passed:
            best = step
            if cps >= args.max_cps:
                return best
            cps = min(cps * 2, args.max_cps)
        else:
            worst_failed = cps
            bench.restart_server()
            break
    if worst_failed is None:
        return best
    low = best.target_cps if best is not None else 0
    high = worst_failed
    while high - low > max(5, int(0.05 * high)) and not out_of_budget():
        middle = (low + high) // 2
        bench.wait_idle()
        step = bench.run_step(middle)
        steps.append(step)
        print_step(step)
        if step.passed:
            best, low = step, middle
        else:
            high = middle
            bench.restart_server()
    return best


HEADER = (
    f"{'target cps':>10} {'calls':>7} {'ok':>7} {'failed':>6} {'retrans':>7} "
    f"{'secs':>6} {'achieved':>9} {'resp ms':>7} {'server cpu%':>11} {'sipp cpu%':>9} "
    f"{'media lag ms':>12}  verdict"
)


def print_step(step: Step) -> None:
    print(
        f"{step.target_cps:>10} {step.calls:>7} {step.successful:>7} {step.failed:>6} "
        f"{step.retransmissions:>7} {step.elapsed_s:>6.1f} {step.achieved_cps:>9.1f} "
        f"{step.mean_response_ms:>7.0f} {step.server_cpu_percent:>11.1f} "
        f"{step.sipp_cpu_percent:>9.1f} {step.media_lag_ms:>12}  "
        f"{'pass' if step.passed else f'FAIL (sipp exit {step.sipp_exit})'}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows and few steps (< 60 s)")
    parser.add_argument("--window-s", type=float,
                        help="seconds of traffic per step (default 20, quick 4)")
    parser.add_argument("--start-cps", type=int, help="first rate tried (default 100, quick 200)")
    parser.add_argument("--max-cps", type=int, default=5000, help="never ask for more than this")
    parser.add_argument("--max-steps", type=int, help="bound on SIPp runs (default 12, quick 6)")
    parser.add_argument("--budget-s", type=float,
                        help="bound on the search (default 600, quick 40)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="the server's log level (default info, as `hotline serve` runs)")
    parser.add_argument("--max-calls", type=int, default=10000, help="server --max-calls")
    parser.add_argument("--keep", action="store_true", help="keep the logs and SIPp statistics")
    args = parser.parse_args()
    args.window_s = args.window_s or (4.0 if args.quick else 20.0)
    args.start_cps = args.start_cps or (200 if args.quick else 100)
    args.max_steps = args.max_steps or (6 if args.quick else 12)
    args.budget_s = args.budget_s or (40.0 if args.quick else 600.0)
    args.sipp = shutil.which("sipp")
    if args.sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="hotline-sip-cps-"))
    bench = Bench(args, workdir)
    steps: list[Step] = []
    best: Step | None = None
    try:
        bench.start_server()
        print(f"hotline serve on {LOOPBACK}:{bench.sip_port} (log level {args.log_level}); "
              f"SIPp uac -d 0, {args.window_s:g} s per step; {os.cpu_count()} cores")
        print(HEADER, flush=True)
        best = search(bench, args, steps)
    finally:
        bench.stop_server()
        if args.keep:
            print(f"logs and SIPp statistics in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    if best is None:
        print("no rate passed with zero failures")
    else:
        print(f"highest rate with zero failures: {best.target_cps} calls/s "
              f"(achieved {best.achieved_cps:.0f}/s, server CPU {best.server_cpu_percent:.0f}% "
              f"of one core, SIPp CPU {best.sipp_cpu_percent:.0f}%)")
        smooth = [s for s in steps if s.passed and s.media_lag_ms == 0]
        if smooth:
            top = max(smooth, key=lambda s: s.target_cps)
            print(f"highest passing rate whose media tick never ran late: {top.target_cps} calls/s "
                  f"(server CPU {top.server_cpu_percent:.0f}%)")
    print(json.dumps({
        "bench": "sip_cps",
        "max_cps_zero_failures": best.target_cps if best else 0,
        "cpu_percent": round(best.server_cpu_percent, 1) if best else 0.0,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
