"""``hotline search`` over a real SQLite store seeded through the Store API."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conversations import SegmentInput, WordInput, open_store
from hotline.cli import build_parser, main
from hotline.search_cli import format_offset, highlight, parse_time, run

NOV_5 = datetime(2026, 11, 5, 10, 0, tzinfo=UTC).timestamp()
OCT_20 = datetime(2026, 10, 20, 15, 30, tzinfo=UTC).timestamp()
NOV_6 = datetime(2026, 11, 6, 9, 0, tzinfo=UTC).timestamp()
CARD_SPOKEN = "four one one one one one one one one one one one one one one one"


class Clock:
    def __init__(self) -> None:
        self.now = OCT_20

    def __call__(self) -> float:
        return self.now


def words(text: str, start_ms: int, step_ms: int = 400) -> tuple[WordInput, ...]:
    return tuple(
        WordInput(word, start_ms + n * step_ms, start_ms + n * step_ms + 300, 0.9)
        for n, word in enumerate(text.split())
    )


def segment(channel: str, text: str, start_ms: int) -> SegmentInput:
    timed = words(text, start_ms)
    speaker = "customer" if channel == "caller" else "agent"
    return SegmentInput(channel, speaker, start_ms, timed[-1].end_ms, timed, 0.9)


async def _call(
    store, clock, *, phone, call_id, started_at, duration_s, queue, agent, intent, segments
):
    clock.now = started_at
    customer = await store.customer_for("phone", phone)
    call = await store.open_conversation(customer.id, "voice", call_id=call_id)
    clock.now = started_at + duration_s
    await store.update_conversation(
        call.id, status="closed", queue=queue, agent=agent, intent=intent
    )
    recording = await store.register_recording(
        call.id,
        call_id,
        f"2026-11-05/{call_id}.wav",
        fmt="wav",
        duration_s=duration_s,
        size_bytes=int(duration_s * 32_000),
        started_at=started_at,
        ended_at=started_at + duration_s,
    )
    job = await store.claim_transcription("test", 60.0)
    assert job is not None and job.recording_id == recording.id
    assert await store.complete_transcription(job.id, job.token, segments)
    return call.id


async def _seed(url: str) -> dict[str, int]:
    clock = Clock()
    async with open_store(url, clock=clock) as store:
        chest = await _call(
            store,
            clock,
            phone="+15551230001",
            call_id="call-chest@pbx",
            started_at=NOV_5,
            duration_s=90.0,
            queue="emergency",
            agent="alice",
            intent="chest_pain",
            segments=[
                segment("agent", "thank you for calling how can i help", 1_000),
                segment("caller", "i have chest pain since this morning", 5_400),
                segment("caller", f"my card is {CARD_SPOKEN}", 20_000),
            ],
        )
        october = await _call(
            store,
            clock,
            phone="+15551230002",
            call_id="call-october@pbx",
            started_at=OCT_20,
            duration_s=300.0,
            queue="nurse_line",
            agent="bob",
            intent="symptoms",
            segments=[segment("caller", "the chest pain came back", 75_000)],
        )
        clock.now = NOV_6
        visitor = await store.customer_for("email", "visitor@example.com")
        chat = await store.open_conversation(visitor.id, "webchat", status="connected")
        await store.add_message(
            chat.id, "customer", "chest pain again, my card is 4111 1111 1111 1111", at=NOV_6
        )
    return {"chest": chest, "october": october, "chat": chat.id}


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"
    return url, asyncio.run(_seed(url))


def search(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["search", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_prints_each_match_with_its_call_time_offset_speaker_and_snippet(store, capsys):
    url, ids = store
    status, out, err = search(capsys, "chest pain", "--store", url, "--utc", "--channel", "voice")
    assert status == 0, err
    assert "call call-chest@pbx" in out and f"conversation {ids['chest']}" in out
    assert "call call-october@pbx" in out
    # The November call: "chest" starts 5,400 + 2 x 400 ms into the recording.
    line = next(line for line in out.splitlines() if "call-chest@pbx" in line)
    assert "2026-11-05 10:00:06" in line and "00:06.2" in line and "customer" in line
    assert "queue emergency" in line and "agent alice" in line
    snippet = out.splitlines()[out.splitlines().index(line) + 1]
    assert re.search(r"\[chest( pain)?\]", snippet), snippet  # not a terminal: brackets
    assert "\x1b[" not in out
    october = next(line for line in out.splitlines() if "call-october@pbx" in line)
    assert "01:15.4" in october  # 75,000 + 400 ms: "the chest"
    assert out.rstrip().endswith("of 2") or "matches 1-2" in out


def test_since_and_until_bound_the_dates(store, capsys):
    url, _ = store
    _, out, _ = search(capsys, "chest pain", "--store", url, "--utc", "--since", "2026-11-01")
    assert "call-chest@pbx" in out and "call-october@pbx" not in out
    # A date alone as --until includes that whole day.
    _, out, _ = search(capsys, "chest", "--store", url, "--utc", "--until", "2026-10-20")
    assert "call-october@pbx" in out and "call-chest@pbx" not in out
    _, out, _ = search(
        capsys, "chest", "--store", url, "--utc", "--since", "2026-10-21", "--until", "2026-11-04"
    )
    assert "no matches" in out


def test_queue_agent_intent_and_duration_filters_reach_the_store(store, capsys):
    url, _ = store
    for flags in (
        ["--queue", "nurse_line"],
        ["--agent", "bob"],
        ["--intent", "symptoms"],
        ["--min-duration", "200"],
    ):
        _, out, _ = search(capsys, "chest", "--store", url, *flags)
        assert "call-october@pbx" in out and "call-chest@pbx" not in out, flags
    voice_under_100_s = ["--channel", "voice", "--max-duration", "100"]
    _, out, _ = search(capsys, "chest", "--store", url, *voice_under_100_s)
    assert "call-chest@pbx" in out and "call-october@pbx" not in out


def test_card_numbers_are_masked_typed_or_spoken(store, capsys):
    url, ids = store
    _, out, _ = search(capsys, "chest", "--store", url, "--channel", "webchat", "--json")
    [hit] = [json.loads(line) for line in out.splitlines()]
    assert hit["conversation_id"] == ids["chat"] and hit["call_id"] is None
    assert hit["kind"] == "message" and hit["offset_ms"] is None and hit["offset"] is None
    assert "4111" not in out and "[card]" in hit["snippet"]
    _, out, _ = search(capsys, "card", "--store", url, "--channel", "voice")
    assert "call-chest@pbx" in out
    assert "four one one" not in out and "[card]" in out


def test_json_lines_for_scripts(store, capsys):
    url, ids = store
    status, out, _ = search(capsys, '"chest pain"', "--store", url, "--json", "--utc")
    assert status == 0
    hits = [json.loads(line) for line in out.splitlines()]
    assert {hit["conversation_id"] for hit in hits} == set(ids.values())
    voice = next(hit for hit in hits if hit["call_id"] == "call-chest@pbx")
    assert voice["offset_ms"] == 6_200 and voice["offset"] == "00:06.2"
    assert voice["speaker"] == "customer" and voice["channel"] == "voice"
    assert voice["at_text"] == "2026-11-05 10:00:06"
    assert voice["queue"] == "emergency" and voice["agent"] == "alice"
    assert voice["recording_id"] is not None and voice["kind"] == "transcript"
    assert "chest" in " ".join(voice["matches"])
    assert voice["snippet"] == "".join(text for text, _ in voice["fragments"])


def test_matches_are_bold_on_a_terminal(store):
    url, _ = store

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    args = build_parser().parse_args(["search", "chest", "--store", url])
    assert run(args, out=out, err=io.StringIO()) == 0
    assert "\x1b[1m" in out.getvalue() and "[chest]" not in out.getvalue()


def test_limit_and_offset_page_through(store, capsys):
    url, _ = store
    _, first, _ = search(capsys, "chest", "--store", url, "--limit", "1", "--json")
    _, second, _ = search(capsys, "chest", "--store", url, "--limit=1", "--offset=1", "--json")
    assert len(first.splitlines()) == 1 and len(second.splitlines()) == 1
    assert first != second


def test_bad_query_syntax_exits_2(store, tmp_path, capsys):
    url, _ = store
    status, out, err = search(capsys, "(chest pain", "--store", url)
    assert status == 2 and out == ""
    assert err.startswith("hotline search: bad query:") and "(" in err
    # Found before any store is opened.
    status, _, err = search(capsys, "refund OR", "--store", f"sqlite:///{tmp_path / 'no.db'}")
    assert status == 2 and err.startswith("hotline search: bad query:")


def test_a_filter_the_store_refuses_exits_2(store, capsys):
    url, _ = store
    status, _, err = search(capsys, "chest", "--store", url, "--limit", "100000")
    assert status == 2 and err.startswith("hotline search: ") and "limit" in err


@pytest.mark.parametrize(
    "flags",
    [
        ["--since", "yesterday"],
        ["--until", "2026-13-01"],
        ["--since", "2026-11-02", "--until", "2026-11-01"],
        ["--limit", "0"],
        ["--min-duration", "-5"],
    ],
)
def test_bad_flags_exit_2_before_opening_the_store(tmp_path, capsys, flags):
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    status, _, err = search(capsys, "chest", "--store", missing, *flags)
    assert status == 2 and err.startswith("hotline search: ")
    assert not (tmp_path / "nothing.db").exists()
    if "--since" in flags and "yesterday" in flags:
        assert "YYYY-MM-DD" in err


def test_a_missing_store_is_not_created(tmp_path, capsys):
    status, _, err = search(capsys, "chest", "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert status == 1 and "no store at" in err
    assert not (tmp_path / "none.db").exists()


def test_the_store_of_a_config_file(store, tmp_path, capsys):
    url, _ = store
    site = tmp_path / "site.yaml"
    site.write_text(f"data_dir: {tmp_path / 'var'}\n")
    status, out, err = search(capsys, "chest", "--config", str(site))
    assert status == 0, err
    assert "call-chest@pbx" in out
    broken = tmp_path / "broken.yaml"
    broken.write_text("data_dir: [\n")
    status, _, err = search(capsys, "chest", "--config", str(broken))
    assert status == 2 and "configuration error" in err


@pytest.mark.parametrize(
    ("offset_ms", "text"),
    [
        (None, "-"),
        (0, "00:00.0"),
        (6_200, "00:06.2"),
        (75_449, "01:15.4"),
        (59_960, "01:00.0"),
        (3_725_000, "1:02:05.0"),
    ],
)
def test_format_offset(offset_ms, text):
    assert format_offset(offset_ms) == text


def test_parse_time():
    assert parse_time("2026-11-01", utc=True) == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    end = parse_time("2026-11-01", end_of_day=True, utc=True)
    assert end == datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-01T08:00+01:00") == datetime(2026, 11, 1, 7, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-01 08:00:30", utc=True) == (
        datetime(2026, 11, 1, 8, 0, 30, tzinfo=UTC).timestamp()
    )


def test_highlight_keeps_snippets_on_one_line_and_inert():
    fragments = (("say \x1b[2J", False), ("chest\npain", True), ("\tnow", False))
    assert highlight(fragments, ansi=False) == "say [2J[chest pain] now"
    assert highlight(fragments, ansi=True) == "say [2J\x1b[1mchest pain\x1b[0m now"
