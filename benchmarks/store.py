#!/usr/bin/env python3
"""The conversation store: sustained call-event writes per second on one core.

For each backend, this process is pinned to one CPU (the event loop, and for
SQLite also the store's thread), opens a fresh store and 100 voice
conversations, and then calls ``record_event`` in a loop, as the media loop
would: RTP statistics, DTMF and state events spread over the calls.

1. **Throughput**: as fast as it can for ``--seconds``, with at most
   ``--window`` events not yet acknowledged (beyond that the loop waits for the
   oldest, so memory stays bounded). An event counts once its future resolved,
   i.e. after its batch COMMITTED; the first second is a warm-up. The process's
   CPU time over the window is measured too (``events_per_cpu_s``), since the
   machine's other core is shared, and for PostgreSQL the server's CPU (its
   processes are not pinned, so that work is on top of the one core).
   Acknowledgement times here are mostly the window divided by the rate.
2. **At the goal rate**: 10,000 events/s offered in 10 ms ticks for
   ``--paced-seconds``; the time from ``record_event`` to its acknowledgement
   (p50, p95, max) is what a caller of the store sees at that load.

At the end every committed event is read back and counted.

- **sqlite**: a file in a temporary directory (WAL, synchronous=NORMAL, as the
  server runs it).
- **postgres**: a throwaway cluster from Debian's ``postgresql`` (``tests/pg.py``)
  with fsync on, as a real site runs it.

3. **REST latency** (``rest_latency``): the bridge (``python -m bridge`` over a
   fresh SQLite store, pinned to one core) under 500 requests/s from a
   separate load-generator process on another core (``rest_loadgen.py``: an
   open loop, latency from each request's scheduled time; half message
   posts, the rest audited conversation reads and history pages, with an API
   token). The issue's goal: p95 < 20 ms.

Each backend gets a line; the output ends with one JSON line: ``{"bench":
"store", "backend": "sqlite", "events_per_s": N, "rest_p95_ms": X,
"by_backend": {...}, "rest": {...}}``: ``backend`` and ``events_per_s`` are
SQLite's when it ran (the issue's goal: >= 10,000 events/s). ``--quick``
measures 5 + 3 s per backend and 5 s of REST load (about 40 s in all, the
cluster's start included).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conversations import Store, open_store  # noqa: E402
from tests.bridge_process import BridgeProcess  # noqa: E402
from tests.pg import PostgresUnavailable, ThrowawayPostgres  # noqa: E402

CALLS = 100
WARMUP_S = 1.0
SAMPLE_EVERY = 97  # events whose acknowledgement time is measured (a prime: all calls)
GOAL_SQLITE = 10_000
TICK_S = 0.010
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
REST_RATE = 500
GOAL_REST_P95_MS = 20.0
REST_CHATS = 20


def pin_to_one_core() -> int | None:
    """Run this process (and its threads) on one CPU; returns it, None if not possible."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return None
    return cpu


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def tree_cpu_s(root_pid: int | None) -> float:
    """utime + stime of a process and its children (the PostgreSQL server), from /proc."""
    if root_pid is None:
        return 0.0
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(stat.parent.name)
        if pid == root_pid or int(fields[1]) == root_pid:  # fields[1]: ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def event_for(n: int) -> tuple[str, dict[str, Any]]:
    """What a call's timeline holds: mostly RTP statistics, some DTMF and state changes."""
    if n % 50 == 0:
        return "state", {"from": "ivr", "to": "queued", "queue": "nurse_line"}
    if n % 20 == 0:
        return "dtmf", {"digit": str(n % 10), "duration_ms": 160, "rfc4733": True}
    return "rtp_stats", {"seq": n, "lost": n % 3, "jitter_ms": 2.5 + (n % 7) / 10, "mos": 4.3}


class Recorder:
    """Calls record_event and samples acknowledgement times."""

    def __init__(self, store: Store, conversations: list[int]) -> None:
        self.store, self.conversations = store, conversations
        self.n = 0
        self.latencies_ms: list[float] = []

    def record(self, count: int, outstanding: deque[asyncio.Future[None]]) -> None:
        for _ in range(count):
            self.n += 1
            kind, data = event_for(self.n)
            future = self.store.record_event(self.conversations[self.n % CALLS], kind, data)
            if self.n % SAMPLE_EVERY == 0:
                future.add_done_callback(functools.partial(self._sample, time.perf_counter()))
            outstanding.append(future)

    def _sample(self, started: float, future: asyncio.Future[None]) -> None:
        self.latencies_ms.append((time.perf_counter() - started) * 1000.0)

    def latencies(self) -> dict[str, float]:
        values, self.latencies_ms = self.latencies_ms, []
        return {
            "ack_p50_ms": round(percentile(values, 0.50), 2),
            "ack_p95_ms": round(percentile(values, 0.95), 2),
            "ack_max_ms": round(max(values, default=math.nan), 2),
        }


async def throughput(
    recorder: Recorder, seconds: float, window: int, server_pid: int | None
) -> dict[str, Any]:
    """As fast as one core goes, for WARMUP_S + seconds; figures over the last ``seconds``."""
    store = recorder.store
    outstanding: deque[asyncio.Future[None]] = deque()
    warmup_end = time.perf_counter() + WARMUP_S
    while time.perf_counter() < warmup_end:
        recorder.record(100, outstanding)
        await asyncio.sleep(0)
    await asyncio.gather(*outstanding, return_exceptions=True)  # a clean start line
    outstanding.clear()
    recorder.latencies()
    before = store.stats()
    cpu_before, server_before = time.process_time(), tree_cpu_s(server_pid)
    start = time.perf_counter()
    stop_at = start + seconds
    lag_max_ms = 0.0
    while time.perf_counter() < stop_at:
        recorder.record(100, outstanding)
        lag_max_ms = max(lag_max_ms, store.stats()["write_lag_ms"])
        if len(outstanding) > window:
            # Wait for the oldest, then drop every acknowledged one: a batch at a
            # time, not one loop iteration per event.
            await asyncio.wait([outstanding[0]])
            while outstanding and outstanding[0].done():
                outstanding.popleft()
        await asyncio.sleep(0)  # a media loop yields between ticks
    await asyncio.gather(*outstanding, return_exceptions=True)
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_before
    server_cpu_s = tree_cpu_s(server_pid) - server_before
    after = store.stats()
    counted = after["events_written"] - before["events_written"]
    batches = after["batches"] - before["batches"]
    return {
        "events_per_s": round(counted / elapsed),
        "events": counted,
        "seconds": round(elapsed, 2),
        "cpu_percent": round(100 * cpu_s / elapsed),
        "events_per_cpu_s": round(counted / cpu_s) if cpu_s else None,
        "server_cpu_percent": round(100 * server_cpu_s / elapsed) if server_pid else None,
        "batches": batches,
        "mean_batch": round(counted / batches, 1) if batches else 0,
        "write_lag_max_ms": round(lag_max_ms, 2),
        "failed": after["failed_writes"] - before["failed_writes"],
        **recorder.latencies(),
    }


async def paced(recorder: Recorder, rate: int, seconds: float) -> dict[str, Any]:
    """``rate`` events/s in 10 ms ticks; the acknowledgement times a caller sees."""
    outstanding: deque[asyncio.Future[None]] = deque()
    per_tick = max(1, round(rate * TICK_S))
    start = time.perf_counter()
    ticks = round(seconds / TICK_S)
    late_ticks = 0
    for tick in range(ticks):
        recorder.record(per_tick, outstanding)
        while outstanding and outstanding[0].done():
            outstanding.popleft()
        delay = start + (tick + 1) * TICK_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late_ticks += 1  # the loop could not keep this rate
    await asyncio.gather(*outstanding, return_exceptions=True)
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(per_tick * ticks / (time.perf_counter() - start)),
        "late_tick_share": round(late_ticks / ticks, 3),
        **recorder.latencies(),
    }


async def run_backend(
    url: str, seconds: float, paced_seconds: float, window: int, server_pid: int | None
) -> dict[str, Any]:
    store = open_store(url)
    await store.start()
    try:
        conversations = []
        for call in range(CALLS):
            customer = await store.customer_for("phone", f"+1555{call:07d}")
            opened = await store.open_conversation(customer.id, "voice", call_id=f"bench-{call}")
            conversations.append(opened.id)
        recorder = Recorder(store, conversations)
        result = await throughput(recorder, seconds, window, server_pid)
        result["at_goal_rate"] = await paced(recorder, GOAL_SQLITE, paced_seconds)
        committed = store.stats()["events_written"]
        stored = sum([len(await store.events(c)) for c in conversations])
        if stored != committed:
            raise SystemExit(f"read back {stored} events, but {committed} were committed")
        return result
    finally:
        await store.close()


async def seed_chats(store: Store) -> tuple[list[int], list[int]]:
    """REST_CHATS web chats with a few messages each: what the load reads and writes."""
    conversations, customers = [], []
    for n in range(REST_CHATS):
        customer = await store.customer_for("email", f"load{n}@example.com")
        chat = await store.open_conversation(customer.id, "webchat", status="connected")
        for line in range(5):
            await store.add_message(chat.id, "customer" if line % 2 else "agent", f"line {line}")
        conversations.append(chat.id)
        customers.append(customer.id)
    return conversations, customers


def rest_latency(seconds: float, rate: int = REST_RATE) -> dict[str, Any]:
    """The bridge's REST latency under ``rate`` requests/s from another process."""
    with tempfile.TemporaryDirectory(prefix="hotline-bench-rest-") as directory:
        bridge = BridgeProcess(Path(directory))
        conversations, customers = bridge.seed(seed_chats)
        token = bridge.add_token("bench", {"messages:write", "conversations:read"})
        bridge.start()
        try:
            assert bridge.process is not None
            # The bridge on one core, the load generator on another (this process was
            # pinned for the store benchmark; its children must not share that core).
            bridge_cpus = {ALL_CPUS[0]} if ALL_CPUS else set()
            loadgen_cpus = set(ALL_CPUS[1:2] or ALL_CPUS)
            if bridge_cpus:
                os.sched_setaffinity(bridge.process.pid, bridge_cpus)
            started_cpu = tree_cpu_s(bridge.process.pid)
            command = [
                sys.executable,
                str(Path(__file__).with_name("rest_loadgen.py")),
                *("--url", bridge.url, "--token", token, "--rate", str(rate)),
                *("--seconds", str(seconds)),
                *("--conversations", ",".join(map(str, conversations))),
                *("--customers", ",".join(map(str, customers))),
            ]
            loadgen = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            if loadgen_cpus:
                os.sched_setaffinity(loadgen.pid, loadgen_cpus)
            output, _ = loadgen.communicate(timeout=seconds + 60)
            if loadgen.returncode != 0:
                raise SystemExit(f"the REST load generator failed ({loadgen.returncode})")
            bridge_cpu_s = tree_cpu_s(bridge.process.pid) - started_cpu
        finally:
            bridge.stop()
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["bridge_cpu_percent"] = round(100 * bridge_cpu_s / (seconds + 1.0))
    result["cpus"] = {"bridge": sorted(bridge_cpus), "loadgen": sorted(loadgen_cpus)}
    return result


def describe_rest(result: dict[str, Any]) -> str:
    every = result["all"]
    kinds = ", ".join(
        f"{kind} p95 {result[kind]['p95_ms']} ms"
        for kind in ("post_message", "get_conversation", "list_conversations")
    )
    return (
        f"REST     {result['rate_sent_per_s']:g} requests/s for {result['seconds']:g} s: "
        f"p50 {every['p50_ms']} ms, p95 {every['p95_ms']} ms, p99 {every['p99_ms']} ms, "
        f"max {every['max_ms']} ms ({kinds}); errors {result['errors'] or 0}; "
        f"bridge {result['bridge_cpu_percent']}% of its core"
    )


def describe(backend: str, result: dict[str, Any]) -> str:
    goal = result["at_goal_rate"]
    server = f", server {result['server_cpu_percent']}% CPU" if result["server_cpu_percent"] else ""
    return (
        f"{backend:8s} {result['events_per_s']:>7,} events/s committed "
        f"({result['events']:,} in {result['seconds']} s, {result['cpu_percent']}% of the core"
        f"{server}: {result['events_per_cpu_s']:,} per CPU-s; {result['batches']} batches "
        f"of {result['mean_batch']:,}; failed {result['failed']}); "
        f"at {goal['offered_per_s']:,}/s: ack p50 {goal['ack_p50_ms']} ms, "
        f"p95 {goal['ack_p95_ms']} ms, max {goal['ack_max_ms']} ms, "
        f"late ticks {goal['late_tick_share']:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="5 s + 3 s per backend (< 60 s)")
    parser.add_argument("--seconds", type=float, help="throughput seconds per backend (30)")
    parser.add_argument("--paced-seconds", type=float, help="seconds at the goal rate (10)")
    parser.add_argument("--window", type=int, default=20_000, help="unacknowledged events, max")
    parser.add_argument("--rest-seconds", type=float, help="REST load seconds (20; 0: skip)")
    args = parser.parse_args()
    rest_seconds = 5.0 if args.quick else 20.0
    if args.rest_seconds is not None:
        rest_seconds = args.rest_seconds
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    paced_seconds = args.paced_seconds or (3.0 if args.quick else 10.0)
    cpu = pin_to_one_core()
    print(f"store benchmark: {seconds:g} s + {paced_seconds:g} s per backend, CPU {cpu}")
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    by_backend: dict[str, Any] = {}
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="hotline-bench-") as directory:
                url = f"sqlite:///{directory}/var/hotline.db"
                result = asyncio.run(run_backend(url, seconds, paced_seconds, args.window, None))
        else:
            try:
                cluster = ThrowawayPostgres(fsync=True).start()
            except PostgresUnavailable as exc:
                print(f"postgres: skipped ({exc})", flush=True)
                by_backend[backend] = None
                continue
            try:
                pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
                url = cluster.create_database()
                result = asyncio.run(run_backend(url, seconds, paced_seconds, args.window, pid))
            finally:
                cluster.stop()
        by_backend[backend] = result
        print(describe(backend, result), flush=True)
    headline = "sqlite" if by_backend.get("sqlite") else backends[0]
    ran = by_backend.get(headline)
    if by_backend.get("sqlite"):
        rate = by_backend["sqlite"]["events_per_s"]
        verdict = "meets" if rate >= GOAL_SQLITE else "misses"
        print(f"SQLite {verdict} the goal of {GOAL_SQLITE:,} events/s", flush=True)
    rest = rest_latency(rest_seconds) if rest_seconds > 0 else None
    if rest is not None:
        print(describe_rest(rest), flush=True)
        verdict = "meets" if rest["all"]["p95_ms"] < GOAL_REST_P95_MS else "misses"
        print(f"REST {verdict} the goal of p95 < {GOAL_REST_P95_MS:g} ms", flush=True)
    print(
        json.dumps(
            {
                "bench": "store",
                "backend": headline,
                "events_per_s": ran["events_per_s"] if ran else None,
                "rest_p95_ms": rest["all"]["p95_ms"] if rest else None,
                "by_backend": by_backend,
                "rest": rest,
            }
        )
    )


if __name__ == "__main__":
    main()
