#!/usr/bin/env python3
"""An open-loop REST load generator for the bridge: a fixed request rate, latency per request.

Requests are *scheduled* at ``--rate`` per second whatever the answers do (an
open loop: a slow server does not slow the offered load down, which would
hide its slowness), and each latency is measured from the request's
scheduled time to its complete answer, so time spent queued anywhere counts.

The mix is what a site's text channels and agent pages send, with an API
token that has the scopes:
- 50% ``POST /api/conversations/{id}/messages`` (a write, acknowledged after commit),
- 30% ``GET /api/conversations/{id}`` (a read with its messages; audited, so a write too),
- 20% ``GET /api/conversations?customer_id=...`` (a page of one customer's history).

Prints one JSON line: achieved rate, errors, and p50/p95/p99/max in ms, overall
and per kind (the first ``--warmup`` seconds are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from typing import Any

import aiohttp

KINDS = ("post_message", "get_conversation", "list_conversations")
MIX = (0.5, 0.3, 0.2)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values, default=math.nan), 2),
    }


def kind_of(n: int) -> str:
    """A deterministic interleaving with the MIX shares (10 slots per cycle)."""
    slot = n % 10
    return KINDS[0] if slot < 5 else KINDS[1] if slot < 8 else KINDS[2]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {args.token}"}
    conversations = [int(c) for c in args.conversations.split(",")]
    customers = [int(c) for c in args.customers.split(",")]
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    errors: dict[str, int] = {}
    interval_s = 1.0 / args.rate
    total = round(args.rate * (args.seconds + args.warmup))
    warmup_requests = round(args.rate * args.warmup)
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=10)

    async with aiohttp.ClientSession(
        args.url, connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def one(n: int, scheduled: float) -> None:
            kind = kind_of(n)
            conversation = conversations[n % len(conversations)]
            try:
                if kind == "post_message":
                    request = session.post(
                        f"/api/conversations/{conversation}/messages",
                        json={"text": f"load message {n}"},
                    )
                elif kind == "get_conversation":
                    request = session.get(f"/api/conversations/{conversation}")
                else:
                    customer = customers[n % len(customers)]
                    request = session.get(f"/api/conversations?customer_id={customer}&limit=20")
                async with request as reply:
                    await reply.read()
                    status = reply.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if status >= 400:
                errors[str(status)] = errors.get(str(status), 0) + 1
                return
            if n >= warmup_requests:
                latencies[kind].append((time.perf_counter() - scheduled) * 1000.0)

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.05
        for n in range(total):
            scheduled = start + n * interval_s
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, scheduled)))
        sent_s = time.perf_counter() - start
        await asyncio.gather(*tasks)

    every = [value for values in latencies.values() for value in values]
    return {
        "rate_offered_per_s": args.rate,
        "rate_sent_per_s": round(total / sent_s, 1),
        "seconds": args.seconds,
        "errors": errors,
        "all": summary(every),
        **{kind: summary(values) for kind, values in latencies.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--conversations", required=True, help="ids, comma-separated")
    parser.add_argument("--customers", required=True, help="ids, comma-separated")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
