"""From an OpenAPI operation to an aiohttp route that enforces it.

``bind`` wraps a handler so that, before it runs, the request is
authenticated (``auth.principal_for``), authorized by the operation's
``x-access``, and its path, query and JSON body are converted and validated
by the operation's schemas. The handler gets an ``ApiRequest`` with all of
that done, so it only does its own work (and finer checks such as "agents may
only change their own state").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.auth import Principal, is_loopback, principal_for
from bridge.errors import ApiError
from bridge.keys import HUB, LIVE, SETTINGS, STORE
from bridge.validation import ValidationError, parse_json, parse_query_value, validate

__all__ = ["Access", "ApiRequest", "OperationHandler", "bind", "resolve_refs"]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call an operation (its ``x-access``; see ``bridge.openapi``)."""

    public: bool = False
    roles: frozenset[str] = frozenset()
    scope: str | None = None
    loopback: bool = False

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Access:
        """Read an ``x-access`` object."""
        return cls(
            public=bool(spec.get("public", False)),
            roles=frozenset(spec.get("roles", ())),
            scope=spec.get("scope"),
            loopback=bool(spec.get("loopback", False)),
        )

    def check(self, principal: Principal | None, loopback_peer: bool) -> Principal | None:
        """The principal the handler runs as; raise 401/403 if it may not.

        Raises:
            ApiError: 401 without credentials, 403 with insufficient ones.
        """
        if self.public:
            return principal
        if self.loopback and loopback_peer:  # this machine: open whatever it sends
            return principal or Principal("local", "loopback")
        if principal is None:
            raise ApiError(
                401,
                "log in or send Authorization: Bearer TOKEN",
                headers={"WWW-Authenticate": 'Bearer realm="hotline"'},
            )
        if principal.kind == "user":
            if self.roles and not (principal.roles & self.roles):
                needed = " or ".join(sorted(self.roles))
                raise ApiError(403, f"needs the {needed} role")
            return principal
        if self.scope is None:
            raise ApiError(403, "not available to API tokens; log in as a user")
        if self.scope != "*" and self.scope not in principal.scopes:
            raise ApiError(403, f"the token lacks the {self.scope} scope")
        return principal


@dataclass(slots=True)
class ApiRequest:
    """A request that passed its operation's checks, as handlers see it."""

    request: web.Request
    principal: Principal | None
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    @property
    def store(self) -> Any:
        """The conversation store."""
        return self.request.app[STORE]

    @property
    def hub(self) -> Any:
        """The pub/sub hub of the WebSockets."""
        return self.request.app[HUB]

    @property
    def live(self) -> Any:
        """The server's live state."""
        return self.request.app[LIVE]

    @property
    def settings(self) -> Any:
        """The bridge settings."""
        return self.request.app[SETTINGS]

    @property
    def caller(self) -> Principal:
        """The principal (every non-public operation has one)."""
        if self.principal is None:
            raise ApiError(401, "log in or send Authorization: Bearer TOKEN")
        return self.principal

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return self.caller.actor


OperationHandler = Callable[[ApiRequest], Awaitable[web.StreamResponse]]
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def resolve_refs(schema: Any, document: Mapping[str, Any]) -> Any:
    """``schema`` with every local ``$ref`` replaced by what it points to."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target: Any = document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve_refs(target, document)
        return {key: resolve_refs(value, document) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolve_refs(item, document) for item in schema]
    return schema


def bind(
    operation: Mapping[str, Any], handler: OperationHandler, document: Mapping[str, Any]
) -> RouteHandler:
    """The aiohttp handler that checks ``operation``'s rules, then runs ``handler``."""
    access = Access.from_spec(operation["x-access"])
    parameters = [resolve_refs(p, document) for p in operation.get("parameters", ())]
    path_params = {p["name"]: p["schema"] for p in parameters if p["in"] == "path"}
    query_params = {p["name"]: p["schema"] for p in parameters if p["in"] == "query"}
    required = [p["name"] for p in parameters if p["in"] == "query" and p.get("required")]
    body_schema = None
    if "requestBody" in operation:
        body_schema = resolve_refs(
            operation["requestBody"]["content"]["application/json"]["schema"], document
        )

    async def route(request: web.Request) -> web.StreamResponse:
        principal = None if access.public else await principal_for(request)
        principal = access.check(principal, is_loopback(request))
        try:
            params = _read_params(request, path_params, query_params, required)
            body = await _read_body(request, body_schema) if body_schema is not None else None
        except ValidationError as exc:
            raise ApiError(400, exc.message, field=exc.field) from None
        return await handler(ApiRequest(request, principal, params, body))

    route.__name__ = operation["operationId"]
    return route


def _read_params(
    request: web.Request,
    path_params: Mapping[str, Any],
    query_params: Mapping[str, Any],
    required: Sequence[str] = (),
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, schema in path_params.items():
        params[name] = parse_query_value(request.match_info[name], schema, name)
    for name in request.query:
        if name not in query_params:
            raise ValidationError(name, "is not a known query parameter")
    for name, schema in query_params.items():
        values = request.query.getall(name, [])
        if len(values) > 1:
            raise ValidationError(name, "is given more than once")
        if values:
            params[name] = parse_query_value(values[0], schema, name)
    for name in required:
        if name not in params:
            raise ValidationError(name, "is required")
    return params


async def _read_body(request: web.Request, schema: Mapping[str, Any]) -> Any:
    if request.content_type != "application/json":
        # Also what keeps a cross-site HTML form (which cannot send JSON) from posting here.
        raise ApiError(415, "send the body as Content-Type: application/json")
    raw = await request.read()  # 413 beyond client_max_size
    if not raw.strip():
        raise ValidationError(None, "a JSON body is required")
    body = parse_json(raw)
    validate(body, schema)
    return body
