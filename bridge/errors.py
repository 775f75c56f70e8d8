"""Errors as JSON: ``ApiError`` for the client's mistakes, a logged 500 for ours.

Every error body is ``{"error": "what went wrong", "field": "where"}`` (``field``
only when one input is at fault, as a dotted path such as ``identity.kind``).
aiohttp's own HTTP errors (404, 405, 413 from ``client_max_size``) get the same
shape, so a client never has to parse HTML. An exception that is neither is a
bug of ours: it is logged with its traceback and answered with a bare 500 that
leaks nothing. The store's errors map as ``conversations.errors`` says: a
value it refuses 400, an unknown id 404, a conflict 409, a failed or
overloaded database 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bridge.keys import SETTINGS
from bridge.validation import ValidationError
from conversations import (
    Conflict,
    InvalidValue,
    NotFound,
    StoreError,
    StoreOverloaded,
)

__all__ = ["ApiError", "error_middleware", "error_response"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A request the bridge refuses, with the status and the reason to send back."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The JSON error body every failure of the bridge is sent as."""
    body: dict[str, object] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


# aiohttp's exceptions carry HTML-ish reasons; these say what the client should change.
_HTTP_MESSAGES = {
    404: "no such resource",
    405: "method not allowed on this resource",
    413: "request body too large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error; see the module docstring."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.field, exc.headers)
    except ValidationError as exc:  # a handler's own check (an identity that is no number)
        return error_response(400, exc.message, exc.field)
    except InvalidValue as exc:  # the store's own check caught what the schema let through
        return error_response(400, str(exc))
    except NotFound as exc:
        return error_response(404, str(exc))
    except Conflict as exc:
        return error_response(409, str(exc))
    except StoreOverloaded as exc:
        log.warning("store overloaded on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "the store is overloaded; retry", None, {"Retry-After": "1"})
    except StoreError:  # the database failed, not the request
        log.exception("store failed on %s %s", request.method, request.path)
        return error_response(503, "the store is unavailable; retry", None, {"Retry-After": "5"})
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are answers, not errors
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        if exc.status == 413:
            message = (
                f"request body too large (at most {request.app[SETTINGS].max_body_bytes} bytes)"
            )
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(exc.status, message, None, headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error (logged on the server)")
