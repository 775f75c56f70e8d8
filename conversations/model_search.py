"""What ``Store.search`` takes and gives: a query with filters, and a ranked page of hits.

A search document is one recording's whole transcript (both channels, in time
order) or one message (chat, or an utterance heard in the IVR), always in its
redacted form. A hit points at the first place of the document where a word
of the query matched: the transcript segment, and the time of the word in the
recording.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HIT_KINDS", "SearchHit", "SearchPage", "SearchQuery"]

HIT_KINDS = frozenset({"transcript", "message"})


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search: ``text`` in the query language (``search_query``) and filters.

    ``since`` (inclusive) and ``until`` (exclusive) bound the conversation's
    ``started_at``; ``channel`` is the conversation's (``voice``/``webchat``);
    the durations are the call's recording's, in seconds (a filter on them
    leaves out conversations without a recording).
    """

    text: str
    since: float | None = None
    until: float | None = None
    queue: str | None = None
    agent: str | None = None
    intent: str | None = None
    channel: str | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching document, where it matched, and the conversation around it.

    ``kind`` ``transcript``: ``item_id`` is the segment of the first match,
    ``recording_id`` its recording. ``message``: ``item_id`` is the message,
    ``recording_id`` the conversation's recording if it has one. ``offset_ms``:
    where the first matched word starts in the recording (a message: its own
    ``offset_ms``); ``at``: the wall time of that word (a message: its time).
    ``snippet``: redacted text around the match in ``(text, is_match)``
    fragments. ``rank``: relevance, higher is better (FTS5 bm25 negated, or
    PostgreSQL ts_rank; comparable within one page only).
    """

    conversation_id: int
    recording_id: int | None
    kind: str  # one of HIT_KINDS
    item_id: int
    channel: str  # the conversation's: voice | webchat
    speaker: str  # who said the matched words: customer, agent, ivr, system
    offset_ms: int | None
    at: float
    snippet: tuple[tuple[str, bool], ...]
    rank: float
    started_at: float  # the conversation's
    duration_s: float | None  # the recording's
    queue: str | None
    agent: str | None
    intent: str | None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of hits, best first; ``total`` counts all matches (None: too costly to count)."""

    hits: tuple[SearchHit, ...]
    total: int | None
