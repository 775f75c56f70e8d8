"""Events the user agent core hands to the application.

They are plain records; the application answers through ``UserAgent`` methods
(``answer``, ``reject``, ``hangup``, ``answer_offer`` ...), never by mutating them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.call_leg import CallLeg
from sip.message import Request, Response
from sip.peer import Peer
from sip.replaces import Replaces
from sip.uri import SipUri


@dataclass(slots=True)
class IncomingCall:
    """A new INVITE: the application answers, rejects or lets it ring.

    ``replaces`` is the INVITE's Replaces header (RFC 3891), when it had one:
    find the dialog with ``UserAgent.leg_for_dialog(replaces.call_id,
    replaces.local_tag, replaces.remote_tag)``; no match gets 481, a confirmed
    match with ``early_only`` gets 486 (§3).
    """

    leg: CallLeg
    request: Request
    source: Peer
    replaces: Replaces | None = None


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
class TransferRequested:
    """The peer sent REFER in this leg's dialog and we answered 202 (RFC 3515).

    ``target`` is the Refer-To URI without its ``?headers``; ``replaces`` is the
    Replaces those headers carried (attended transfer, RFC 3891 §6), else None.
    The initial NOTIFY (100 Trying) is already on its way when ``subscription``
    is true; report later progress with ``UserAgent.notify_transfer``, which must
    also be given the final status when ``subscription`` is false (it then sends
    nothing). ``event_id`` is the Event ``id`` our NOTIFYs carry (RFC 3515 §2.4.6).
    """

    leg: CallLeg
    target: SipUri
    replaces: Replaces | None
    referred_by: str | None  # the Referred-By header (RFC 3892), verbatim
    subscription: bool
    event_id: str | None


@dataclass(slots=True)
class TransferAccepted:
    """Our REFER got a 2xx: the peer will try the transfer."""

    leg: CallLeg


@dataclass(slots=True)
class TransferFailed:
    """Our REFER got a final non-2xx response (408 when it timed out)."""

    leg: CallLeg
    status_code: int


@dataclass(slots=True)
class TransferProgress:
    """A NOTIFY about our REFER: its sipfrag status and whether it was the last.

    ``status_code`` is 0 when the body had no readable Status-Line; ``final`` is
    true when ``Subscription-State`` says terminated (no more NOTIFYs will come).
    """

    leg: CallLeg
    status_code: int
    final: bool


@dataclass(slots=True)
class RegistrationChanged:
    """A REGISTER changed the bindings of an address-of-record."""

    aor: str
    contacts: list[str]


UaEvent = (
    IncomingCall
    | CallProgress
    | CallAnswered
    | CallConfirmed
    | OfferReceived
    | CallEnded
    | TransferRequested
    | TransferAccepted
    | TransferFailed
    | TransferProgress
    | RegistrationChanged
)
