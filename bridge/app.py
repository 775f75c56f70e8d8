"""The bridge's aiohttp application: ``create_app`` builds it, ``run_bridge`` serves it."""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web

from bridge import (
    api_agents,
    api_conversations,
    api_customers,
    api_recordings,
    api_search,
    api_session,
    api_system,
)
from bridge.auth import LoginGuard
from bridge.chat import TextChannels
from bridge.errors import error_middleware
from bridge.hub import Hub
from bridge.keys import CHANNELS, HUB, LIVE, LOGIN_GUARD, PLAYBACK_AUDIT, SETTINGS, STORE
from bridge.live import Live
from bridge.openapi import SPEC, operations
from bridge.operations import OperationHandler, bind
from bridge.pages import add_page_routes, security_headers
from bridge.playback_audit import PlaybackAudit
from bridge.settings import BridgeSettings
from bridge.sockets import OPEN_SOCKETS, close_all
from bridge.ws_agent import agent_socket
from bridge.ws_chat import chat_socket

__all__ = ["HANDLERS", "create_app", "run_bridge"]

HANDLERS: dict[str, OperationHandler] = {
    **api_system.HANDLERS,
    **api_session.HANDLERS,
    **api_conversations.HANDLERS,
    **api_customers.HANDLERS,
    **api_agents.HANDLERS,
    **api_recordings.HANDLERS,
    **api_search.HANDLERS,
}


def create_app(
    store: Any, live: Live, settings: BridgeSettings, *, hub: Hub | None = None
) -> web.Application:
    """The application over a started ``conversations`` store.

    Args:
        store: The conversation store (started; the caller closes it).
        live: The server's live state (``StaticLive`` when there is no server).
        settings: Secret key, cookie and size settings, and the recordings root.
        hub: Where the server publishes call events and screen pops for the
            agent pages; a new one if not given (then ``app[bridge.keys.HUB]``).

    Raises:
        LookupError: an operation of the OpenAPI document has no handler, or a
            handler no operation (the document and the code must agree).
    """
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[security_headers, error_middleware],
    )
    hub = hub if hub is not None else Hub()
    app[STORE] = store
    app[LIVE] = live
    app[SETTINGS] = settings
    app[HUB] = hub
    app[LOGIN_GUARD] = LoginGuard()
    app[CHANNELS] = TextChannels(store, hub, live)
    app[PLAYBACK_AUDIT] = PlaybackAudit()
    app[OPEN_SOCKETS] = weakref.WeakSet()
    bound = set()
    for method, path, operation in operations():
        operation_id = operation["operationId"]
        if operation_id not in HANDLERS:
            raise LookupError(f"OpenAPI operation {operation_id} has no handler")
        handler = bind(operation, HANDLERS[operation_id], SPEC)
        if method == "GET":
            app.router.add_get(path, handler, allow_head=False)
        else:
            app.router.add_route(method, path, handler)
        bound.add(operation_id)
    if unbound := set(HANDLERS) - bound:
        raise LookupError(f"handlers without an OpenAPI operation: {sorted(unbound)}")
    app.router.add_get("/ws/agent", agent_socket, allow_head=False)
    app.router.add_get("/ws/chat", chat_socket, allow_head=False)
    add_page_routes(app)
    app.on_shutdown.append(close_all)
    return app


async def run_bridge(
    host: str,
    port: int,
    store: Any,
    live: Live,
    settings: BridgeSettings,
    *,
    hub: Hub | None = None,
) -> web.AppRunner:
    """Serve ``create_app(...)`` on ``host:port``; return the runner (``cleanup`` stops it)."""
    runner = web.AppRunner(create_app(store, live, settings, hub=hub), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
