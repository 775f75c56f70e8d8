"""A customer chats on /chat, an agent on /agent takes it and replies, and opens the
same customer's earlier voice call with its IVR transcript.

The earlier call is real: ``hotline call --from NUMBER --say ...`` dials the
running ``hotline serve`` (speech IVR on), which writes the call into the
conversation store (IVR prompts and the caller's recognised words as messages,
the call's events). The chat customer then gives the same phone number.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.bridge_process import BridgeProcess
from tests.integration.helpers import HotlineProcess, hotline_command

PASSWORD = "agent password 1"
PHONE = "+15551230001"
TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class EarlierCall:
    """What the agent should find of the customer's voice call."""

    phone: str
    transcript: tuple[str, ...]  # the IVR's first prompt, then what the caller said
    intent: str


@dataclass(frozen=True)
class Server:
    """The running hotline, as the browser sees it."""

    url: str
    process: HotlineProcess


def earlier_voice_call(server: HotlineProcess, phone: str) -> EarlierCall:
    """The customer phones the hotline with ``hotline call`` and asks for a refill."""
    command = hotline_command() + [
        "call", f"sip:hotline@127.0.0.1:{server.sip_port}",
        "--from", phone, "--say", "I need a prescription refill", "--say", "yes",
        "--api", f"http://127.0.0.1:{server.http_port}", "--timeout", "90",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["queue"] == "pharmacy", result
    return EarlierCall(phone, (result["prompts"][0], result["transcript"][0]), result["intent"])


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, EarlierCall]]:
    workdir = tmp_path_factory.mktemp("hotline")
    # The agent's account goes into the server's store (DATA_DIR/hotline.db) first.
    BridgeProcess(workdir / "data").add_user("ann", {"agent"}, PASSWORD)
    process = HotlineProcess(workdir, ivr=True, log_level="info")
    process.start(ready_timeout_s=120.0)
    try:
        call = earlier_voice_call(process, PHONE)
        yield Server(f"http://127.0.0.1:{process.http_port}", process), call
    finally:
        process.stop()
    assert "Traceback" not in process.log_text(), process.log_text()[-3000:]


def test_customer_chats_agent_replies_and_sees_the_voice_call(
    browser: Any, bridge: tuple[Server, EarlierCall]
) -> None:
    from playwright.sync_api import expect

    server, call = bridge
    errors: list[str] = []
    customer_context = browser.new_context()
    agent_context = browser.new_context()  # its own cookies: another person
    customer = customer_context.new_page()
    agent = agent_context.new_page()
    for page in (customer, agent):
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
    try:
        # The agent logs in and is available.
        agent.goto(f"{server.url}/agent")
        agent.get_by_label("User name").fill("ann")
        agent.get_by_label("Password").fill(PASSWORD)
        agent.get_by_role("button", name="Log in").click()
        expect(agent.get_by_text("Nobody is waiting.")).to_be_visible(timeout=TIMEOUT_MS)
        agent.get_by_label("My state").select_option("available")
        expect(agent.locator("#connection")).to_have_text("Live", timeout=TIMEOUT_MS)

        # The customer says who they are (the phone of the earlier call), then writes.
        customer.goto(f"{server.url}/chat")
        expect(customer.locator("#connection")).to_have_text("Connected", timeout=TIMEOUT_MS)
        customer.get_by_text("Tell us who you are").click()
        customer.get_by_label("Name").fill("Ann Caller")
        customer.get_by_label("Phone number").fill("(555) 123-0001")
        customer.get_by_role("button", name="Save").click()
        expect(customer.get_by_text("Thank you, saved.")).to_be_visible(timeout=TIMEOUT_MS)
        customer.get_by_label("Your message").fill("Hello, did my refill go through?")
        customer.get_by_role("button", name="Send").click()
        expect(customer.locator("#messages")).to_contain_text(
            "Hello, did my refill go through?", timeout=TIMEOUT_MS
        )
        expect(customer.locator("#chat-status")).to_have_text(
            "Waiting for an agent…", timeout=TIMEOUT_MS
        )

        # The agent sees the waiting chat appear live, takes it and replies.
        take = agent.get_by_role("button", name=re.compile(r"Take chat #\d+"))
        expect(take).to_be_visible(timeout=TIMEOUT_MS)
        take.click()
        expect(agent.locator("#messages")).to_contain_text(
            "Hello, did my refill go through?", timeout=TIMEOUT_MS
        )
        agent.get_by_label("Reply").fill("Yes, it is ready for pick-up.")
        agent.get_by_role("button", name="Send").click()

        # The customer sees the reply, and who is answering.
        expect(customer.locator("#messages")).to_contain_text(
            "Yes, it is ready for pick-up.", timeout=TIMEOUT_MS
        )
        expect(customer.locator("#chat-status")).to_have_text(
            "ann is chatting with you.", timeout=TIMEOUT_MS
        )

        # The agent opens the same customer's earlier voice call: its IVR transcript.
        expect(agent.locator("#identities")).to_contain_text(f"phone: {call.phone}")
        history = agent.locator("#history")
        voice = history.get_by_role("button", name=re.compile(r"Voice call #\d+"))
        expect(voice).to_contain_text(call.intent, timeout=TIMEOUT_MS)
        voice.click()
        expect(agent.locator("#conversation-title")).to_contain_text("Voice call")
        for line in call.transcript:
            expect(agent.locator("#messages")).to_contain_text(line, timeout=TIMEOUT_MS)
        expect(agent.locator("#messages li.ivr").first).to_contain_text(call.transcript[0])
        expect(agent.locator("#messages li.customer").first).to_contain_text(
            re.compile(r"confidence [01]\.\d\d")
        )
        expect(agent.locator("#events")).to_contain_text("intent")
        expect(agent.locator("#reply-form")).to_be_hidden()  # no typing into a call
    finally:
        customer_context.close()
        agent_context.close()
    # The agent page asks /api/me before logging in: that 401 is the expected answer.
    unexpected = [e for e in errors if "status of 401" not in e]
    assert unexpected == []


def test_wrong_password_is_shown_and_closing_ends_the_customers_chat(
    browser: Any, bridge: tuple[Server, EarlierCall]
) -> None:
    from playwright.sync_api import expect

    server, _ = bridge
    customer_context = browser.new_context()
    agent_context = browser.new_context()
    customer = customer_context.new_page()
    agent = agent_context.new_page()
    try:
        agent.goto(f"{server.url}/agent")
        agent.get_by_label("User name").fill("ann")
        agent.get_by_label("Password").fill("not the password")
        agent.get_by_role("button", name="Log in").click()
        expect(agent.get_by_role("alert")).to_have_text("wrong name or password")
        agent.get_by_label("Password").fill(PASSWORD)
        agent.get_by_role("button", name="Log in").click()
        expect(agent.locator("#connection")).to_have_text("Live", timeout=TIMEOUT_MS)

        customer.goto(f"{server.url}/chat")
        customer.get_by_label("Your message").fill("Are you there?")
        customer.get_by_role("button", name="Send").click()
        agent.get_by_role("button", name=re.compile(r"Take chat #\d+")).click()
        expect(agent.locator("#messages")).to_contain_text("Are you there?")
        agent.get_by_role("button", name="Close chat").click()
        expect(customer.locator("#chat-status")).to_have_text(
            "This chat has ended. Write again to start a new one.", timeout=TIMEOUT_MS
        )
        expect(agent.locator("#reply-form")).to_be_hidden()

        # Logging out ends the session on the server: a reload shows the login form.
        agent.get_by_role("button", name="Log out").click()
        expect(agent.get_by_label("User name")).to_be_visible()
        agent.reload()
        expect(agent.get_by_label("User name")).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        customer_context.close()
        agent_context.close()
