"""Test helpers for the sans-IO SIP cores: a hand-moved clock and output filters."""

from __future__ import annotations

from typing import TypeVar

from sip.transaction_events import Output, Transmit
from sip.transaction_layer import TransactionLayer

T = TypeVar("T")


class FakeClock:
    """A clock that only moves when the test says so.

    ``run`` fires a layer's timers at their exact deadlines, as the asyncio shell
    would, and returns every output stamped with the time it came out.
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def run(self, layer: TransactionLayer, until: float) -> list[tuple[float, Output]]:
        """Advance to ``until``, calling ``on_timer`` at each deadline on the way."""
        events: list[tuple[float, Output]] = []
        while (deadline := layer.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            events += [(self.now, output) for output in layer.on_timer(self.now)]
        self.now = until
        return events


def of_type(outputs: list[Output], kind: type[T]) -> list[T]:
    """The outputs of one type, in order."""
    return [output for output in outputs if isinstance(output, kind)]


def timed(events: list[tuple[float, Output]], kind: type[T]) -> list[tuple[float, T]]:
    """The timed outputs of one type, in order."""
    return [(at, output) for at, output in events if isinstance(output, kind)]


def transmit_times(events: list[tuple[float, Output]]) -> list[float]:
    """When each ``Transmit`` went out."""
    return [at for at, _ in timed(events, Transmit)]


def first_line(data: bytes) -> str:
    """The start line of serialized message bytes."""
    return data.split(b"\r\n", 1)[0].decode()


def gaps(times: list[float]) -> list[float]:
    """The intervals between consecutive times."""
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
