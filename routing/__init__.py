"""Agents, queues, ACD strategies and the hand-off with context.

``Acd`` (``acd``) is a sans-IO state machine: the server feeds it the
customer's and agents' events and the clock, and acts on the ``actions`` it
returns (Offer -> ring the agent's phone, Connected -> bridge, Announce ->
play the position). The chain: ``specs`` (what an operator configures) ->
``acd`` (the inputs, routing and timers) over ``records`` (its agents, items
and queues) ranked by ``ranked`` with the keys of ``strategies``;
``invariants`` cross-checks them. ``erlang`` has the Erlang C formulas and
``simulate`` runs an ``Acd`` on a fake clock with Poisson arrivals, to size
staffing or to check the ACD against Erlang C.

May import: ``sip``, ``media_core``, ``conversations`` (and the standard
library). It needs none of them today.
"""

from routing.acd import DEFAULT_HANDLE_S, Acd
from routing.actions import (
    Abandoned,
    Action,
    AgentStateChanged,
    Announce,
    CancelOffer,
    Connected,
    Missed,
    Offer,
    Overflowed,
)
from routing.records import AgentView
from routing.specs import AgentSpec, AgentState, QueueSpec, Strategy

__all__ = [
    "DEFAULT_HANDLE_S",
    "Abandoned",
    "Acd",
    "Action",
    "AgentSpec",
    "AgentState",
    "AgentStateChanged",
    "AgentView",
    "Announce",
    "CancelOffer",
    "Connected",
    "Missed",
    "Offer",
    "Overflowed",
    "QueueSpec",
    "Strategy",
]
