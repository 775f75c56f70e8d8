"""Self-test of the load generator: legs talking to each other directly, no relay.

    .venv/bin/python -m benchmarks.loadgen --calls 1000 --duration-s 10

Each call is two legs on loopback that send to each other, so the load
generator both sends and receives every packet (and the kernel's loopback
delivery of both directions is charged to it): 1,000 calls at 50 packets per
second per leg are 100,000 packets per second sent and 100,000 received, by one
process pinned to one CPU. Prints the summary, then one JSON line with the
figures that say whether it keeps up: packets per second each way, its CPU, and
how late sends left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import loadgen  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--pps", type=float, default=50.0, help="packets per second per leg")
    parser.add_argument("--jitter-sd-ms", type=float, default=5.0)
    parser.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.calls <= loadgen.MAX_STREAMS // 2:
        parser.error(f"--calls must be 1..{loadgen.MAX_STREAMS // 2}")
    streams = loadgen.direct_pairs(args.calls)
    try:
        summary = loadgen.run(
            streams,
            args.duration_s,
            pps=args.pps,
            jitter_sd_ms=args.jitter_sd_ms,
            cpu=args.cpu,
        )
    finally:
        loadgen.close_all(streams)
    if args.verbose:
        print(json.dumps(summary, indent=1))
    print(
        json.dumps(
            {
                "bench": "loadgen_direct",
                "legs": summary["streams"],
                "sent_pps": summary["sent_pps"],
                "received_pps": summary["received_pps"],
                "loss_percent": summary["loss_percent"],
                "cpu_percent": summary["cpu_percent"],
                "send_late_us_p99": summary["send_late_us"]["p99"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
