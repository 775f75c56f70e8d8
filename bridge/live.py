"""What the running server tells the bridge: the ``Live`` protocol, and ``StaticLive``.

The bridge never reaches into the SIP or media objects; the composition root
(``hotline.server``) implements ``Live`` and the bridge only calls its
methods, on the event loop, so each must return at once without I/O (``phone``
is a coroutine: applying a browser's SDP answer awaits aiortc, never the network).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["PHONE_UNAVAILABLE", "Live", "StaticLive", "empty_metrics"]

PHONE_UNAVAILABLE = "calls in the browser are not available on this server"


class Live(Protocol):
    """The server's live state, as the bridge reads it."""

    def status(self) -> dict[str, Any]:
        """What ``GET /health`` returns.

        At least ``{"status": "ok" | "draining" | ...}``; anything else is passed
        through (``HotlineServer.status`` adds calls, registrations, media, sip
        and ivr counters). Any status but ``"ok"`` makes /health answer 503.
        """
        ...

    def call_outcome(self, call_id: str) -> dict[str, Any] | None:
        """The IVR outcome of a live or recently ended call, or None if unknown.

        Served as is at ``GET /api/calls/{call_id}/ivr`` (``ivr.outcome`` JSON:
        transcript, intent, confidence, queue, decision latency, prompts, attempts).
        """
        ...

    def metrics(self) -> dict[str, Any]:
        """Live figures for ``/metrics``.

        Exactly this shape::

            {
                "active_calls": int,                 # calls up now (any state)
                "calls_by_state": {str: int},        # e.g. {"ivr": 3, "queued": 2,
                                                     #  "connected": 5}
                "queues": {str: {"length": int,      # calls waiting in that queue
                                 "oldest_wait_s": float}},  # 0.0 when empty
                "asr_latency_ms": {"p50": float,     # finish of speech -> final
                                   "p95": float},    # NaN when no final yet
                "packet_loss_ratio": float,          # lost / expected, 0..1, RTP in
                "jitter_ms": float,                  # mean interarrival jitter
                                                     # (RFC 3550 §6.4.1) over calls
                "tick_overruns": int,                # media ticks that ran late,
                                                     # since start (a counter)
            }

        A key that is missing is simply not exported.
        """
        ...

    def queues(self) -> list[dict[str, Any]]:
        """The queues for ``GET /api/queues``.

        A list of ``{"name": str, "length": int, "oldest_wait_s": float,
        "agents_available": int}``, one per configured queue (empty ones too).
        """
        ...

    def agent_state(self, agent: str, state: str, reason: str | None) -> dict[str, Any] | None:
        """An agent chose ``available``, ``paused`` (with a reason) or ``offline``.

        Returns routing's view of the agent afterwards (``{"state": str,
        "reason": str | None}``), or None when this server does not route calls
        to that agent.

        Raises:
            ValueError: the state cannot be taken now (e.g. available with no phone).
        """
        ...

    def agents(self) -> dict[str, dict[str, Any]]:
        """Routing's view of every agent it routes to: name -> ``{"state", "reason", ...}``."""
        ...

    def chat_waiting(self, conversation_id: int) -> None:
        """A new text chat waits for an agent: routing offers it (``chat.offer`` to one agent)."""
        ...

    def chat_taken(self, conversation_id: int, agent: str) -> None:
        """An agent took a chat (offered to them or not): it leaves the queue."""
        ...

    def chat_ended(self, conversation_id: int) -> None:
        """A chat was closed: the agent's chat slot is free again."""
        ...

    async def phone(self, agent: str, page: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """A message from the phone of one agent page (``/ws/agent``, shape already checked).

        ``message`` is one of ``{"type": "phone.ready"}``, ``{"type": "phone.off"}``,
        ``{"type": "call.answer", "call_id": str, "sdp": str}``,
        ``{"type": "call.reject", "call_id": str}`` or
        ``{"type": "call.hangup", "call_id": str}``. ``page`` is unique to the
        socket (an agent may have several pages open). The result, if not
        None, is sent to that page only: ``{"type": "phone.state", "on": bool}``
        or ``{"type": "phone.error", "error": str, "call_id"?: str}``. Offers and
        hang-ups go to ``agent:NAME`` through the hub (see ``hotline.webrtc``).
        """
        ...

    def phone_closed(self, agent: str, page: str) -> None:
        """The socket of that agent page closed: its phone is off, a call it had ends."""
        ...


def empty_metrics() -> dict[str, Any]:
    """The metrics of a server with nothing going on (the shape ``Live.metrics`` returns)."""
    return {
        "active_calls": 0,
        "calls_by_state": {},
        "queues": {},
        "asr_latency_ms": {"p50": float("nan"), "p95": float("nan")},
        "packet_loss_ratio": 0.0,
        "jitter_ms": 0.0,
        "tick_overruns": 0,
    }


@dataclass
class StaticLive:
    """A ``Live`` that returns what it was given: for tests and the bridge on its own.

    ``python -m bridge`` serves the store with one of these (no calls, no
    queues); tests set the fields to what they want the endpoints to show.
    """

    status_body: dict[str, Any] = field(default_factory=lambda: {"status": "ok"})
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics_body: dict[str, Any] = field(default_factory=empty_metrics)
    queue_list: list[dict[str, Any]] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        """The configured status (a copy, so callers cannot change it)."""
        return copy.deepcopy(self.status_body)

    def call_outcome(self, call_id: str) -> dict[str, Any] | None:
        """The configured outcome of ``call_id``, if any."""
        outcome = self.outcomes.get(call_id)
        return copy.deepcopy(outcome) if outcome is not None else None

    def metrics(self) -> dict[str, Any]:
        """The configured metrics."""
        return copy.deepcopy(self.metrics_body)

    def queues(self) -> list[dict[str, Any]]:
        """The configured queues."""
        return copy.deepcopy(self.queue_list)

    def agent_state(self, agent: str, state: str, reason: str | None) -> dict[str, Any] | None:
        """No routing here: the agent's state is only stored."""
        return None

    def agents(self) -> dict[str, dict[str, Any]]:
        """No routing here."""
        return {}

    def chat_waiting(self, conversation_id: int) -> None:
        """No routing here: every agent page sees the chat and any agent may take it."""

    def chat_taken(self, conversation_id: int, agent: str) -> None:
        """No routing here."""

    def chat_ended(self, conversation_id: int) -> None:
        """No routing here."""

    async def phone(self, agent: str, page: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """No calls here: every phone message is answered with ``PHONE_UNAVAILABLE``."""
        reply: dict[str, Any] = {"type": "phone.error", "error": PHONE_UNAVAILABLE}
        if isinstance(message.get("call_id"), str):
            reply["call_id"] = message["call_id"]
        return reply

    def phone_closed(self, agent: str, page: str) -> None:
        """Nothing to end."""
