"""The child of test_crash: a stream of writes, each printed once acknowledged.

Usage: ``python crash_writer.py STORE_URL``. Prints ``conversation ID`` first,
then, for ever, ``event N`` when record_event's future for event N resolved and
``message N`` when add_message for message N returned: each line is written
(unbuffered) only after that write's commit. The parent kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from conversations import open_store  # noqa: E402

EVENTS_PER_MESSAGE = 40


def say(line: str) -> None:
    os.write(1, f"{line}\n".encode())  # one write(2) per line: a line is whole or absent


def acknowledge(number: int, future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is None:
        say(f"event {number}")


async def main(url: str) -> None:
    store = open_store(url)
    await store.start()
    customer = await store.customer_for("account", "crash-test")
    conversation = await store.open_conversation(customer.id, "voice")
    say(f"conversation {conversation.id}")
    number = 0
    while True:
        for _ in range(EVENTS_PER_MESSAGE):
            number += 1
            future = store.record_event(conversation.id, "seq", {"n": number})
            future.add_done_callback(lambda done, n=number: acknowledge(n, done))
        await store.add_message(conversation.id, "customer", f"message {number}")
        say(f"message {number}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
