"""The OpenAPI document and the app agree: every route is documented and vice versa."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bridge.app import HANDLERS, create_app
from bridge.live import StaticLive
from bridge.openapi import SPEC, operations
from bridge.operations import resolve_refs
from bridge.scopes import ROLES, SCOPES
from bridge.settings import BridgeSettings

# Routes that are not REST: pages, static files and WebSockets.
NOT_REST = {"/", "/chat", "/agent", "/qa", "/ws/agent", "/ws/chat"}


def app_routes() -> set[tuple[str, str]]:
    app = create_app(None, StaticLive(), BridgeSettings(secret_key=b"k" * 32))
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path in NOT_REST or path.startswith("/static"):
            continue
        routes.add((route.method, path))
    return routes


def test_every_route_is_documented_and_every_operation_served() -> None:
    documented = {(method, path) for method, path, _ in operations()}
    assert app_routes() == documented


def test_operation_ids_are_unique_and_each_has_a_handler() -> None:
    ids = [operation["operationId"] for _, _, operation in operations()]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(HANDLERS)


@pytest.mark.parametrize(("method", "path", "operation"), operations(), ids=lambda v: str(v)[:40])
def test_each_operation_declares_access_consistently(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    access = operation["x-access"]
    assert set(access) <= {"public", "roles", "scope", "loopback"}
    if access.get("public"):
        assert operation["security"] == []
        return
    assert set(access["roles"]) <= ROLES
    scope = access.get("scope")
    assert scope is None or scope == "*" or scope in SCOPES
    schemes = {name for requirement in operation["security"] for name in requirement}
    # A token scope means bearer is documented; no scope means cookie sessions only.
    assert ("bearer" in schemes) == (scope is not None)
    assert "session" in schemes
    assert any(status in operation["responses"] for status in ("401", "403"))


@pytest.mark.parametrize(("method", "path", "operation"), operations(), ids=lambda v: str(v)[:40])
def test_path_parameters_match_the_path(method: str, path: str, operation: dict[str, Any]) -> None:
    in_path = set(re.findall(r"\{(\w+)\}", path))
    declared = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"}
    assert in_path == declared


def test_every_reference_resolves() -> None:
    resolved = resolve_refs(SPEC["paths"], SPEC)
    assert "$ref" not in repr(resolved)


def test_request_bodies_are_closed_objects() -> None:
    for _, _, operation in operations():
        if "requestBody" not in operation:
            continue
        schema = resolve_refs(
            operation["requestBody"]["content"]["application/json"]["schema"], SPEC
        )
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False, operation["operationId"]


def test_the_document_is_openapi_3_1() -> None:
    from schemathesis.openapi import from_dict

    assert SPEC["openapi"] == "3.1.0"
    loaded = [result.ok() for result in from_dict(SPEC).get_all_operations()]  # raises on Err
    assert sorted(op.label for op in loaded) == sorted(f"{m} {p}" for m, p, _ in operations())
