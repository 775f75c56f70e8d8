"""The search index and search itself, as sans-IO operations for both dialects.

A search document is a recording's transcript or one message, in its redacted
form, cut into words by ``search_query.tokens``. ``search_items`` has a row per
document with the values the filters need (copied from the conversation and
recording); its id is the document's id in the full-text index: SQLite's FTS5
table ``search_fts`` (rowid; external content: ``search_content.body`` and
``.tags``), or PostgreSQL's ``document`` tsvector column with its GIN index
(``to_tsvector('simple', ...)``).

On SQLite the filters are words too (``tags_of``): the channel, the queue,
agent and intent (hashed), and the day the conversation started as base-4
blocks of 1, 4, 16... days, so that "help" for one agent is an intersection
of two word lists inside FTS5 instead of a look-up of every call that says
help (benchmarks/search.py at 100,000 calls, "help agent=agent150": 3 ms
against 38 ms, p50). Dates and durations are still checked exactly on
``search_items``, after FTS5 has narrowed the documents.

A search is one statement (``run_plan``): the matches are walked newest
first, filtered, and only the newest ``RANK_WINDOW + 1`` are scored (bm25 costs
~2.5 us per row on SQLite) and sorted for the page; their count is the total
when there are at most ``RANK_WINDOW``. So a word found in most calls costs
about what one found in 5,000 does: relevance then ranks the newest 5,000
matches. Only the page's hits are read in full (``search_match`` finds the
matched word and cuts the snippet in Python).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conversations.errors import NotFound
from conversations.model import Conversation, Message
from conversations.model_search import SearchHit, SearchPage
from conversations.operations import Op, Query, Row
from conversations.operations import add_message as insert_message
from conversations.operations import update_conversation as change_conversation
from conversations.search_match import first_match, snippet, word_at_token
from conversations.search_query import Node, Term, positive_terms, to_fts5, to_tsquery, tokens

__all__ = [
    "RANK_WINDOW",
    "SearchFilters",
    "SearchPlan",
    "add_message",
    "backfill_messages",
    "day_blocks",
    "document_text",
    "index_document",
    "plan",
    "run_plan",
    "search",
    "tags_of",
    "unredacted_messages",
    "update_conversation",
]

RANK_WINDOW = 5000
DAY_S = 86_400
DAY_LEVELS = 7  # day blocks of 4**0 .. 4**6 days (4,096 days: 11 years)
MAX_TAGGED_DAYS = 64  # a longer date range narrows too little to be worth its OR
_ITEM_COLUMNS = (
    "id, kind, item_id, conversation_id, channel, started_at, queue, agent, intent, duration_s"
)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Checked filter values (``SearchQuery``'s), None for no filter."""

    since: float | None = None
    until: float | None = None
    queue: str | None = None
    agent: str | None = None
    intent: str | None = None
    channel: str | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A search for one dialect: the match expression, the filters left to SQL, the page."""

    match: str  # FTS5 MATCH text, or to_tsquery text
    filters: tuple[tuple[str, Any], ...]  # ("i.queue = ?", "billing"), on search_items i
    terms: tuple[Term, ...]  # what to highlight
    limit: int
    offset: int


# ---------------------------------------------------------------- filters as words


def _digest(value: str) -> str:
    """A filter value as one index word: 16 hex digits (any text, any length)."""
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


def tags_of(
    channel: str, queue: str | None, agent: str | None, intent: str | None, started_at: float
) -> str:
    """The filter words of a conversation's documents (SQLite's ``search_items.tags``)."""
    day = math.floor(started_at / DAY_S)
    words = [f"c{_digest(channel)}"]
    words += [
        f"{key}{_digest(value)}"
        for key, value in (("q", queue), ("a", agent), ("i", intent))
        if value is not None
    ]
    words += [f"d{level}x{day >> (2 * level)}" for level in range(DAY_LEVELS)]
    return " ".join(words)


def day_blocks(first_day: int, last_day: int) -> list[str]:
    """The fewest day-block words covering days ``first_day`` .. ``last_day`` exactly."""
    blocks = []
    day = first_day
    while day <= last_day:
        level = 0
        # Grow the block while it starts aligned and still fits in the range.
        while (
            level + 1 < DAY_LEVELS
            and day % (4 ** (level + 1)) == 0
            and day + 4 ** (level + 1) - 1 <= last_day
        ):
            level += 1
        blocks.append(f"d{level}x{day >> (2 * level)}")
        day += 4**level
    return blocks


def plan(
    dialect: str,
    tree: Node,
    where: SearchFilters,
    limit: int,
    offset: int,
    started: tuple[float, float] | None = None,
) -> SearchPlan:
    """How to run a parsed query with checked filters on one dialect (not an operation).

    ``started``: the oldest and newest document's ``started_at``, which close a
    date range open on one side (SQLite: a short range is day words).
    """
    since, until = where.since, where.until
    if started is not None and (since is None) != (until is None):
        since = started[0] if since is None else since
        until = started[1] + 1.0 if until is None else until
    clauses: list[tuple[str, Any]] = []
    for clause, value in (
        ("i.started_at >= ?", where.since),
        ("i.started_at < ?", where.until),
        ("i.duration_s >= ?", where.min_duration_s),
        ("i.duration_s <= ?", where.max_duration_s),
    ):
        if value is not None:
            clauses.append((clause, value))
    terms = positive_terms(tree)
    if dialect == "postgresql":
        for name in ("queue", "agent", "intent", "channel"):
            if getattr(where, name) is not None:
                clauses.append((f"i.{name} = ?", getattr(where, name)))
        return SearchPlan(to_tsquery(tree), tuple(clauses), terms, limit, offset)
    tags = [
        f'"{key}{_digest(value)}"'
        for key, value in (
            ("c", where.channel),
            ("q", where.queue),
            ("a", where.agent),
            ("i", where.intent),
        )
        if value is not None
    ]
    if since is not None and until is not None and until > since:
        first_day = math.floor(since / DAY_S)
        last_day = math.ceil(until / DAY_S) - 1  # until is exclusive
        if last_day - first_day < MAX_TAGGED_DAYS:
            tags.append("(" + " OR ".join(f'"{b}"' for b in day_blocks(first_day, last_day)) + ")")
    match = "{body} : (" + to_fts5(tree) + ")"
    if tags:
        match = f"({match}) AND ({{tags}} : ({' AND '.join(tags)}))"
    return SearchPlan(match, tuple(clauses), terms, limit, offset)


# ---------------------------------------------------------------- indexing


def document_text(texts: Sequence[str]) -> str:
    """The words of redacted texts as the index takes them (not an operation)."""
    return " ".join(word for text in texts for word in tokens(text))


def index_document(
    dialect: str,
    kind: str,
    item_id: int,
    conversation_id: int,
    duration_s: float | None,
    document: str,
) -> Op[None]:
    """Index one document (nothing for one without words; indexing twice is a no-op)."""
    if not document:
        return
    rows = yield Query(
        "SELECT channel, started_at, queue, agent, intent FROM conversations WHERE id = ?",
        (conversation_id,),
    )
    if not rows:
        raise NotFound(f"conversation {conversation_id}")
    channel, started_at, queue, agent, intent = rows[0]
    values = (kind, item_id, conversation_id, *rows[0], duration_s)
    columns = (
        "kind, item_id, conversation_id, channel, started_at, queue, agent, intent, duration_s"
    )
    if dialect == "postgresql":
        yield Query(
            f"INSERT INTO search_items ({columns}, document) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, to_tsvector('simple', ?)) "
            "ON CONFLICT (kind, item_id) DO NOTHING",
            (*values, document),
        )
        return
    rows = yield Query(
        f"INSERT INTO search_items ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, item_id) DO NOTHING RETURNING id",
        values,
    )
    if rows:
        content = (rows[0][0], document, tags_of(channel, queue, agent, intent, started_at))
        yield Query("INSERT INTO search_content (id, body, tags) VALUES (?, ?, ?)", content)
        yield Query("INSERT INTO search_fts (rowid, body, tags) VALUES (?, ?, ?)", content)


def update_conversation(
    dialect: str, conversation_id: int, changes: dict[str, str], now: float
) -> Op[Conversation]:
    """``operations.update_conversation``, and its documents' filter values with it."""
    updated = yield from change_conversation(conversation_id, changes, now)
    if not any(name in changes for name in ("queue", "agent", "intent")):
        return updated
    if dialect == "sqlite":
        # Re-tag: FTS5 forgets a row by the exact words it indexed (search_content).
        tags = tags_of(
            updated.channel, updated.queue, updated.agent, updated.intent, updated.started_at
        )
        rows = yield Query(
            "SELECT c.id, c.body, c.tags FROM search_items i JOIN search_content c ON c.id = i.id "
            "WHERE i.conversation_id = ? AND c.tags != ?",
            (conversation_id, tags),
        )
        for doc_id, body, old_tags in rows:
            yield Query(
                "INSERT INTO search_fts (search_fts, rowid, body, tags) VALUES ('delete', ?, ?, ?)",
                (doc_id, body, old_tags),
            )
            yield Query(
                "INSERT INTO search_fts (rowid, body, tags) VALUES (?, ?, ?)", (doc_id, body, tags)
            )
            yield Query("UPDATE search_content SET tags = ? WHERE id = ?", (tags, doc_id))
    yield Query(
        "UPDATE search_items SET queue = ?, agent = ?, intent = ? WHERE conversation_id = ?",
        (updated.queue, updated.agent, updated.intent, conversation_id),
    )
    return updated


def add_message(
    dialect: str,
    conversation_id: int,
    speaker: str,
    text: str,
    redacted: str,
    at: float,
    offset_ms: int | None,
    confidence: float | None,
    now: float,
) -> Op[Message]:
    """Append a message with its redacted text, and index the redacted text."""
    message = yield from insert_message(
        conversation_id, speaker, text, at, offset_ms, confidence, now, redacted=redacted
    )
    duration_s = yield from _call_duration(conversation_id)
    yield from index_document(
        dialect, "message", message.id, conversation_id, duration_s, document_text([redacted])
    )
    return message


def _call_duration(conversation_id: int) -> Op[float | None]:
    rows = yield Query(
        "SELECT duration_s FROM recordings WHERE conversation_id = ? ORDER BY id LIMIT 1",
        (conversation_id,),
    )
    return rows[0][0] if rows else None


def unredacted_messages(limit: int) -> Op[list[tuple[int, int, str]]]:
    """Messages stored before redaction existed: (id, conversation_id, text), oldest first."""
    rows = yield Query(
        "SELECT id, conversation_id, text FROM messages WHERE redacted_text IS NULL "
        "ORDER BY id LIMIT ?",
        (limit,),
    )
    return [(row[0], row[1], row[2]) for row in rows]


def backfill_messages(dialect: str, redacted: Sequence[tuple[int, int, str]]) -> Op[int]:
    """Store the redacted texts of (id, conversation_id, redacted text) and index them."""
    for message_id, conversation_id, text in redacted:
        rows = yield Query(
            "UPDATE messages SET redacted_text = ? WHERE id = ? AND redacted_text IS NULL "
            "RETURNING id",
            (text, message_id),
        )
        if rows:
            duration_s = yield from _call_duration(conversation_id)
            yield from index_document(
                dialect, "message", message_id, conversation_id, duration_s, document_text([text])
            )
    return len(redacted)


# ---------------------------------------------------------------- searching


def search(
    dialect: str, tree: Node, where: SearchFilters, limit: int, offset: int
) -> Op[SearchPage]:
    """A page of documents matching the query and filters, best first; see the module docstring."""
    started = None
    if dialect == "sqlite" and (where.since is None) != (where.until is None):
        # Two sub-queries: SQLite reads a min() or a max() alone off the index's ends.
        rows = yield Query(
            "SELECT (SELECT min(started_at) FROM search_items), "
            "(SELECT max(started_at) FROM search_items)"
        )
        if rows[0][0] is None:
            return SearchPage((), 0)
        started = (float(rows[0][0]), float(rows[0][1]))
    return (yield from run_plan(dialect, plan(dialect, tree, where, limit, offset, started)))


def run_plan(dialect: str, planned: SearchPlan) -> Op[SearchPage]:
    """A page of documents matching a plan, best first.

    One statement walks the matches newest first, filters them, scores at most
    ``RANK_WINDOW + 1`` and sorts those: the newest-first walk stops there, so
    neither the filters' look-ups nor the scoring grow with a common word.
    """
    if dialect == "postgresql":
        source, doc_id = "search_items i", "i.id"
        match = "i.document @@ to_tsquery('simple', ?)"
        score, order = "ts_rank(i.document, to_tsquery('simple', ?))", "score DESC"
        score_values: tuple[str, ...] = (planned.match,)
    else:
        # The items table only when a filter needs it: FTS5 alone is faster.
        source = "search_fts"
        if planned.filters:
            source += " JOIN search_items i ON i.id = search_fts.rowid"
        doc_id, match = "search_fts.rowid", "search_fts MATCH ?"
        score, order = "bm25(search_fts, 1.0, 0.0)", "score"  # tags weigh nothing
        score_values = ()
    where = " AND ".join((match, *(clause for clause, _ in planned.filters)))
    values = tuple(value for _, value in planned.filters)
    # MATERIALIZED: score in the walk (bm25 needs FTS5's cursor), sort outside it.
    # One more than the window is walked, to tell "exactly 5,000" from "more".
    ranked = yield Query(
        f"WITH newest AS MATERIALIZED (SELECT {doc_id} AS doc_id, {score} AS score "
        f"FROM {source} WHERE {where} ORDER BY {doc_id} DESC LIMIT ?), "
        "counted AS (SELECT doc_id, score, count(*) OVER () AS found, "
        "row_number() OVER (ORDER BY doc_id DESC) AS age FROM newest) "
        f"SELECT doc_id, score, found FROM counted WHERE age <= ? "
        f"ORDER BY {order}, doc_id DESC LIMIT ? OFFSET ?",
        (
            *score_values,
            planned.match,
            *values,
            RANK_WINDOW + 1,
            RANK_WINDOW,
            planned.limit,
            planned.offset,
        ),
    )
    if not ranked:
        if planned.offset == 0:
            return SearchPage((), 0)
        # Past the last page: still say how many there are.
        rows = yield Query(
            f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?) newest",
            (planned.match, *values, RANK_WINDOW + 1),
        )
        count = int(rows[0][0])
    else:
        count = int(ranked[0][2])
    total: int | None = count
    if count > RANK_WINDOW:
        total = None
        if not planned.filters:  # counting in the full-text index alone is cheap
            rows = yield Query(f"SELECT count(*) FROM {source} WHERE {where}", (planned.match,))
            total = int(rows[0][0])
    if not ranked:
        return SearchPage((), total)
    sign = 1.0 if dialect == "postgresql" else -1.0  # bm25: lower is better
    ranks = {row[0]: sign * float(row[1]) for row in ranked}
    hits = yield from _hits([row[0] for row in ranked], ranks, planned.terms)
    return SearchPage(tuple(hits), total)


def _in(count: int) -> str:
    return "(" + ", ".join("?" * count) + ")"


def _hits(ids: list[int], ranks: dict[int, float], terms: Sequence[Term]) -> Op[list[SearchHit]]:
    """The page's hits in rank order, read in full."""
    rows = yield Query(f"SELECT {_ITEM_COLUMNS} FROM search_items WHERE id IN {_in(len(ids))}", ids)
    items = {row[0]: row for row in rows}
    recordings = [row[2] for row in rows if row[1] == "transcript"]
    messages = [row[2] for row in rows if row[1] == "message"]
    places: dict[tuple[str, int], dict[str, Any]] = {}
    if recordings:
        found = yield from _transcript_places(recordings, terms)
        places.update((("transcript", key), value) for key, value in found.items())
    if messages:
        found = yield from _message_places(messages, terms)
        places.update((("message", key), value) for key, value in found.items())
    hits = []
    for doc_id in ids:
        item = items.get(doc_id)
        place = None if item is None else places.get((item[1], item[2]))
        if item is None or place is None:
            continue  # gone between the two reads (cannot happen: no deletes)
        hits.append(
            SearchHit(
                conversation_id=item[3],
                recording_id=place["recording_id"],
                kind=item[1],
                item_id=place["item_id"],
                channel=item[4],
                speaker=place["speaker"],
                offset_ms=place["offset_ms"],
                at=place["at"],
                snippet=place["snippet"],
                rank=ranks[doc_id],
                started_at=item[5],
                duration_s=item[9],
                queue=item[6],
                agent=item[7],
                intent=item[8],
            )
        )
    return hits


def _transcript_places(
    recording_ids: list[int], terms: Sequence[Term]
) -> Op[dict[int, dict[str, Any]]]:
    """Per recording: the segment and word of the first match, its time, the snippet."""
    rows = yield Query(
        f"SELECT id, started_at FROM recordings WHERE id IN {_in(len(recording_ids))}",
        recording_ids,
    )
    started: dict[int, float] = {row[0]: row[1] for row in rows}
    rows = yield Query(
        "SELECT recording_id, id, speaker, start_ms, text FROM transcript_segments "
        f"WHERE recording_id IN {_in(len(recording_ids))} ORDER BY recording_id, start_ms, id",
        recording_ids,
    )
    segments: dict[int, list[Row]] = {}
    for row in rows:
        segments.setdefault(row[0], []).append(row)
    chosen: dict[int, tuple[Row, int]] = {}  # recording -> (segment row, token index)
    for recording_id, rows_of in segments.items():
        where = first_match(terms, [tokens(row[4]) for row in rows_of])
        segment_index, token_index = where if where is not None else (0, 0)
        chosen[recording_id] = (rows_of[segment_index], token_index)
    if not chosen:
        return {}
    segment_ids = [row[1] for row, _ in chosen.values()]
    rows = yield Query(
        f"SELECT id, words FROM transcript_segments WHERE id IN {_in(len(segment_ids))}",
        segment_ids,
    )
    words_of = {row[0]: json.loads(row[1]) for row in rows}
    places = {}
    for recording_id, (segment, token_index) in chosen.items():
        words = words_of.get(segment[1], [])
        texts = [word[0] for word in words]
        word_index = word_at_token(texts, token_index)
        offset_ms = int(words[word_index][1]) if words else int(segment[3])
        places[recording_id] = {
            "recording_id": recording_id,
            "item_id": segment[1],
            "speaker": segment[2],
            "offset_ms": offset_ms,
            "at": started.get(recording_id, 0.0) + offset_ms / 1000.0,
            "snippet": snippet(texts, terms, word_index),
        }
    return places


def _message_places(message_ids: list[int], terms: Sequence[Term]) -> Op[dict[int, dict[str, Any]]]:
    """Per message: the snippet around its first match, its time, its call's recording."""
    rows = yield Query(
        "SELECT id, conversation_id, speaker, redacted_text, at, offset_ms FROM messages "
        f"WHERE id IN {_in(len(message_ids))}",
        message_ids,
    )
    conversations = sorted({row[1] for row in rows})
    recording_of: dict[int, int] = {}
    if conversations:
        found = yield Query(
            "SELECT conversation_id, MIN(id) FROM recordings "
            f"WHERE conversation_id IN {_in(len(conversations))} GROUP BY conversation_id",
            conversations,
        )
        recording_of = dict(found)
    places = {}
    for message_id, conversation_id, speaker, text, at, offset_ms in rows:
        words = (text or "").split()
        where = first_match(terms, [tokens(word) for word in words])
        word_index = where[0] if where is not None else 0
        places[message_id] = {
            "recording_id": recording_of.get(conversation_id),
            "item_id": message_id,
            "speaker": speaker,
            "offset_ms": offset_ms,
            "at": at,
            "snippet": snippet(words, terms, word_index),
        }
    return places
