"""What the transaction layer hands back: bytes for the wire and events for the TU.

Every entry point of ``TransactionLayer`` returns a list of these records, in the
order they happened. ``Transmit`` goes to the transport shell; the others go to
the transaction user (the UA core).
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.message import Request, Response
from sip.peer import Peer


@dataclass(slots=True)
class Transmit:
    """Put ``data`` on the wire to ``peer`` (over ``peer.transport``)."""

    data: bytes
    peer: Peer


@dataclass(slots=True)
class RequestReceived:
    """A new request for the TU; retransmissions are absorbed by the layer.

    Attributes:
        request: the request.
        source: where it came from (responses go back there, §18.2.2).
        transaction_id: the server transaction to answer on with ``send_response``;
            None for an ACK, which has no transaction of its own (§17.1.1.3,
            §13.3.1.4) and gets no response.
        cancelled_transaction_id: for a CANCEL, the INVITE server transaction it
            matches (§9.2), or None: then the TU answers the CANCEL with 481.
    """

    request: Request
    source: Peer
    transaction_id: str | None
    cancelled_transaction_id: str | None = None


@dataclass(slots=True)
class ResponseReceived:
    """A response to one of our client transactions.

    Provisional and final responses are passed up once each; in the INVITE client
    transaction's Accepted state (RFC 6026 §8.4) every 2xx, retransmissions
    included, is passed up so that the TU re-sends its ACK.
    """

    response: Response
    source: Peer
    transaction_id: str


@dataclass(slots=True)
class TransactionTimedOut:
    """No final response came (Timer B or F), or no ACK for our non-2xx (Timer H).

    For a client transaction the TU treats it as a 408 (§8.1.3.1).
    """

    transaction_id: str
    request: Request


@dataclass(slots=True)
class AckTimedOut:
    """A 2xx we sent to an INVITE got no ACK within 64*T1: the TU sends BYE (§13.3.1.4)."""

    transaction_id: str
    response: Response


@dataclass(slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and was destroyed (§17: "destroyed immediately")."""

    transaction_id: str


Output = (
    Transmit | RequestReceived | ResponseReceived | TransactionTimedOut | AckTimedOut
    | TransactionTerminated
)
