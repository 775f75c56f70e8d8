"""``GET /api/search``: the QA search over call transcripts and chat messages.

The store parses the query language and ranks the hits
(``conversations.SearchQuery``); a query it cannot parse is a 400 carrying the
parser's message, so the QA page can show it under the search box. Snippets
come redacted from the index whoever asks.
"""

from __future__ import annotations

from aiohttp import web

from bridge.errors import ApiError
from bridge.openapi import SEARCH_MAX_OFFSET
from bridge.operations import ApiRequest, OperationHandler
from bridge.serialize import search_hit_json
from conversations import InvalidValue, SearchQuery

__all__ = ["HANDLERS"]

DEFAULT_LIMIT = 20
_FILTERS = (
    "since", "until", "queue", "agent", "intent", "channel", "min_duration_s", "max_duration_s",
)  # fmt: skip


def _check_bounds(params: dict[str, object], low: str, high: str) -> None:
    lower, upper = params.get(low), params.get(high)
    if isinstance(lower, int | float) and isinstance(upper, int | float) and upper < lower:
        raise ApiError(400, f"must not be below {low}", field=high)


async def search(call: ApiRequest) -> web.Response:
    """``GET /api/search``: one page of hits, best first."""
    params = call.params
    _check_bounds(params, "since", "until")
    _check_bounds(params, "min_duration_s", "max_duration_s")
    limit = params.get("limit", DEFAULT_LIMIT)
    offset = params.get("offset", 0)
    filters = {name: params[name] for name in _FILTERS if name in params}
    try:
        page = await call.store.search(
            SearchQuery(text=params["q"], limit=limit, offset=offset, **filters)
        )
    except InvalidValue as exc:  # the query language's own message: what is wrong, where
        raise ApiError(400, str(exc), field="q") from None
    hits = list(page.hits)
    after = offset + len(hits)
    if page.total is not None:
        next_offset = after if after < page.total else None
    else:
        next_offset = after if len(hits) == limit else None
    if next_offset is not None and next_offset > SEARCH_MAX_OFFSET:
        next_offset = None
    return web.json_response(
        {
            "hits": [search_hit_json(hit) for hit in hits],
            "total": page.total,
            "next_offset": next_offset,
        }
    )


HANDLERS: dict[str, OperationHandler] = {"searchConversations": search}
