"""Issue 6 acceptance: a queued caller rings an agent's softphone, and the agent's page
pops up who calls, why, what they told the IVR and their earlier conversations.

Everything is real and on loopback: ``hotline serve`` with the speech IVR and one
agent, alice (skill and queue ``pharmacy``); alice's softphone is a pjsua2 phone
(``agent_phones.py``) that rings without answering until told to; the caller is
``hotline call --say ...`` from the customer's number; alice's page is headless
Debian Chromium. The customer already called three days ago (a conversation put
into the store before the server starts, through the store's own clock), so the
pop has a history.

While the phone rings the pop is shown; when alice pauses, routing withdraws the
offer (``call.cancel``) and the pop goes; when she is available again the call
rings again and pops again; once she answers (``call.event`` ``connected``) the pop
stays, through the hang-up.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.auth import hash_password
from conversations import open_store
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.integration.helpers import (
    LOOPBACK,
    AgentPhones,
    HotlineProcess,
    header_value,
    hotline_command,
    phone_spec,
)

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("pjsua2") is None,
        reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
    ),
    pytest.mark.timeout(180),
]

CUSTOMER_PHONE = "+15551230001"
CUSTOMER_NAME = "Ann Caller"
AGENT_PASSWORD = "alice page password"  # the page's login (store user)
SIP_PASSWORD = "alice-pw"  # the softphone's digest password (site config)
EARLIER_DAYS = 3
TALK_S = 1.0
TIMEOUT_MS = 10_000
RING_S = 60.0  # the IVR's greeting, the caller's words and its read-back first
SITE_YAML = f"""
agents:
  - {{username: alice, password: {SIP_PASSWORD}, skills: {{pharmacy: 5}}, queues: [pharmacy]}}
routing:
  queues:
    - {{name: pharmacy, ring_timeout_s: 20, wrap_up_s: 0}}
"""
# The recognizer may miss a word; one of these two must come through.
CALLER_WORDS = re.compile(r"refill|prescription", re.IGNORECASE)


@dataclass(frozen=True)
class EarlierCall:
    """The customer's voice call of three days ago, as the store has it."""

    conversation_id: int
    started_at: float


async def seed_store(data_dir: Path) -> EarlierCall:
    """Alice's login and the customer's earlier call, written before the server starts."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    earlier = time.time() - EARLIER_DAYS * 86_400.0
    async with open_store(f"sqlite:///{data_dir}/hotline.db", clock=lambda: earlier) as store:
        await store.add_user("alice", {"agent"}, hash_password(AGENT_PASSWORD))
        customer = await store.customer_for("phone", CUSTOMER_PHONE, CUSTOMER_NAME)
        call = await store.open_conversation(customer.id, "voice", call_id="earlier@test")
        await store.add_message(call.id, "customer", "Is my prescription ready?")
        await store.update_conversation(
            call.id, status="closed", intent="pharmacy", queue="pharmacy", agent="alice"
        )
    return EarlierCall(call.id, earlier)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[HotlineProcess, EarlierCall]]:
    workdir = tmp_path / "hotline"
    earlier = await seed_store(workdir / "data")
    async with HotlineProcess(workdir, ivr=True, config_yaml=SITE_YAML).serving() as process:
        yield process, earlier


@pytest.fixture
async def phones(
    tmp_path: Path, server: tuple[HotlineProcess, EarlierCall]
) -> AsyncIterator[AgentPhones]:
    """Alice's softphone, registered; it rings until told to answer."""
    made = AgentPhones(
        server[0].sip_port,
        [phone_spec("alice", SIP_PASSWORD, behaviour="ignore")],
        tmp_path / "phones",
        max_lifetime_s=150.0,
    )
    try:
        yield await made.start()
    finally:
        await made.stop()


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    """A headless Chromium page; no page errors may happen in it."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian package chromium; `make test` installs it)")
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            made = await browser.new_page()
            errors: list[str] = []
            made.on("pageerror", lambda error: errors.append(str(error)))
            yield made
            assert errors == []
        finally:
            await browser.close()


async def place_call(server: HotlineProcess) -> asyncio.subprocess.Process:
    """``hotline call``: the customer asks for a refill, confirms, and waits for an agent."""
    return await asyncio.create_subprocess_exec(
        *hotline_command(), "call", f"sip:hotline@{LOOPBACK}:{server.sip_port}",
        "--from", CUSTOMER_PHONE, "--say", "I need a prescription refill", "--say", "yes",
        "--api", f"http://{LOOPBACK}:{server.http_port}", "--stay", "40", "--timeout", "90",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def first_ring(phones: AgentPhones, caller: asyncio.subprocess.Process) -> dict[str, Any]:
    """Alice's phone rings; if it does not, what ``hotline call`` printed says why."""
    ring = asyncio.ensure_future(phones.expect("incoming", account="alice", timeout_s=RING_S))
    ended = asyncio.ensure_future(caller.wait())
    await asyncio.wait([ring, ended], return_when=asyncio.FIRST_COMPLETED)
    ended.cancel()
    if ring.done() and ring.exception() is None:
        return ring.result()
    ring.cancel()
    if caller.returncode is None:
        caller.kill()
    out, err = await caller.communicate()
    raise AssertionError(
        f"alice's phone did not ring; hotline call exited {caller.returncode}:\n"
        f"{out.decode(errors='replace')[-2000:]}\n{err.decode(errors='replace')[-3000:]}\n"
        f"{phones.describe()[-3000:]}"
    )


async def caller_result(caller: asyncio.subprocess.Process) -> dict[str, Any]:
    """What ``hotline call`` printed: the IVR's outcome as the caller saw it."""
    try:
        out, err = await asyncio.wait_for(caller.communicate(), 15.0)
    except TimeoutError:
        caller.kill()
        await caller.wait()
        raise AssertionError("hotline call did not end after the agent hung up") from None
    assert caller.returncode == 0, err.decode(errors="replace")[-3000:]
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def conversation_of(invite: dict[str, Any]) -> int:
    """The conversation the INVITE's ``Call-Info`` links to."""
    call_info = header_value(invite["headers"], "Call-Info") or ""
    found = re.search(r"/api/conversations/(\d+)>", call_info)
    assert found, f"no conversation link in Call-Info {call_info!r}"
    return int(found.group(1))


async def test_a_ringing_call_pops_up_who_calls_and_why_and_stays_once_answered(
    server: tuple[HotlineProcess, EarlierCall], phones: AgentPhones, page: Any
) -> None:
    from playwright.async_api import expect

    hotline, earlier = server
    pop = page.get_by_test_id("screen-pop")
    state = page.get_by_test_id("screen-pop-state")

    # Alice logs into her page; it is live, and nothing pops yet.
    await page.goto(f"http://{LOOPBACK}:{hotline.http_port}/agent")
    await page.get_by_label("User name").fill("alice")
    await page.get_by_label("Password").fill(AGENT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#connection")).to_have_text("Live", timeout=TIMEOUT_MS)
    await page.get_by_label("My state").select_option("available")
    await expect(pop).to_be_hidden()

    caller = await place_call(hotline)
    try:
        # The IVR queues the caller in pharmacy; alice's softphone rings, and her page pops.
        ring = await first_ring(phones, caller)
        conversation_id = conversation_of(ring)
        await expect(pop).to_be_visible(timeout=TIMEOUT_MS)
        await expect(state).to_have_text("Ringing on your phone")
        await expect(page.locator("#screen-pop-title")).to_have_text(f"Call from {CUSTOMER_NAME}")
        await expect(page.get_by_test_id("screen-pop-caller")).to_contain_text(CUSTOMER_PHONE)
        await expect(page.get_by_test_id("screen-pop-intent")).to_contain_text("pharmacy")
        await expect(page.get_by_test_id("screen-pop-intent")).to_contain_text(
            re.compile(r"confidence [01]\.\d\d")
        )
        await expect(page.get_by_test_id("screen-pop-queue")).to_have_text("pharmacy")
        words = page.get_by_test_id("screen-pop-words")
        await expect(words).to_contain_text(CALLER_WORDS)
        # The caller's lines of the dialogue, each with the recognizer's confidence.
        await expect(words.locator("li").first).to_contain_text(re.compile(r"\([01]\.\d\d\)"))

        # The history: the call of three days ago (not this one), with its day.
        history = page.get_by_test_id("screen-pop-history").locator("li")
        await expect(history).to_have_count(1)
        earlier_day = await page.evaluate(
            "(seconds) => new Date(seconds * 1000).toLocaleDateString()", earlier.started_at
        )
        entry = history.first
        await expect(entry).to_contain_text(f"Voice call #{earlier.conversation_id}")
        await expect(entry).to_contain_text(earlier_day)
        await expect(entry).to_contain_text("closed · pharmacy")

        # The pop opens this call's conversation: the caller's words, as the IVR heard them.
        await page.get_by_test_id("screen-pop-open").click()
        await expect(page.locator("#conversation-title")).to_have_text(
            f"Voice call #{conversation_id}", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#messages li.customer").first).to_contain_text(CALLER_WORDS)
        # ...and the history entry opens the earlier one.
        await entry.get_by_role("button").click()
        await expect(page.locator("#conversation-title")).to_have_text(
            f"Voice call #{earlier.conversation_id}", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#messages")).to_contain_text("Is my prescription ready?")

        # Alice pauses: routing withdraws the offer (call.cancel) and the pop goes.
        await page.get_by_label("My state").select_option("paused")
        await phones.expect("cancelled", call=ring["call"], timeout_s=5.0)
        await expect(pop).to_be_hidden(timeout=TIMEOUT_MS)

        # Available again: the waiting call rings her again and pops again.
        await page.get_by_label("My state").select_option("available")
        ring = await phones.expect("incoming", account="alice", timeout_s=10.0)
        await expect(pop).to_be_visible(timeout=TIMEOUT_MS)
        await expect(state).to_have_text("Ringing on your phone")

        # She answers on the softphone: connected, and the pop stays.
        await phones.answer(ring["call"])
        await phones.expect("answered", call=ring["call"], timeout_s=5.0)
        await expect(state).to_have_text("Connected", timeout=TIMEOUT_MS)
        await expect(pop).to_be_visible()
        await expect(page.get_by_test_id("screen-pop-queue")).to_have_text("pharmacy")
        # They talk a moment. (agent_phones.py cannot hang up a call whose media started
        # a few ms before: stopTransmit raises in its finish_media and no event follows.)
        await asyncio.sleep(TALK_S)
        await expect(pop).to_be_visible()

        # She hangs up: the caller's side ends, the pop says so and stays for wrap-up.
        await phones.hangup(ring["call"])
        await phones.expect("disconnected", call=ring["call"], timeout_s=5.0)
        result = await caller_result(caller)
        await expect(state).to_have_text("Call ended", timeout=TIMEOUT_MS)
        await expect(pop).to_be_visible()
        await page.get_by_role("button", name="Dismiss").click()
        await expect(pop).to_be_hidden()
    finally:
        if caller.returncode is None:
            caller.kill()
            await caller.wait()

    assert result["queue"] == "pharmacy", result
    assert CALLER_WORDS.search(" ".join(result["transcript"])), result
