"""One INVITE session leg (UAS or UAC) and its state table.

The B2BUA joins two legs: the caller's (we are UAS) and the agent's (we are UAC).
Each leg moves through the states below; ``TRANSITIONS`` is the whole table, so a
transition that is not in it is a bug (``LocalProtocolError``) or the peer's
out-of-order message (handled by the caller).

    UAS: INCOMING -> ANSWERED (2xx sent) -> CONFIRMED (ACK) -> ENDED (BYE either way)
    UAC: CALLING -> EARLY (1xx with tag) -> CONFIRMED (2xx, ACK sent) -> ENDED
         CALLING/EARLY -> CANCELLING (CANCEL sent) -> ENDED (487 or, in the
         CANCEL/200 race of §9.1, 2xx -> ACK + BYE -> ENDED)

A leg ends as soon as we send BYE (§15.1.1), not when the BYE is answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sip.dialog import Dialog
from sip.errors import LocalProtocolError
from sip.message import Request
from sip.peer import Peer
from sip.refer import ReceivedRefer, SentRefers


class LegState(Enum):
    """Where an INVITE session leg is."""

    INCOMING = "incoming"
    CALLING = "calling"
    EARLY = "early"
    ANSWERED = "answered"
    CANCELLING = "cancelling"
    CONFIRMED = "confirmed"
    ENDED = "ended"


_S = LegState
TRANSITIONS: dict[LegState, frozenset[LegState]] = {
    _S.INCOMING: frozenset({_S.ANSWERED, _S.ENDED}),
    _S.CALLING: frozenset({_S.EARLY, _S.CONFIRMED, _S.CANCELLING, _S.ENDED}),
    _S.EARLY: frozenset({_S.CONFIRMED, _S.CANCELLING, _S.ENDED}),
    _S.ANSWERED: frozenset({_S.CONFIRMED, _S.ENDED}),
    _S.CANCELLING: frozenset({_S.ENDED}),
    _S.CONFIRMED: frozenset({_S.ENDED}),
    _S.ENDED: frozenset(),
}


@dataclass(slots=True, eq=False)
class CallLeg:
    """One side of a call as the user agent core tracks it."""

    role: str  # "uas" or "uac"
    call_id: str
    local_tag: str
    invite: Request
    peer: Peer
    state: LegState
    invite_transaction_id: str | None = None
    dialog: Dialog | None = None
    local_sdp: bytes = b""
    remote_sdp: bytes = b""
    created_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    # Requests we owe the peer once a state allows them (§9.1, §15).
    cancel_pending: bool = False
    bye_pending: bool = False
    provisional_received: bool = False
    # re-INVITE bookkeeping for glare (§14.1, §14.2).
    reinvite_server_tx: str | None = None
    reinvite_client_tx: str | None = None
    reinvite_request: Request | None = None
    ack_bytes: bytes = b""
    # Transfer (RFC 3515): REFERs the peer sent us in this dialog, the one we are
    # reporting on, and the REFERs we sent whose progress we follow.
    refers_received: int = 0
    received_refer: ReceivedRefer | None = None
    sent_refers: SentRefers = field(default_factory=SentRefers)
    app_data: dict[str, object] = field(default_factory=dict)

    @property
    def leg_id(self) -> str:
        """A stable id for logs and maps: Call-ID and our tag."""
        return f"{self.call_id};{self.local_tag}"

    @property
    def is_active(self) -> bool:
        """True until the leg has ended."""
        return self.state is not LegState.ENDED

    def move_to(self, state: LegState) -> None:
        """Take a transition of ``TRANSITIONS``; anything else is our bug."""
        if state is self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise LocalProtocolError(f"leg {self.leg_id}: {self.state.value} -> {state.value}")
        self.state = state
