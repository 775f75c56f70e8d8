"""What both WebSockets share: the origin check, the JSON frames, the pump from the hub.

A browser sends cookies with a WebSocket handshake from any page, so the
handshake's ``Origin`` must be this server's own (cross-site WebSocket
hijacking); clients that are not browsers send no ``Origin`` and pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web

from bridge.errors import ApiError
from bridge.hub import Subscription
from bridge.validation import ValidationError, parse_json

__all__ = [
    "MAX_FRAME_BYTES",
    "CloseSocket",
    "serve_socket",
    "check_origin",
    "open_socket",
    "pump",
    "read_frame",
    "send_error",
]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
HEARTBEAT_S = 30.0
CLOSE_LAGGING = 4008  # the client stopped reading; it should reconnect and refetch
OPEN_SOCKETS = web.AppKey("open_sockets", weakref.WeakSet[web.WebSocketResponse])


def check_origin(request: web.Request) -> None:
    """Refuse a handshake whose ``Origin`` is another site's.

    Raises:
        ApiError: 403 naming the origin.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if urlsplit(origin).netloc.lower() != request.host.lower():
        raise ApiError(403, f"WebSocket from another origin ({origin}) refused", field="Origin")


async def open_socket(request: web.Request) -> web.WebSocketResponse:
    """Complete the handshake; the socket is closed with the app (``close_all``)."""
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES)
    await socket.prepare(request)
    request.app[OPEN_SOCKETS].add(socket)
    return socket


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every client we are going away (they reconnect)."""
    sockets = app[OPEN_SOCKETS]
    for socket in list(sockets):
        with contextlib.suppress(Exception):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


async def send(socket: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    """Send a JSON frame (a closed socket is not an error: the reader will notice)."""
    if not socket.closed:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await socket.send_str(json.dumps(frame, default=str))


async def send_error(socket: web.WebSocketResponse, message: str, field: str | None = None) -> None:
    """An ``{"type": "error"}`` frame, the WebSocket twin of the REST errors."""
    frame: dict[str, Any] = {"type": "error", "error": message}
    if field is not None:
        frame["field"] = field
    await send(socket, frame)


def read_frame(data: str) -> dict[str, Any]:
    """Decode a client's text frame as a JSON object with a string ``type``.

    Raises:
        ValidationError: not JSON, not an object, or no ``type``.
    """
    frame = parse_json(data.encode("utf-8", "surrogatepass"))
    if not isinstance(frame, dict):
        raise ValidationError(None, "a frame must be a JSON object")
    if not isinstance(frame.get("type"), str):
        raise ValidationError("type", "is required (a string)")
    return frame


class CloseSocket(Exception):  # noqa: N818 (an instruction, not an error)
    """Raised by a socket's task to have the socket closed with this code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def pump(
    socket: web.WebSocketResponse,
    subscription: Subscription,
    translate: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]] | None = None,
) -> None:
    """Forward the subscription's events to the socket until it ends.

    ``translate`` may rewrite an event for this client, drop it (None) or raise
    ``CloseSocket``. A subscription that overflowed raises ``CloseSocket(4008)``
    so the client reconnects and fetches the state again.
    """
    while not socket.closed:
        event = await subscription.get()
        if event is None:
            if subscription.overflowed:
                raise CloseSocket(CLOSE_LAGGING, "too slow; reconnect")
            return
        frame = await translate(event) if translate is not None else event
        if frame is not None:
            await send(socket, frame)


async def serve_socket(socket: web.WebSocketResponse, *tasks: Coroutine[Any, Any, None]) -> None:
    """Run a socket's tasks (its reader first) until one ends, then close the socket.

    The socket is closed here and only here, after the other tasks are
    cancelled: a task cancelled in the middle of ``close`` would cut the
    connection without its close frame (1006 instead of the code meant).
    """
    running = [asyncio.create_task(task) for task in tasks]
    code: int = WSCloseCode.OK
    reason = ""
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if isinstance(error, CloseSocket):
                code, reason = error.code, error.reason
            elif error is not None:
                log.error("WebSocket task failed", exc_info=error)
                code, reason = WSCloseCode.INTERNAL_ERROR, "internal error"
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await socket.close(code=code, message=reason.encode())
