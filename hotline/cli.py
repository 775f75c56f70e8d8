"""The ``hotline`` command line: ``hotline serve`` runs the server, ``hotline call`` calls it.

``hotline user`` and ``hotline token`` (the operator's accounts) live in ``bridge.admin``,
``hotline search`` (what was said in recorded calls and chats) in ``hotline.search_cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from pathlib import Path

from bridge.admin import COMMANDS as ADMIN_COMMANDS
from bridge.admin import add_subcommands as add_admin_subcommands
from bridge.admin import run as run_admin
from hotline.config import Config, ConfigError, load_config, parse_port_range, validate
from hotline.logs import setup_logging
from hotline.search_cli import COMMAND as SEARCH_COMMAND
from hotline.search_cli import add_subcommand as add_search_subcommand
from hotline.search_cli import run as run_search


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="hotline", description="Speech-driven telephony and IVR engine."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the SIP/RTP server",
        description=(
            "Run the hotline server. Settings come from the embedded defaults, then "
            "--config FILE, then the flags below (flags win)."
        ),
    )
    serve.add_argument(
        "--config", metavar="FILE", help="YAML configuration overlaying the defaults"
    )
    serve.add_argument(
        "--sip-host", metavar="ADDR", help="address to listen on for SIP (default 0.0.0.0)"
    )
    serve.add_argument(
        "--sip-port", type=int, metavar="PORT", help="SIP port, UDP and TCP (default 5060)"
    )
    serve.add_argument(
        "--advertised-address",
        metavar="IP",
        help="IP put in Via, Contact and SDP (default: the listening address, or the host's)",
    )
    serve.add_argument(
        "--http-port", type=int, metavar="PORT", help="web port for /health (default 8080)"
    )
    serve.add_argument(
        "--rtp-ports", metavar="LOW-HIGH", help="RTP port range (default 20000-29999)"
    )
    serve.add_argument(
        "--data-dir", metavar="DIR", help="where recordings and the store live (default ./var)"
    )
    serve.add_argument(
        "--max-calls", type=int, metavar="N", help="concurrent calls before 503 (default 500)"
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        metavar="SECONDS",
        help="on SIGTERM, how long calls may go on before we hang up (default 30)",
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default info"
    )
    call = commands.add_parser(
        "call",
        help="call a hotline: say something (TTS), play a WAV, press keys; print the outcome",
        description=(
            "Place a real SIP call, wait for each prompt to finish, then say each --say "
            "text (TTS at telephone quality) or play each --wav file, then send --dtmf "
            "keys. Prints what the IVR heard and decided as JSON."
        ),
    )
    call.add_argument("target", metavar="URI", help="e.g. sip:hotline@127.0.0.1")
    call.add_argument(
        "--say", action="append", default=[], metavar="TEXT", help="words to say (repeatable)"
    )
    call.add_argument(
        "--wav", action="append", default=[], metavar="FILE", help="audio to play (repeatable)"
    )
    call.add_argument("--dtmf", metavar="DIGITS", help="keys to press after speaking (RFC 4733)")
    call.add_argument(
        "--from", dest="from_number", default="anonymous", metavar="NUMBER", help="caller id"
    )
    call.add_argument(
        "--voice",
        choices=["hibari", "espeak-ng"],
        default="hibari",
        help="TTS voice for --say (default hibari)",
    )
    call.add_argument(
        "--api",
        metavar="URL",
        help="the server's web API, for the outcome (default http://HOST:8080)",
    )
    call.add_argument(
        "--barge-in", action="store_true", help="speak at once instead of after each prompt"
    )
    call.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="give up after (default 60)"
    )
    call.add_argument(
        "--stay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stay on the line this long after answer, e.g. to talk to an agent "
        "(ends sooner if the far end hangs up)",
    )
    call.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="warning"
    )
    add_admin_subcommands(commands)
    add_search_subcommand(commands)
    return parser


def apply_flags(config: Config, args: argparse.Namespace) -> Config:
    """Override config fields with the flags that were given."""
    if args.sip_host is not None:
        config.sip.host = args.sip_host
    if args.sip_port is not None:
        config.sip.port = args.sip_port
    if args.advertised_address is not None:
        config.sip.advertised_address = args.advertised_address
    if args.http_port is not None:
        config.http.port = args.http_port
    if args.rtp_ports is not None:
        parse_port_range(args.rtp_ports)
        config.media.rtp_ports = args.rtp_ports
    if args.data_dir is not None:
        config.data_dir = args.data_dir
    if args.max_calls is not None:
        config.sip.max_calls = args.max_calls
    if args.drain_timeout is not None:
        config.drain_timeout_s = args.drain_timeout
    if args.log_level is not None:
        config.log_level = args.log_level
    return config


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hotline`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            config = apply_flags(load_config(args.config), args)
            validate(config)
        except ConfigError as exc:
            print(f"hotline: configuration error: {exc}", file=sys.stderr)
            return 2
        except ValueError as exc:
            parser.error(str(exc))
        setup_logging(config.log_level)
        return _run_server(config)
    if args.command == "call":
        setup_logging(args.log_level)
        return _run_call(args)
    if args.command in ADMIN_COMMANDS:
        return run_admin(args)
    if args.command == SEARCH_COMMAND:
        return run_search(args)
    return 2


def _run_call(args: argparse.Namespace) -> int:
    from hotline.caller import default_api_url, place_call, steps_from_args

    try:
        steps = steps_from_args(args.say, args.wav, args.dtmf, args.voice)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"hotline call: {exc}", file=sys.stderr)
        return 2
    api_url = args.api or default_api_url(args.target)
    try:
        result = asyncio.run(
            place_call(
                args.target,
                steps,
                from_number=args.from_number,
                api_url=api_url,
                barge_in=args.barge_in,
                timeout_s=args.timeout,
                stay_s=args.stay,
            )
        )
    except (ConnectionError, TimeoutError, OSError, ValueError) as exc:
        print(json.dumps({"error": str(exc) or type(exc).__name__}))
        return 1
    print(json.dumps(result))
    return 0


def tune_gc() -> None:
    """Keep the garbage collector's pauses off the media tick.

    Finished transactions linger 32 s (Timer J), so at a few hundred calls/s some
    hundred thousand objects stay alive; with the default thresholds every full
    collection walked them all and stalled the loop 100-450 ms (measured at
    400 calls/s). Everything that exists at start-up is frozen out of the
    collector's view, and collections run 50x less often.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)


def _run_server(config: Config) -> int:
    from bridge.app import run_bridge
    from bridge.auth import load_or_create_secret
    from bridge.hub import Hub
    from bridge.settings import BridgeSettings
    from conversations import open_store
    from hotline.call_records import CallRecords
    from hotline.config import recordings_dir, redaction_policy, store_url
    from hotline.server import HotlineServer

    try:
        import uvloop
    except ImportError:  # the reference event loop works, only slower
        uvloop = None  # type: ignore[assignment]

    async def run() -> None:
        country = config.store.default_country_code
        store = open_store(
            store_url(config), default_country_code=country, redaction=redaction_policy(config)
        )
        await store.start()  # runs the schema migrations
        hub = Hub()
        records = CallRecords(store, hub, country)
        server = HotlineServer(config, records=records, hub=hub)
        secret_file = config.http.secret_file or str(Path(config.data_dir) / "secret")
        settings = BridgeSettings(
            secret_key=await asyncio.to_thread(load_or_create_secret, Path(secret_file)),
            cookie_secure=config.http.cookie_secure,
            max_body_bytes=config.http.max_body_bytes,
            session_lifetime_s=config.http.session_lifetime_s,
            default_country_code=country,
            recordings_dir=recordings_dir(config),
        )
        try:
            await server.start()
            tune_gc()
            site = await run_bridge(
                config.http.host, config.http.port, store, server, settings, hub=hub
            )
            try:
                await server.serve_forever()
            finally:
                await site.cleanup()
        finally:
            await records.close()
            await store.close()

    try:
        if uvloop is not None:
            uvloop.run(run())
        else:
            asyncio.run(run())
    except ConfigError as exc:  # found only when starting (e.g. an unreadable prompt file)
        print(f"hotline: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
