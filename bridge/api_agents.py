"""Agent and queue routes: who is on, set a state, the queues; and the QA audit log."""

from __future__ import annotations

from aiohttp import web

from bridge.errors import ApiError
from bridge.hub import AGENTS
from bridge.operations import ApiRequest, OperationHandler
from bridge.serialize import agent_json, audit_json

__all__ = ["HANDLERS"]


async def list_agents(call: ApiRequest) -> web.Response:
    """``GET /api/agents``: enabled users with the agent role, in routing's live state."""
    users = await call.store.list_users()
    live = call.live.agents()
    agents = [
        agent_json(u, live.get(u.name)) for u in users if "agent" in u.roles and not u.disabled
    ]
    return web.json_response(agents)


async def set_agent_state(call: ApiRequest) -> web.Response:
    """``PUT /api/agents/{name}/state``: agents set their own, admins and tokens anyone's."""
    name = call.params["name"]
    principal = call.caller
    if principal.kind == "user" and name != principal.name and "admin" not in principal.roles:
        raise ApiError(403, "agents may only set their own state", field="name")
    user = await call.store.get_user(name)
    if user is None or "agent" not in user.roles or user.disabled:
        raise ApiError(404, f"no agent {name}", field="name")
    state, reason = call.body["state"], call.body.get("reason")
    try:
        routed = call.live.agent_state(name, state, reason)
    except ValueError as exc:
        raise ApiError(409, str(exc), field="state") from None
    user = await call.store.set_agent_state(name, state)
    if routed is None:  # routing publishes its own agent.state when it routes to this agent
        call.hub.publish(
            AGENTS, {"type": "agent.state", "agent": name, "state": state, "reason": reason}
        )
    return web.json_response(agent_json(user, routed))


async def list_queues(call: ApiRequest) -> web.Response:
    """``GET /api/queues``: the server's queues now."""
    return web.json_response(call.live.queues())


async def list_audit(call: ApiRequest) -> web.Response:
    """``GET /api/audit``: newest first (QA and admins)."""
    entries = await call.store.audit_log(
        target=call.params.get("target"),
        actor=call.params.get("actor"),
        limit=call.params.get("limit", 100),
    )
    return web.json_response([audit_json(e) for e in entries])


HANDLERS: dict[str, OperationHandler] = {
    "listAgents": list_agents,
    "setAgentState": set_agent_state,
    "listQueues": list_queues,
    "listAudit": list_audit,
}
