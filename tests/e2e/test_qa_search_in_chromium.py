"""Issue 7 acceptance: the QA page in headless Chromium searches, opens the result, and the
audio element's current time is at the match; clicking a transcript word seeks to it.

The bridge is a real process (``python -m bridge --recordings-dir``) over a store
seeded as the server leaves a finished call (``tests/unit/bridge/qa_fixtures``):
a real stereo WAV under the recordings root, registered, transcribed with timed
words on both channels (the caller reads out a card number), and a web chat in
which the customer types one. The player fetches the audio with HTTP Range
requests, and the many requests of one listening make one audit entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.bridge_process import BridgeProcess
from tests.unit.bridge.qa_fixtures import AGENT_REPLY, SeededCalls, seed_calls

pytestmark = pytest.mark.timeout(120)

PASSWORD = "qa page password"
TIMEOUT_MS = 10_000
TOLERANCE_S = 0.5


@dataclass(frozen=True)
class Site:
    """The running bridge and what its store holds."""

    url: str
    process: BridgeProcess
    seeded: SeededCalls


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("qa")
    recordings = workdir / "recordings"
    process = BridgeProcess(workdir / "data", recordings_dir=recordings)
    seeded = process.seed(lambda store: seed_calls(store, recordings))
    process.add_user("quinn", {"qa"}, PASSWORD)
    process.start()
    try:
        yield Site(process.url, process, seeded)
    finally:
        process.stop()
    assert "Traceback" not in process.log_text(), process.log_text()[-3000:]


def player_time_near(page: Any, seconds: float) -> None:
    """Wait until the player knows its audio and stands within the tolerance of ``seconds``."""
    page.wait_for_function(
        """([target, tolerance]) => {
            const player = document.getElementById("player");
            return player.readyState >= 1 && Math.abs(player.currentTime - target) < tolerance;
        }""",
        arg=[seconds, TOLERANCE_S],
        timeout=TIMEOUT_MS,
    )


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/qa")
    page.get_by_label("User name").fill("quinn")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def plays(process: BridgeProcess) -> list[Any]:
    async def read(store: Any) -> list[Any]:
        return [e for e in await store.audit_log(limit=1000) if e.action == "recording.play"]

    return list(process.seed(read))


def test_search_opens_the_call_at_the_match_and_words_seek(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    audio_statuses: list[int] = []
    context = browser.new_context()
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.on(
        "response",
        lambda response: (
            audio_statuses.append(response.status)
            if re.search(r"/api/recordings/\d+/audio$", response.url)
            else None
        ),
    )
    try:
        log_in(page, site.url)
        page.get_by_label("Search", exact=True).fill("refund")
        page.get_by_role("button", name="Search", exact=True).click()
        results = page.locator("#results li")
        expect(results).to_have_count(2, timeout=TIMEOUT_MS)  # the call and the chat
        expect(page.locator("#results mark").first).to_have_text(re.compile("refund", re.I))

        # The caller's words: the player opens at "refund", the transcript beside it.
        caller_hit = results.filter(has_text="my order")
        caller_hit.get_by_role("button", name=re.compile(r"Voice call #\d+")).click()
        expect(page.locator("#review-title")).to_have_text(f"Voice call #{site.seeded.voice_id}")
        player_time_near(page, site.seeded.refund.start_ms / 1000)
        transcript = page.locator("#transcript")
        expect(transcript.locator("li.caller").first).to_contain_text("Caller")
        expect(transcript.locator("li.agent").first).to_contain_text("Agent")
        expect(transcript).to_contain_text("[card]")
        expect(transcript).not_to_contain_text("one one one")

        # A word of the agent's channel seeks the player to where it starts.
        first_agent_word = AGENT_REPLY[0]
        transcript.locator("li.agent button.word", has_text=first_agent_word.text).click()
        player_time_near(page, first_agent_word.start_ms / 1000)
        page.locator("#transcript li.caller button.word", has_text="hello").click()
        player_time_near(page, 1.0)

        # The chat result shows its messages, the typed card masked, and no player.
        results.filter(has_text="charge").get_by_role(
            "button", name=re.compile(r"Web chat #\d+")
        ).click()
        expect(page.locator("#review-title")).to_have_text(f"Web chat #{site.seeded.chat_id}")
        expect(page.locator("#chat-messages")).to_contain_text("[card]")
        expect(page.locator("#chat-messages")).not_to_contain_text("4111")
        expect(page.locator("#player")).to_be_hidden()
    finally:
        context.close()
    assert 206 in audio_statuses, audio_statuses  # the player asked for byte ranges
    # The page asks /api/me before logging in: that 401 is the expected answer.
    assert [e for e in errors if "status of 401" not in e] == []
    entries = plays(site.process)
    assert [(e.actor, e.target) for e in entries] == [
        ("quinn", f"recording:{site.seeded.recording_id}")
    ]


def test_a_result_link_opens_the_call_at_the_match(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, site.url)
        expect(page.get_by_label("Search", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
        seeded = site.seeded
        page.goto(
            f"{site.url}/qa?conversation={seeded.voice_id}&recording={seeded.recording_id}"
            f"&offset_ms={seeded.agent_word.start_ms}"
        )
        expect(page.locator("#review-title")).to_have_text(f"Voice call #{seeded.voice_id}")
        player_time_near(page, seeded.agent_word.start_ms / 1000)
    finally:
        context.close()


def test_a_bad_query_shows_the_parsers_message(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, site.url)
        page.get_by_label("Search", exact=True).fill('"refund')
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.locator("#search-error")).not_to_be_empty(timeout=TIMEOUT_MS)
        expect(page.locator("#results li")).to_have_count(0)
    finally:
        context.close()
