"""A fake clock for the asyncio shell: an event loop whose time is virtual.

``VirtualClockLoop`` is a real selector loop with real sockets, but when it
would block waiting for a timer it jumps its clock to that timer instead. UDP on
loopback is delivered during ``sendto``, so datagrams are seen on the next poll
and "200 ms of loop time" runs in a few milliseconds, deterministically.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Iterator
from typing import Any

import pytest


class _VirtualTimeSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing is scheduled: only I/O can wake the loop. Wait briefly for
            # real, and fail loudly rather than hang a test that forgot a timer.
            ready = super().select(1.0)
            if not ready:
                raise RuntimeError("virtual clock loop: no timer scheduled and no I/O arrived")
            return ready
        self.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop that never sleeps: idle time is skipped over."""

    def __init__(self) -> None:
        self._virtual = _VirtualTimeSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward, as if the loop had been blocked that long."""
        self._virtual.now += seconds


@pytest.fixture
def virtual_loop() -> Iterator[VirtualClockLoop]:
    loop = VirtualClockLoop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
