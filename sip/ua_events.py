"""Events the user agent core hands to the application.

They are plain records; the application answers through ``UserAgent`` methods
(``answer``, ``reject``, ``hangup``, ``answer_offer`` ...), never by mutating them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.call_leg import CallLeg
from sip.message import Request, Response
from sip.peer import Peer


@dataclass(slots=True)
class IncomingCall:
    """A new INVITE: the application answers, rejects or lets it ring."""

    leg: CallLeg
    request: Request
    source: Peer


@dataclass(slots=True)
class CallProgress:
    """Our outbound INVITE got a provisional response (180, 183)."""

    leg: CallLeg
    response: Response


@dataclass(slots=True)
class CallAnswered:
    """Our outbound INVITE got a 2xx; the ACK is already on its way."""

    leg: CallLeg
    response: Response


@dataclass(slots=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: media may flow both ways (§13.3.1.4)."""

    leg: CallLeg


@dataclass(slots=True)
class OfferReceived:
    """A re-INVITE in a confirmed dialog (hold, unhold, new media): answer it."""

    leg: CallLeg
    request: Request


@dataclass(slots=True)
class CallEnded:
    """The leg is over. ``status_code`` is the final response when one ended it."""

    leg: CallLeg
    reason: str
    status_code: int | None = None


@dataclass(slots=True)
class RegistrationChanged:
    """A REGISTER changed the bindings of an address-of-record."""

    aor: str
    contacts: list[str]


UaEvent = (
    IncomingCall | CallProgress | CallAnswered | CallConfirmed | OfferReceived | CallEnded
    | RegistrationChanged
)
