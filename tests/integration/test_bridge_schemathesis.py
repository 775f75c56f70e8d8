"""schemathesis against the bridge's own /api/openapi.json, on a real loopback server.

Every documented operation gets generated requests, valid by its schemas
(positive) and invalid (negative), authenticated with an API token that has
every scope, then again as a logged-in agent with QA and admin roles
(session cookie + CSRF token). schemathesis' pytest plugin does not run on
pytest 9 (``Function._nodeid`` is gone), so each operation's strategy is
driven by hypothesis directly.
The one check is the issue's: no server errors (5xx). The examples are
bounded and derandomized so the run is repeatable and takes well under two
minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from bridge.openapi import SPEC, operations
from bridge.scopes import ROLES, SCOPES
from tests.bridge_process import BridgeProcess

PASSWORD = "schemathesis password"
MAX_EXAMPLES = 25


async def seed_history(store: Any) -> None:
    """Something for the ids 1, 2, 3 to find: a voice call and a web chat."""
    caller = await store.customer_for("phone", "+15551230001")
    call = await store.open_conversation(caller.id, "voice", call_id="seed-call")
    await store.add_message(call.id, "ivr", "How can we help?")
    await store.add_message(call.id, "customer", "a refill please", confidence=0.9)
    await store.record_event(call.id, "intent", {"intent": "refill"})
    visitor = await store.customer_for("webchat", "seed-visitor")
    chat = await store.open_conversation(visitor.id, "webchat", status="queued")
    await store.add_message(chat.id, "customer", "hello?")


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    process = BridgeProcess(Path(tmp_path_factory.mktemp("bridge")))
    process.seed(seed_history)
    process.add_user("ann", set(ROLES), PASSWORD)
    process.add_user("bob", {"agent"}, PASSWORD)
    process.token = process.add_token("schemathesis", set(SCOPES))  # type: ignore[attr-defined]
    process.start()
    yield process
    process.stop()
    if "Traceback" in process.log_text():
        print(process.log_text()[-4000:])


@pytest.fixture(scope="module")
def token(bridge: BridgeProcess) -> str:
    return str(bridge.token)  # type: ignore[attr-defined]


class Session:
    """A logged-in browser session that logs in again when a generated logout ends it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.csrf = ""
        self.login()

    def login(self) -> None:
        reply = self.http.post(
            f"{self.url}/api/login", json={"name": "ann", "password": PASSWORD}, timeout=10
        )
        reply.raise_for_status()
        self.csrf = reply.json()["csrf_token"]


@pytest.fixture(scope="module")
def api_schema(bridge: BridgeProcess, token: str) -> Any:
    served = requests.get(f"{bridge.url}/api/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(SPEC))  # so the parameters below are what is served
    return schemathesis.openapi.from_url(f"{bridge.url}/api/openapi.json")


@pytest.fixture(scope="module")
def session(bridge: BridgeProcess, token: str) -> Session:
    return Session(bridge.url)


def _cases() -> list[Any]:
    cases = []
    for method, path, operation in operations():
        modes = [GenerationMode.POSITIVE]
        if "parameters" in operation or "requestBody" in operation:
            modes.append(GenerationMode.NEGATIVE)  # nothing to get wrong otherwise
        for mode in modes:
            for auth in ("token", "session"):
                cases.append(
                    pytest.param(
                        method, path, mode, auth, id=f"{method} {path} {mode.value} {auth}"
                    )
                )
    return cases


@pytest.mark.parametrize(("method", "path", "mode", "auth"), _cases())
def test_no_server_errors(
    api_schema: Any,
    bridge: BridgeProcess,
    token: str,
    session: Session,
    method: str,
    path: str,
    mode: GenerationMode,
    auth: str,
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if auth == "token":
            case.call_and_validate(
                base_url=bridge.url,
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error],
            )
            return
        response = case.call_and_validate(
            base_url=bridge.url,
            session=session.http,
            headers={"X-CSRF-Token": session.csrf},
            checks=[not_a_server_error],
        )
        if path == "/api/logout" and response.status_code == 204:
            session.login()  # a generated logout ended our session: open another

    run()
