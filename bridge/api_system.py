"""System routes: ``/health``, ``/api/openapi.json``, ``/metrics`` and a call's IVR outcome.

Process supervisors, the integration tests and ``hotline call`` read ``/health``
and ``/api/calls/{call_id}/ivr``.
"""

from __future__ import annotations

from aiohttp import web

from bridge.errors import ApiError
from bridge.hub import AGENTS
from bridge.metrics import CONTENT_TYPE, render_metrics
from bridge.openapi import SPEC
from bridge.operations import ApiRequest, OperationHandler

__all__ = ["HANDLERS"]


async def get_health(call: ApiRequest) -> web.Response:
    """``GET /health``: 200 while serving, 503 otherwise."""
    body = call.live.status()
    return web.json_response(body, status=200 if body.get("status") == "ok" else 503)


async def get_openapi(call: ApiRequest) -> web.Response:
    """``GET /api/openapi.json``."""
    return web.json_response(SPEC)


async def get_call_ivr(call: ApiRequest) -> web.Response:
    """``GET /api/calls/{call_id}/ivr``: the outcome, or 404 for an unknown call."""
    call_id = call.params["call_id"]
    outcome = call.live.call_outcome(call_id)
    if outcome is None:
        raise ApiError(404, "no such call in the IVR", field="call_id")
    return web.json_response(outcome)


async def get_metrics(call: ApiRequest) -> web.Response:
    """``GET /metrics``: the Prometheus exposition."""
    websockets = {
        "agent": call.hub.subscriber_count(AGENTS),
        "chat": call.hub.subscriber_count("conversation:"),
    }
    text = render_metrics(call.live.metrics(), call.store.stats(), websockets)
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})


HANDLERS: dict[str, OperationHandler] = {
    "getHealth": get_health,
    "getOpenapi": get_openapi,
    "getCallIvr": get_call_ivr,
    "getMetrics": get_metrics,
}
