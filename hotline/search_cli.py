"""``hotline search``: find what was said in recorded calls and chats, from the shell.

``hotline search "chest pain" --since 2026-11-01`` opens the configured store
(``--store URL``, else the store of ``--config FILE``, else the defaults'
``sqlite:///var/hotline.db``, as ``hotline user``/``hotline token`` do; with
the configuration's country code and redaction policy, as the server does), runs
``Store.search`` and prints one match per entry: when it was said, where in the
recording (``mm:ss.s``), who said it, the call (SIP Call-ID and conversation
id) and the snippet with the matched words in bold on a terminal, in
``[brackets]`` otherwise. ``--json`` prints one JSON object per line instead.

The command only reads (beyond what opening any store does: its migrations,
and redacting messages stored before redaction existed): it shows the redacted
text that the qa role sees (there is no flag for the unredacted text; that is
the admin's, in the bridge, audited) and never creates a store that does not
exist.

Query syntax (the store's): words (all must match), ``"a phrase"``, ``OR``,
``NOT word`` or ``-word``, ``prefix*`` and parentheses. A bad query or a bad
date exits with status 2, a store that cannot be opened with 1.

``cli.py`` calls ``add_subcommand`` on its subparsers and hands ``search`` to
``run``. Heavy imports wait until the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conversations import SearchHit, Store

__all__ = [
    "COMMAND",
    "add_subcommand",
    "format_offset",
    "highlight",
    "parse_time",
    "run",
]

COMMAND = "search"
DEFAULT_LIMIT = 20
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class UsageError(ValueError):
    """Bad input on the command line: exit status 2."""


def add_subcommand(commands: Any) -> None:
    """Add ``search`` to the ``hotline`` subparsers."""
    search = commands.add_parser(
        COMMAND,
        help="search transcripts and chats (what was said, when, in which call)",
        description=(
            "Search what was said in transcribed recordings and chat messages, and print "
            'each match with its call, its time and a snippet. Query syntax: words, "a '
            'phrase", OR, NOT word (or -word), prefix*, ( ). Put a query that starts with "-" '
            'last, after "--". Only redacted text is shown.'
        ),
    )
    search.add_argument("query", help='e.g. "chest pain", \'refund OR "money back"\'')
    search.add_argument(
        "--since", metavar="WHEN", help="from this date or time on (YYYY-MM-DD[THH:MM[:SS]])"
    )
    search.add_argument(
        "--until",
        metavar="WHEN",
        help="up to this time, excluded; a date alone includes that whole day",
    )
    search.add_argument("--queue", help="only calls routed to this queue")
    search.add_argument("--agent", help="only conversations handled by this agent")
    search.add_argument("--intent", help="only conversations with this intent")
    search.add_argument(
        "--channel", choices=["voice", "webchat"], help="only calls, or only web chats"
    )
    search.add_argument(
        "--min-duration",
        type=float,
        metavar="SECONDS",
        help="only calls whose recording lasts this long or longer",
    )
    search.add_argument(
        "--max-duration",
        type=float,
        metavar="SECONDS",
        help="only calls whose recording lasts this long or shorter",
    )
    search.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"matches to print (default {DEFAULT_LIMIT})",
    )
    search.add_argument(
        "--offset", type=int, default=0, metavar="N", help="skip the first N matches (paging)"
    )
    search.add_argument(
        "--json", action="store_true", help="one JSON object per match and line (for scripts)"
    )
    search.add_argument(
        "--utc", action="store_true", help="read and print times in UTC (default: local time)"
    )
    search.add_argument(
        "--config", metavar="FILE", help="the server's YAML configuration (its store is searched)"
    )
    search.add_argument(
        "--store",
        metavar="URL",
        help="search this store instead (sqlite:///PATH or postgresql://USER@HOST:PORT/DB)",
    )


# ---------------------------------------------------------------- pure helpers


def parse_time(text: str, *, end_of_day: bool = False, utc: bool = False) -> float:
    """Seconds since the epoch for ``YYYY-MM-DD`` or an ISO 8601 date and time.

    A time without an offset is local time (UTC with ``utc``). With
    ``end_of_day``, a date alone means the midnight that ends it, so
    ``--until 2026-11-30`` includes the 30th.

    Raises:
        UsageError: not a date (the message shows the accepted forms).
    """
    value = text.strip()
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value) + timedelta(days=1 if end_of_day else 0)
            moment = datetime(day.year, day.month, day.day)
        else:
            moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"bad date {text!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] or add an offset "
            "(2026-11-01T08:00+01:00)"
        ) from None
    if moment.tzinfo is None and utc:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()  # naive: local time


def format_time(epoch_s: float, *, utc: bool = False) -> str:
    """``2026-11-02 14:03:11`` in local time (or UTC)."""
    moment = datetime.fromtimestamp(epoch_s, UTC if utc else None)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_offset(offset_ms: int | None) -> str:
    """Where in the recording: ``mm:ss.s`` (``h:mm:ss.s`` past an hour); ``-`` when none."""
    if offset_ms is None:
        return "-"
    tenths = round(offset_ms / 100)
    minutes, tenths_in_minute = divmod(tenths, 600)
    seconds = f"{tenths_in_minute // 10:02d}.{tenths_in_minute % 10}"
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds}"
    return f"{minutes:02d}:{seconds}"


def highlight(fragments: Iterable[tuple[str, bool]], *, ansi: bool) -> str:
    """The snippet with its matches in bold (``ansi``) or in ``[brackets]``."""
    parts = []
    for text, is_match in fragments:
        clean = _printable(text)
        if is_match:
            parts.append(f"{_BOLD}{clean}{_RESET}" if ansi else f"[{clean}]")
        else:
            parts.append(clean)
    return "".join(parts)


def _printable(text: str) -> str:
    """Stored text on one line, without control characters a terminal would obey."""
    return "".join(" " if ch.isspace() else ch for ch in text if ch.isprintable() or ch.isspace())


def _duration(value: float | None, flag: str) -> float | None:
    if value is None:
        return None
    if math.isnan(value) or value < 0:
        raise UsageError(f"{flag} must be a number of seconds >= 0, not {value}")
    return value


def _store_settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The store's URL (``--store``, else the configuration's) and ``open_store`` options.

    The options are the server's (country code, redaction policy): opening a
    store may back-fill the redaction of old messages, which must follow the
    site's policy.
    """
    from hotline.config import ConfigError, load_config, redaction_policy, store_url

    try:
        config = load_config(args.config)
        options = {
            "default_country_code": config.store.default_country_code,
            "redaction": redaction_policy(config),
        }
        return (str(args.store) if args.store else store_url(config)), options
    except ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from None


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite store that does not exist (a read must not create it)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest
    if path == ":memory:" or not path:
        return None
    return None if Path(path).exists() else path


# ---------------------------------------------------------------- the command


def run(args: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run ``hotline search``; return the exit status (0, 1: store failed, 2: bad input)."""
    from conversations import InvalidValue, SearchQuery, StoreError
    from conversations.search_query import parse

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        parse(args.query)  # the store's own parser: a syntax error needs no store
    except InvalidValue as exc:
        print(f"hotline search: bad query: {exc}", file=err)
        return 2
    try:
        since = parse_time(args.since, utc=args.utc) if args.since else None
        until = parse_time(args.until, end_of_day=True, utc=args.utc) if args.until else None
        if since is not None and until is not None and until <= since:
            raise UsageError("--until must be later than --since")
        if args.limit < 1:
            raise UsageError(f"--limit must be at least 1, not {args.limit}")
        if args.offset < 0:
            raise UsageError(f"--offset must be at least 0, not {args.offset}")
        query = SearchQuery(
            text=args.query,
            since=since,
            until=until,
            queue=args.queue,
            agent=args.agent,
            intent=args.intent,
            channel=args.channel,
            min_duration_s=_duration(args.min_duration, "--min-duration"),
            max_duration_s=_duration(args.max_duration, "--max-duration"),
            limit=args.limit,
            offset=args.offset,
        )
        url, options = _store_settings(args)
    except UsageError as exc:
        print(f"hotline search: {exc}", file=err)
        return 2
    missing = _missing_sqlite_file(url)
    if missing is not None:
        print(
            f"hotline search: no store at {missing} (give --config FILE or --store URL)",
            file=err,
        )
        return 1
    ansi = not args.json and _is_terminal(out)
    try:
        asyncio.run(_search(url, options, query, args, out, ansi=ansi))
    except InvalidValue as exc:  # a filter the store refuses (the query parsed above)
        print(f"hotline search: {exc}", file=err)
        return 2
    except StoreError as exc:
        print(f"hotline search: {exc}", file=err)
        return 1
    return 0


def _is_terminal(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):  # https://no-color.org
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


async def _search(
    url: str,
    options: dict[str, Any],
    query: Any,
    args: argparse.Namespace,
    out: IO[str],
    *,
    ansi: bool,
) -> None:
    from conversations import open_store

    async with open_store(url, **options) as store:
        page = await store.search(query)
        call_ids = await _call_ids(store, {hit.conversation_id for hit in page.hits})
    for hit in page.hits:
        call_id = call_ids.get(hit.conversation_id)
        if args.json:
            print(json.dumps(hit_json(hit, call_id, utc=args.utc)), file=out)
        else:
            print(hit_text(hit, call_id, ansi=ansi, utc=args.utc), file=out)
    if not args.json:
        print(_summary(len(page.hits), page.total, query.offset), file=out)


async def _call_ids(store: Store, conversation_ids: Iterable[int]) -> dict[int, str | None]:
    """Each conversation's SIP Call-ID (None for a web chat), one read per conversation."""
    found: dict[int, str | None] = {}
    for conversation_id in sorted(conversation_ids):
        conversation = await store.get_conversation(conversation_id)
        found[conversation_id] = conversation.call_id if conversation else None
    return found


def hit_text(hit: SearchHit, call_id: str | None, *, ansi: bool, utc: bool = False) -> str:
    """Two lines: when, where in the recording, who, which call; then the snippet."""
    where = f"call {call_id}" if call_id else hit.channel
    context = ", ".join(
        f"{name} {value}"
        for name, value in (("queue", hit.queue), ("agent", hit.agent), ("intent", hit.intent))
        if value
    )
    head = (
        f"{format_time(hit.at, utc=utc)}  {format_offset(hit.offset_ms):>8}  "
        f"{hit.speaker:<8}  {where} (conversation {hit.conversation_id}"
        f"{', ' + context if context else ''})"
    )
    return f"{head}\n    {highlight(hit.snippet, ansi=ansi)}"


def hit_json(hit: SearchHit, call_id: str | None, *, utc: bool = False) -> dict[str, Any]:
    """A match for scripts: ids, times (epoch and readable), the snippet and its fragments."""
    return {
        "conversation_id": hit.conversation_id,
        "call_id": call_id,
        "recording_id": hit.recording_id,
        "kind": hit.kind,
        "item_id": hit.item_id,
        "channel": hit.channel,
        "speaker": hit.speaker,
        "at": hit.at,
        "at_text": format_time(hit.at, utc=utc),
        "offset_ms": hit.offset_ms,
        "offset": format_offset(hit.offset_ms) if hit.offset_ms is not None else None,
        "snippet": "".join(text for text, _ in hit.snippet),
        "matches": [text for text, is_match in hit.snippet if is_match],
        "fragments": [[text, is_match] for text, is_match in hit.snippet],
        "rank": hit.rank,
        "started_at": hit.started_at,
        "duration_s": hit.duration_s,
        "queue": hit.queue,
        "agent": hit.agent,
        "intent": hit.intent,
    }


def _summary(shown: int, total: int | None, offset: int) -> str:
    if shown == 0:
        return "no matches" if offset == 0 or not total else f"no matches past {offset}"
    first, last = offset + 1, offset + shown
    of_total = f" of {total}" if total is not None else ""
    return f"matches {first}-{last}{of_total}" if shown > 1 else f"match {first}{of_total}"
