"""``/ws/agent``: what the agent page is told as it happens.

Authenticated by the session cookie (agents, QA staff and admins); the
handshake's ``Origin`` must be ours. The socket is **push only** for the desk:
every action (set state, take a chat, reply, close) is a REST call, which has
the CSRF check, the validation and the audit in one place. The client may send
``{"type": "ping"}`` (answered ``pong``) and, from an agent, the messages of
the phone in the browser (WebRTC signalling, which must ride the socket the
offers came on): ``phone.ready``, ``phone.off``, ``call.answer {call_id, sdp}``,
``call.reject {call_id}`` and ``call.hangup {call_id}``, checked against
``PHONE_FRAMES`` and handed to ``Live.phone`` with this socket's page id; its
reply (``phone.state`` or ``phone.error``) comes back on this socket only.
Anything else gets an ``error`` frame.

Frames pushed (all JSON objects with ``type``):
- ``hello``: ``{name, roles}`` once, on connect.
- ``conversation.updated``: ``{conversation}`` when a chat is opened (status
  queued: waiting), taken or closed.
- ``chat.message``: ``{conversation_id, customer_id, message}``, for chats
  still waiting and for the agent's own (others' chats are read by an
  audited ``GET``).
- ``agent.state``: ``{agent, state}``.
- ``call.event`` and ``screen_pop``: from the server (see ``bridge.hub``).
- ``transcript``: ``{call_id, speaker, text, final, offset_ms}``, a line of the
  agent's call as it is spoken (``speaker`` ``customer`` or ``agent``; the
  partials and the final of a line share ``offset_ms``, ms since the agent was
  connected), and ``transcript.status``: ``{call_id, state}`` with ``live``,
  ``unavailable`` (the recognizer is saturated) or ``ended``; from the server's
  live transcript (``hotline.live_transcript``), on the agent's own topic only.
- ``call.offer``, ``call.answered``, ``call.cancel``, ``call.hangup``: the
  browser phone's calls (see ``hotline.webrtc``).
- ``session.ended``: the session was logged out; the socket closes (4401).

The session is checked again every ``RECHECK_S``, so an expired or deleted
session stops receiving within that time even without a logout.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from bridge.auth import principal_for, token_hash
from bridge.errors import ApiError
from bridge.hub import AGENTS, agent_topic, session_topic
from bridge.keys import HUB, LIVE, STORE
from bridge.sockets import (
    CloseSocket,
    check_origin,
    open_socket,
    pump,
    read_frame,
    send,
    send_error,
    serve_socket,
)
from bridge.validation import ValidationError, validate

__all__ = ["CLOSE_SESSION_ENDED", "PHONE_FRAMES", "agent_socket"]

log = logging.getLogger(__name__)

RECHECK_S = 60.0
CLOSE_SESSION_ENDED = 4401
_STAFF = frozenset({"agent", "qa", "admin"})

_CALL_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_BARE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"type": {"type": "string"}},
}
_ONE_CALL: dict[str, Any] = {
    "type": "object",
    "required": ["call_id"],
    "additionalProperties": False,
    "properties": {"type": {"type": "string"}, "call_id": _CALL_ID},
}
#: The phone's messages, by type. An SDP answer with its candidates is 1-4 KiB;
#: the frame limit (``MAX_FRAME_BYTES``) bounds it anyway.
PHONE_FRAMES: dict[str, dict[str, Any]] = {
    "phone.ready": _BARE,
    "phone.off": _BARE,
    "call.answer": {
        "type": "object",
        "required": ["call_id", "sdp"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string"},
            "call_id": _CALL_ID,
            "sdp": {"type": "string", "minLength": 1, "maxLength": 12000, "pattern": "^v=0"},
        },
    },
    "call.reject": _ONE_CALL,
    "call.hangup": _ONE_CALL,
}


async def agent_socket(request: web.Request) -> web.StreamResponse:
    """The handshake and the socket's life; see the module docstring."""
    check_origin(request)
    principal = await principal_for(request)
    if principal is None or principal.kind != "user" or principal.session_token is None:
        raise ApiError(401, "log in on /agent first")
    if not principal.roles & _STAFF:
        raise ApiError(403, "needs the agent, qa or admin role")
    socket = await open_socket(request)
    session_token = principal.session_token
    page = secrets.token_urlsafe(9)  # tells this agent's pages apart for the phone
    live = request.app[LIVE]
    phone_used = False  # only a page that used its phone is reported closed
    subscription = request.app[HUB].subscribe(
        [AGENTS, agent_topic(principal.name), session_topic(token_hash(session_token))]
    )
    await send(socket, {"type": "hello", "name": principal.name, "roles": sorted(principal.roles)})

    async def translate(event: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("type") == "session.ended":
            await send(socket, event)
            raise CloseSocket(CLOSE_SESSION_ENDED, "logged out")
        return event

    async def recheck() -> None:
        store = request.app[STORE]
        while True:
            await asyncio.sleep(RECHECK_S)
            if await store.get_session(token_hash(session_token)) is None:
                await send(socket, {"type": "session.ended"})
                raise CloseSocket(CLOSE_SESSION_ENDED, "session expired")

    async def read() -> None:
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                frame = read_frame(message.data)
            except ValidationError as exc:
                await send_error(socket, exc.message, exc.field)
                continue
            if frame["type"] == "ping":
                await send(socket, {"type": "pong"})
            elif frame["type"] in PHONE_FRAMES:
                await phone(frame)
            else:
                await send_error(
                    socket, "this socket only pushes; actions go over the REST API", "type"
                )

    async def phone(frame: dict[str, Any]) -> None:
        nonlocal phone_used
        if "agent" not in principal.roles:
            await send_error(socket, "only agents take calls in the browser", "type")
            return
        try:
            validate(frame, PHONE_FRAMES[frame["type"]])
        except ValidationError as exc:
            await send_error(socket, exc.message, exc.field)
            return
        phone_used = True
        try:
            reply = await live.phone(principal.name, page, frame)
        except Exception:  # a bug: this message fails, the page and its calls go on
            log.exception("phone message %s of %s failed", frame["type"], principal.name)
            await send_error(socket, "internal error (logged on the server)")
            return
        if reply is not None:
            await send(socket, reply)

    try:
        await serve_socket(socket, read(), pump(socket, subscription, translate), recheck())
    finally:
        subscription.close()
        if phone_used:
            live.phone_closed(principal.name, page)
    return socket
