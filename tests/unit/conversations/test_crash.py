"""Acknowledged means committed: SIGKILL in the middle of a stream of writes loses
none of the writes the killed process had been told were done."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conversations import open_store
from conversations.operations import Query

CHILD = Path(__file__).with_name("crash_writer.py")
ACKS_BEFORE_KILL = 3000


async def test_sigkill_mid_stream_loses_no_acknowledged_write(store_url: str):
    # A plain Popen read synchronously: this test's loop has nothing else to run,
    # and asyncio's subprocess transport can reap a killed child before its watcher.
    acked, conversation_id = _run_and_kill(store_url)

    store = open_store(store_url)
    await store.start()
    try:
        stored_events = {event.data["n"] for event in await store.events(conversation_id)}
        stored_messages = {
            int(message.text.split()[1]) for message in await store.messages(conversation_id)
        }
        if store.dialect == "sqlite":
            [[check]] = await store._transaction(_integrity_check())
            assert check == "ok"
    finally:
        await store.close()
    assert acked["event"] - stored_events == set()
    assert acked["message"] - stored_messages == set()
    assert len(stored_events) >= len(acked["event"]) >= ACKS_BEFORE_KILL


def _run_and_kill(store_url: str) -> tuple[dict[str, set[int]], int]:
    """Start the writer, SIGKILL it mid-stream; its acknowledgements and conversation."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), store_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    acked: dict[str, set[int]] = {"event": set(), "message": set()}
    conversation_id = 0
    deadline = time.monotonic() + 120
    try:
        while len(acked["event"]) < ACKS_BEFORE_KILL or len(acked["message"]) < 10:
            assert time.monotonic() < deadline, "the writer did not get that far"
            line = child.stdout.readline()
            assert line, child.stderr.read().decode()
            kind, number = line.decode().split()
            if kind == "conversation":
                conversation_id = int(number)
            else:
                acked[kind].add(int(number))
        child.send_signal(signal.SIGKILL)  # the stream is still running: writes are in flight
        # Lines printed before the kill are acknowledgements too; a partial line
        # cannot occur (one write(2) each), but only whole lines count anyway.
        for line in child.stdout.read().decode().splitlines(keepends=True):
            if line.endswith("\n"):
                kind, number = line.split()
                acked[kind].add(int(number))
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    return acked, conversation_id


def _integrity_check():
    return (yield Query("PRAGMA integrity_check"))
