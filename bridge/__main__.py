"""``python -m bridge``: the bridge on its own, over a store, without the SIP server.

For tests, benchmarks and a site that runs text channels only. There are no
calls, so ``/health`` says ok, ``/metrics`` shows the store and no calls, and
``/api/calls/{id}/ivr`` knows none (``live.StaticLive``). Once listening it
prints one JSON line, ``{"listening": "http://HOST:PORT"}``, on standard
output (``--port 0`` picks a free port); SIGTERM or SIGINT stops it after
the store has flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys

from bridge.app import run_bridge
from bridge.auth import load_or_create_secret
from bridge.live import StaticLive
from bridge.settings import BridgeSettings
from conversations import open_store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="sqlite:///var/hotline.db", metavar="URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret-file", default="var/secret", metavar="FILE")
    parser.add_argument("--cookie-secure", action="store_true", help="HTTPS in front")
    parser.add_argument("--country-code", default="1", help="for phone numbers without one")
    parser.add_argument(
        "--recordings-dir", metavar="DIR", help="the recordings root (default: serve no audio)"
    )
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Open the store, serve until a signal, then close both."""
    settings = BridgeSettings(
        secret_key=load_or_create_secret(args.secret_file),
        cookie_secure=args.cookie_secure,
        default_country_code=args.country_code,
        recordings_dir=args.recordings_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_store(args.store, default_country_code=args.country_code) as store:
        runner = await run_bridge(args.host, args.port, store, StaticLive(), settings)
        try:
            host, port = runner.addresses[0][:2]
            print(json.dumps({"listening": f"http://{host}:{port}"}), flush=True)
            await stop.wait()
        finally:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except ValueError as exc:  # a bad secret file or settings
        print(f"bridge: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
