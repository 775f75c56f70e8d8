"""The user agent core (RFC 3261 §8, §12-§15): UAS and UAC legs of a B2BUA.

Sans-IO: the transport shell feeds ``receive(message, source, now)`` and
``on_timer(now)``; every call returns a list of ``Transmit`` records (bytes for
the wire) and ``UaEvent`` records for the application. The application acts
through ``answer``/``reject``/``ring``/``hangup``/``invite``/``answer_offer``,
which return outputs the same way.

Requests outside a dialog that are not INVITE are handled here too: OPTIONS is
answered (keepalives, §11), REGISTER goes to the ``RegistrationService``, and an
unknown method gets 501 (§8.2.1).

Call transfer (RFC 3515): a REFER in a confirmed dialog is answered 202 and
comes up as ``TransferRequested``; we send the initial NOTIFY and the
application reports later progress with ``notify_transfer``. ``refer`` sends a
REFER, whose answer and NOTIFYs come up as ``TransferAccepted``/``TransferFailed``
and ``TransferProgress``. An INVITE's Replaces header (RFC 3891) is parsed onto
``IncomingCall``; ``leg_for_dialog`` finds the dialog it names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sip.address import NameAddress, Via
from sip.call_leg import CallLeg, LegState
from sip.dialog import Dialog, DialogState, new_branch, new_call_id, new_tag
from sip.errors import RemoteProtocolError
from sip.headers import Headers
from sip.message import Request, Response, make_response
from sip.peer import Peer
from sip.refer import (
    EVENT_PACKAGE,
    SIPFRAG_CONTENT_TYPE,
    ReceivedRefer,
    notify_headers,
    parse_event,
    parse_refer_sub,
    parse_refer_to,
    parse_sipfrag_status,
    refer_to_value,
    sipfrag_status,
    subscription_terminated,
)
from sip.registration_service import RegistrationService
from sip.replaces import Replaces, tags_match
from sip.status import reason_phrase
from sip.transaction_events import (
    AckTimedOut,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    Transmit,
)
from sip.transaction_events import (
    Output as TransactionOutput,
)
from sip.transaction_layer import TransactionLayer
from sip.ua_events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    IncomingCall,
    OfferReceived,
    TransferAccepted,
    TransferFailed,
    TransferProgress,
    TransferRequested,
    UaEvent,
)
from sip.uri import SipUri

log = logging.getLogger("hotline.sip")

Output = Transmit | UaEvent
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, REFER, NOTIFY"
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "PRACK",
        "UPDATE",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "MESSAGE",
        "REFER",
    }
)
# Option tags we implement (§8.2.2.3): Replaces (RFC 3891 §6.2) and REFER without
# an implicit subscription (RFC 4488 §5).
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({"replaces", "norefersub"})
SUPPORTED = ", ".join(sorted(SUPPORTED_EXTENSIONS))


@dataclass(slots=True)
class UaConfig:
    """Where we are and how we present ourselves."""

    host: str  # the address put in Via and Contact (an IP literal or name)
    port: int
    user_agent: str = "hotline/0.1"
    contact_user: str = "hotline"

    @property
    def host_for_uri(self) -> str:
        """The host with IPv6 brackets, as URIs and Via want it."""
        return f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host


class UserAgent:
    """Dispatches transaction events to call legs, dialogs and the registrar."""

    def __init__(
        self,
        config: UaConfig,
        transactions: TransactionLayer,
        registration: RegistrationService,
        invite_guard: Callable[[Request, Peer, float], Response | None] | None = None,
    ) -> None:
        """Create the core.

        Args:
            config: our address and names.
            transactions: the §17 layer we drive.
            registration: handles REGISTER and authenticates agents.
            invite_guard: called for each new INVITE; a returned response (401/407
                challenge, 403, 503) is sent instead of offering the call.
        """
        self.config = config
        self.transactions = transactions
        self.registration = registration
        self.invite_guard = invite_guard
        self._legs_by_tx: dict[str, CallLeg] = {}
        self._legs_by_dialog: dict[tuple[str, str], CallLeg] = {}  # (Call-ID, local tag)
        self._reinvite_tx: dict[str, CallLeg] = {}
        self._refer_tx: dict[str, tuple[CallLeg, int]] = {}  # our REFERs: leg, CSeq
        self._notify_tx: dict[str, ReceivedRefer] = {}  # our NOTIFYs: what they report

    # ----------------------------------------------------------------- inputs

    def receive(self, message: Request | Response, source: Peer, now: float) -> list[Output]:
        """Feed one parsed message from the wire."""
        return self._handle(self.transactions.receive(message, source, now), now)

    def on_timer(self, now: float) -> list[Output]:
        """Fire due transaction timers."""
        return self._handle(self.transactions.on_timer(now), now)

    def next_deadline(self) -> float | None:
        """When ``on_timer`` wants to be called next."""
        return self.transactions.next_deadline()

    @property
    def active_legs(self) -> list[CallLeg]:
        """Legs that have not ended."""
        return [leg for leg in self._legs_by_dialog.values() if leg.is_active]

    def _handle(self, items: list[TransactionOutput], now: float) -> list[Output]:
        out: list[Output] = []
        for item in items:
            if isinstance(item, Transmit):
                out.append(item)
            elif isinstance(item, RequestReceived):
                out += self._on_request(item, now)
            elif isinstance(item, ResponseReceived):
                out += self._on_response(item, now)
            elif isinstance(item, TransactionTimedOut):
                out += self._on_timeout(item.transaction_id, now)
            elif isinstance(item, AckTimedOut):
                out += self._on_ack_timeout(item.transaction_id, now)
        return out

    # ------------------------------------------------------------ UAS inputs

    def _on_request(self, event: RequestReceived, now: float) -> list[Output]:
        request = event.request
        method = request.method
        try:
            if method == "ACK":
                return self._on_ack(request, now)
            if method == "CANCEL":
                return self._on_cancel(event, now)
            if method not in KNOWN_METHODS:
                return self._respond(event, 501, headers=[("Allow", ALLOW)], now=now)
            unsupported = _unsupported_requirements(request)
            if unsupported:
                # §8.2.2.3: we do not implement a required extension.
                return self._respond(
                    event, 420, headers=[("Unsupported", ", ".join(unsupported))], now=now
                )
            if method != "INVITE" and "Replaces" in request.headers:
                # RFC 3891 §3: Replaces in any request but INVITE gets 400.
                raise RemoteProtocolError(f"Replaces header in {method}")
            if request.to.tag:
                return self._on_in_dialog_request(event, now)
            if method == "INVITE":
                return self._on_invite(event, now)
            if method == "OPTIONS":
                return self._respond(event, 200, headers=_capability_headers(), now=now)
            if method == "REGISTER":
                response, events = self.registration.handle(request, event.source, now)
                if response is None:
                    return list(events)
                return self._send_response(event.transaction_id, response, now) + list(events)
            # §12.2.2 would apply inside a dialog; outside one, BYE/INFO have nothing to act on.
            # A REFER or NOTIFY outside a dialog names no call or subscription of ours
            # (RFC 6665 §4.1.3: an unmatched NOTIFY gets 481).
            if method in ("BYE", "INFO", "UPDATE", "PRACK", "REFER", "NOTIFY"):
                return self._respond(event, 481, now=now)
            return self._respond(event, 405, headers=[("Allow", ALLOW)], now=now)
        except RemoteProtocolError as exc:
            log.info("%s %s rejected: %s", request.headers.get("Call-ID"), method, exc.reason)
            if method == "ACK":
                return []
            return self._respond(event, exc.status_code, reason=exc.reason, now=now)

    def _on_invite(self, event: RequestReceived, now: float) -> list[Output]:
        request = event.request
        replaces = _replaces_of(request)
        if self.invite_guard is not None:
            refusal = self.invite_guard(request, event.source, now)
            if refusal is not None:
                return self._send_response(event.transaction_id, refusal, now)
        leg = CallLeg(
            role="uas",
            call_id=request.call_id,
            local_tag=new_tag(),
            invite=request,
            peer=event.source,
            state=LegState.INCOMING,
            invite_transaction_id=event.transaction_id,
            remote_sdp=request.body,
            created_at=now,
        )
        # §12.1.1: the dialog exists from our first tagged response; build it now so
        # a malformed Contact is answered with 400 before the application sees the call.
        leg.dialog = Dialog.from_uas(request, leg.local_tag, event.source)
        self._legs_by_tx[event.transaction_id or ""] = leg
        self._legs_by_dialog[(leg.call_id, leg.local_tag)] = leg
        return [IncomingCall(leg, request, event.source, replaces)]

    def _on_ack(self, request: Request, now: float) -> list[Output]:
        leg = self._leg_for_in_dialog(request)
        if leg is None:
            return []  # §17.2.3: a stray ACK is dropped silently
        if leg.state is LegState.ANSWERED:
            leg.move_to(LegState.CONFIRMED)
            out: list[Output] = [CallConfirmed(leg)]
            if leg.bye_pending:
                out += self._send_bye(leg, now)
            return out
        return []

    def _on_cancel(self, event: RequestReceived, now: float) -> list[Output]:
        # §9.2: CANCEL gets its own final response; the INVITE then gets 487.
        leg = self._legs_by_tx.get(event.cancelled_transaction_id or "")
        if leg is None:
            return self._respond(event, 481, now=now)
        out = self._respond(event, 200, now=now)
        if leg.state is LegState.INCOMING:
            out += self._final_to_invite(leg, 487, now)
            out += self._end(leg, "cancelled by caller", now, 487)
        return out

    def _on_in_dialog_request(self, event: RequestReceived, now: float) -> list[Output]:
        request = event.request
        leg = self._leg_for_in_dialog(request)
        if leg is None or leg.dialog is None or leg.state is LegState.ENDED:
            # §12.2.2: a request for a dialog we do not know gets 481.
            return self._respond(event, 481, now=now)
        leg.dialog.check_remote_cseq(request)
        if request.method == "BYE":
            out = self._respond(event, 200, now=now)
            if leg.state is LegState.INCOMING:
                out += self._final_to_invite(leg, 487, now)
            return out + self._end(leg, "remote hangup", now)
        if request.method == "INVITE":
            return self._on_reinvite(event, leg, now)
        if request.method == "OPTIONS":
            return self._respond(event, 200, headers=_capability_headers(), now=now)
        if request.method == "INFO":
            return self._respond(event, 200, now=now)
        if request.method == "REFER":
            return self._on_refer(event, leg, now)
        if request.method == "NOTIFY":
            return self._on_notify(event, leg, now)
        return self._respond(event, 405, headers=[("Allow", ALLOW)], now=now)

    def _on_refer(self, event: RequestReceived, leg: CallLeg, now: float) -> list[Output]:
        request = event.request
        assert leg.dialog is not None
        leg.refers_received += 1
        if leg.dialog.state is not DialogState.CONFIRMED:
            return self._respond(event, 403, reason="Transfer Before Answer", now=now)
        refer_to = parse_refer_to(request.headers)
        subscription = parse_refer_sub(request.headers)
        pending = leg.received_refer
        if pending is not None and not pending.reported:
            # One transfer at a time per dialog: notify_transfer reports on the leg's
            # latest REFER, so a second one waits until the first has a final status.
            return self._respond(event, 491, headers=[("Retry-After", "1")], now=now)
        number = request.cseq.number
        # RFC 3515 §2.4.6: NOTIFYs for the second and later REFERs of a dialog carry
        # the REFER's CSeq number as the Event id.
        event_id = str(number) if leg.refers_received > 1 else None
        refer = ReceivedRefer(number, event_id, subscription, terminated=not subscription)
        leg.received_refer = refer
        headers = [("Contact", self._contact(leg.peer.transport))]
        if not subscription:
            # RFC 4488 §4: we process it without the implicit subscription and say so.
            headers.append(("Refer-Sub", "false"))
        out = self._respond(event, 202, headers=headers, now=now)
        if subscription:
            # RFC 6665 §4.2.1.2 / RFC 3515 §2.4.4: the subscription's first NOTIFY goes
            # out at once; with nothing better to say it is "100 Trying" (§2.4.5).
            out += self._send_notify(leg, refer, 100, "Trying", now)
        referred_by = request.headers.get("Referred-By")
        return out + [
            TransferRequested(
                leg, refer_to.target, refer_to.replaces, referred_by, subscription, event_id
            )
        ]

    def _on_notify(self, event: RequestReceived, leg: CallLeg, now: float) -> list[Output]:
        request = event.request
        event_value = request.headers.get("Event")
        if event_value is None:
            raise RemoteProtocolError("missing Event header")
        package, event_id = parse_event(event_value)
        if package != EVENT_PACKAGE:
            # RFC 6665 §8.3.1 (489 Bad Event): the refer package is all we subscribe to.
            return self._respond(
                event, 489, reason="Bad Event", headers=[("Allow-Events", EVENT_PACKAGE)], now=now
            )
        cseq = leg.sent_refers.match(event_id)
        if cseq is None:
            # RFC 6665 §4.1.3: a NOTIFY that matches no subscription of ours gets 481.
            return self._respond(event, 481, now=now)
        final = subscription_terminated(request.headers)
        # RFC 3515 §2.4.5: the body is a sipfrag whose Status-Line tells the progress.
        # An unreadable one is still acknowledged (a 4xx might end the subscription
        # before the outcome is known) and reported as status 0.
        status = parse_sipfrag_status(request.content_type, request.body) or 0
        if final:
            leg.sent_refers.end(cseq)
        return self._respond(event, 200, now=now) + [TransferProgress(leg, status, final)]

    def _on_reinvite(self, event: RequestReceived, leg: CallLeg, now: float) -> list[Output]:
        if leg.reinvite_client_tx is not None:
            # §14.2: our own re-INVITE is pending: glare, 491 Request Pending.
            return self._respond(event, 491, now=now)
        if leg.reinvite_server_tx is not None or leg.state is not LegState.CONFIRMED:
            # §14.2: an earlier re-INVITE is still in progress: 500 with Retry-After.
            return self._respond(event, 500, headers=[("Retry-After", "1")], now=now)
        leg.reinvite_server_tx = event.transaction_id
        leg.reinvite_request = event.request
        assert leg.dialog is not None
        leg.dialog.remote_target = _contact_or(event.request, leg.dialog.remote_target)
        return [OfferReceived(leg, event.request)]

    # ------------------------------------------------------- UAS app actions

    def ring(self, leg: CallLeg, now: float) -> list[Output]:
        """Send 180 Ringing on an incoming leg."""
        if leg.state is not LegState.INCOMING:
            return []
        return self._final_to_invite(leg, 180, now)

    def answer(self, leg: CallLeg, sdp: bytes, now: float) -> list[Output]:
        """Send 2xx with our SDP; the transaction layer retransmits it until ACK."""
        if leg.state is not LegState.INCOMING:
            return []
        leg.local_sdp = sdp
        leg.answered_at = now
        leg.move_to(LegState.ANSWERED)
        assert leg.dialog is not None
        leg.dialog.state = DialogState.CONFIRMED
        return self._final_to_invite(leg, 200, now, body=sdp)

    def reject(
        self,
        leg: CallLeg,
        status_code: int,
        now: float,
        *,
        reason: str = "",
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Output]:
        """Refuse an incoming leg with a final non-2xx response."""
        if leg.state is not LegState.INCOMING:
            return []
        out = self._final_to_invite(leg, status_code, now, reason=reason, headers=headers)
        return out + self._end(leg, f"rejected {status_code}", now, status_code)

    def answer_offer(
        self, leg: CallLeg, status_code: int, now: float, *, sdp: bytes = b"", reason: str = ""
    ) -> list[Output]:
        """Answer a re-INVITE (``OfferReceived``): 200 with SDP, or 488 and friends."""
        tx = leg.reinvite_server_tx
        if tx is None:
            return []
        leg.reinvite_server_tx = None
        headers = [("Contact", self._contact())]
        if sdp:
            leg.local_sdp = sdp
            headers.append(("Content-Type", "application/sdp"))
        request = leg.reinvite_request
        assert request is not None
        leg.reinvite_request = None
        response = make_response(
            request, status_code, reason, to_tag=leg.local_tag, headers=headers, body=sdp
        )
        return self._send_response(tx, response, now)

    def notify_transfer(
        self, leg: CallLeg, status_code: int, reason: str, now: float
    ) -> list[Output]:
        """Report the progress of the REFER the leg's peer sent (RFC 3515 §2.4.4).

        ``status_code``/``reason`` become the NOTIFY's sipfrag Status-Line (an empty
        reason takes the standard phrase). A final status (>= 200) terminates the
        subscription, and lets the dialog's next REFER be accepted. Returns nothing
        when the referrer asked for no subscription (RFC 4488), when the
        subscription is already over, or when the leg has ended.
        """
        refer = leg.received_refer
        if refer is None or leg.state is LegState.ENDED or leg.dialog is None:
            return []
        if status_code >= 200:
            refer.reported = True
        if refer.terminated:
            return []
        return self._send_notify(leg, refer, status_code, reason, now)

    def leg_for_dialog(self, call_id: str, local_tag: str, remote_tag: str) -> CallLeg | None:
        """The active leg whose dialog has these identifiers, from our side.

        For an INVITE with Replaces (RFC 3891 §3) pass ``replaces.to_tag`` as
        ``local_tag`` and ``replaces.from_tag`` as ``remote_tag``
        (``Replaces.local_tag``/``remote_tag``): the Replaces is written from the
        view of the UA receiving the INVITE, which is us. A tag of "0" also matches
        an empty tag (RFC 3891 §6.1, RFC 2543 dialogs).
        """
        leg = self._legs_by_dialog.get((call_id, local_tag))
        if leg is None or leg.dialog is None or not leg.is_active:
            return None
        return leg if tags_match(remote_tag, leg.dialog.remote_tag) else None

    def _send_notify(
        self, leg: CallLeg, refer: ReceivedRefer, status_code: int, reason: str, now: float
    ) -> list[Output]:
        assert leg.dialog is not None
        final = status_code >= 200
        body = sipfrag_status(status_code, reason or reason_phrase(status_code))
        if final:
            # RFC 3515 §2.4.7: the final NOTIFY ends the subscription.
            refer.terminated = True
        request = leg.dialog.create_request(
            "NOTIFY",
            self.config.host_for_uri,
            self.config.port,
            body=body,
            content_type=SIPFRAG_CONTENT_TYPE,
            # RFC 6665 §8.1.2 (via RFC 3515): NOTIFY carries a Contact.
            contact=self._contact(leg.peer.transport),
            extra_headers=notify_headers(refer.event_id, final),
        )
        tx_id, out = self.transactions.send_request(request, self._dialog_peer(leg), now)
        self._notify_tx[tx_id] = refer
        return _wire(out)

    # ------------------------------------------------------- UAC app actions

    def invite(
        self,
        target: SipUri,
        peer: Peer,
        now: float,
        *,
        from_uri: str,
        sdp: bytes,
        headers: list[tuple[str, str]] | None = None,
        to_uri: str | None = None,
    ) -> tuple[CallLeg, list[Output]]:
        """Place an outbound INVITE (the agent leg of the B2BUA) to ``peer``."""
        local_tag = new_tag()
        request_headers = Headers()
        request_headers.add("Via", self._via(peer))
        request_headers.add("Max-Forwards", "70")
        request_headers.add("From", f"{from_uri};tag={local_tag}")
        request_headers.add("To", to_uri or f"<{target}>")
        request_headers.add("Call-ID", new_call_id(self.config.host_for_uri))
        request_headers.add("CSeq", "1 INVITE")
        request_headers.add("Contact", self._contact(peer.transport))
        request_headers.add("Allow", ALLOW)
        request_headers.add("Supported", SUPPORTED)
        request_headers.add("User-Agent", self.config.user_agent)
        for name, value in headers or ():
            request_headers.add(name, value)
        if sdp:
            request_headers.add("Content-Type", "application/sdp")
        request = Request("INVITE", target, request_headers, sdp)
        leg = CallLeg(
            role="uac",
            call_id=request.call_id,
            local_tag=local_tag,
            invite=request,
            peer=peer,
            state=LegState.CALLING,
            local_sdp=sdp,
            created_at=now,
        )
        tx_id, out = self.transactions.send_request(request, peer, now)
        leg.invite_transaction_id = tx_id
        self._legs_by_tx[tx_id] = leg
        self._legs_by_dialog[(leg.call_id, local_tag)] = leg
        return leg, _wire(out)

    def hangup(self, leg: CallLeg, now: float) -> list[Output]:
        """End a leg in whatever way its state allows (CANCEL, BYE, 480)."""
        state = leg.state
        if state is LegState.INCOMING:
            return self.reject(leg, 480, now)
        if state in (LegState.CALLING, LegState.EARLY):
            return self._cancel(leg, now)
        if state is LegState.ANSWERED:
            # §15: the callee must not send BYE before the ACK (or its timeout).
            leg.bye_pending = True
            return []
        if state is LegState.CONFIRMED:
            return self._send_bye(leg, now)
        return []

    def send_reinvite(self, leg: CallLeg, sdp: bytes, now: float) -> list[Output]:
        """Send a re-INVITE (e.g. hold) in a confirmed dialog."""
        if leg.state is not LegState.CONFIRMED or leg.dialog is None:
            return []
        if leg.reinvite_client_tx or leg.reinvite_server_tx:
            return []  # §14.1: one re-INVITE at a time
        request = leg.dialog.create_request(
            "INVITE",
            self.config.host_for_uri,
            self.config.port,
            body=sdp,
            contact=self._contact(leg.peer.transport),
        )
        tx_id, out = self.transactions.send_request(request, self._dialog_peer(leg), now)
        leg.reinvite_client_tx = tx_id
        leg.local_sdp = sdp
        self._reinvite_tx[tx_id] = leg
        return _wire(out)

    def refer(
        self,
        leg: CallLeg,
        refer_to: str,
        now: float,
        *,
        replaces: Replaces | None = None,
        refer_sub: bool = True,
        referred_by: str | None = None,
    ) -> list[Output]:
        """Send REFER in the leg's confirmed dialog, asking the peer to call ``refer_to``.

        ``replaces`` is embedded, escaped, in the Refer-To URI (attended transfer,
        RFC 3891 §6); ``refer_sub=False`` asks for no NOTIFYs (RFC 4488);
        ``referred_by`` is sent as the Referred-By header (RFC 3892) verbatim.
        """
        if leg.state is not LegState.CONFIRMED or leg.dialog is None:
            return []
        headers = [("Refer-To", refer_to_value(refer_to, replaces))]
        if referred_by:
            headers.append(("Referred-By", referred_by))
        if not refer_sub:
            headers.append(("Refer-Sub", "false"))
        request = leg.dialog.create_request(
            "REFER",
            self.config.host_for_uri,
            self.config.port,
            # RFC 3515 §2.2: a REFER carries a Contact.
            contact=self._contact(leg.peer.transport),
            extra_headers=headers,
        )
        number = request.cseq.number
        # NOTIFYs may arrive before the 202 (RFC 6665 §4.1.2.4), so listen at once,
        # even with Refer-Sub: false until the answer says the peer honours it.
        leg.sent_refers.live.append(number)
        tx_id, out = self.transactions.send_request(request, self._dialog_peer(leg), now)
        self._refer_tx[tx_id] = (leg, number)
        return _wire(out)

    def _cancel(self, leg: CallLeg, now: float) -> list[Output]:
        if not leg.provisional_received:
            # §9.1: no CANCEL before a provisional response; send it when one comes.
            leg.cancel_pending = True
            leg.move_to(LegState.CANCELLING)
            return []
        leg.move_to(LegState.CANCELLING)
        invite = leg.invite
        headers = Headers()
        headers.add("Via", invite.headers.get("Via") or "")
        headers.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            headers.add(name, invite.headers.get(name) or "")
        headers.add("CSeq", f"{invite.cseq.number} CANCEL")
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        cancel = Request("CANCEL", invite.uri, headers)
        _, out = self.transactions.send_request(cancel, leg.peer, now)
        return _wire(out)

    # ----------------------------------------------------------- UAC inputs

    def _on_response(self, event: ResponseReceived, now: float) -> list[Output]:
        response = event.response
        tx_id = event.transaction_id
        if tx_id in self._reinvite_tx:
            return self._on_reinvite_response(self._reinvite_tx[tx_id], event, now)
        if tx_id in self._refer_tx:
            return self._on_refer_response(event)
        if tx_id in self._notify_tx:
            return self._on_notify_response(event)
        uac_leg = self._legs_by_tx.get(tx_id)
        if uac_leg is None or uac_leg.role != "uac" or response.cseq.method != "INVITE":
            return []
        leg = uac_leg
        code = response.status_code
        if code < 200:
            return self._on_provisional(leg, response, now)
        if code < 300:
            return self._on_invite_2xx(leg, response, now)
        self._legs_by_tx.pop(tx_id, None)
        if leg.state is LegState.ENDED:
            return []
        reason = "cancelled" if leg.state is LegState.CANCELLING else f"rejected {code}"
        return self._end(leg, reason, now, code)

    def _on_provisional(self, leg: CallLeg, response: Response, now: float) -> list[Output]:
        if response.status_code == 100:
            leg.provisional_received = True
        else:
            leg.provisional_received = True
            if response.to.tag and leg.dialog is None:
                leg.dialog = Dialog.from_uac(leg.invite, response, leg.peer)
            if leg.state is LegState.CALLING:
                leg.move_to(LegState.EARLY)
        out: list[Output] = []
        if leg.cancel_pending:
            leg.cancel_pending = False
            leg.state = LegState.EARLY  # re-enter so _cancel can take its transition
            out += self._cancel(leg, now)
        elif response.status_code != 100:
            out.append(CallProgress(leg, response))
        return out

    def _on_invite_2xx(self, leg: CallLeg, response: Response, now: float) -> list[Output]:
        to_tag = response.to.tag or ""
        if leg.dialog is not None and leg.dialog.state is DialogState.CONFIRMED:
            if leg.dialog.remote_tag == to_tag:
                # RFC 6026 Accepted state: a 2xx retransmission, so our ACK was lost.
                return [Transmit(leg.ack_bytes, self._dialog_peer(leg))] if leg.ack_bytes else []
            # A forked second 2xx: acknowledge it, then hang it up (§13.2.2.4).
            stray = Dialog.from_uac(leg.invite, response, leg.peer)
            return self._ack(stray, leg.invite, now) + self._bye_stray(stray, now)
        if leg.dialog is None or leg.dialog.remote_tag != to_tag:
            leg.dialog = Dialog.from_uac(leg.invite, response, leg.peer)
        else:
            leg.dialog.update_from_response(response)
        leg.dialog.state = DialogState.CONFIRMED
        leg.remote_sdp = response.body
        leg.answered_at = now
        out = self._ack(leg.dialog, leg.invite, now, leg)
        if leg.state is LegState.CANCELLING or leg.cancel_pending:
            # §9.1: the CANCEL/200 race: the call was answered anyway; ACK it, then BYE.
            leg.cancel_pending = False
            return out + self._send_bye(leg, now)
        leg.move_to(LegState.CONFIRMED)
        return out + [CallAnswered(leg, response)]

    def _on_reinvite_response(
        self, leg: CallLeg, event: ResponseReceived, now: float
    ) -> list[Output]:
        response = event.response
        if response.status_code < 200:
            return []
        self._reinvite_tx.pop(event.transaction_id, None)
        leg.reinvite_client_tx = None
        if response.is_success and leg.dialog is not None:
            leg.dialog.update_from_response(response)
            leg.remote_sdp = response.body or leg.remote_sdp
            return self._ack(leg.dialog, None, now, leg, cseq=response.cseq.number)
        return []

    def _on_refer_response(self, event: ResponseReceived) -> list[Output]:
        response = event.response
        if response.is_provisional:
            return []
        leg, number = self._refer_tx.pop(event.transaction_id)
        if not response.is_success:
            leg.sent_refers.end(number)
            return [TransferFailed(leg, response.status_code)]
        if (response.headers.get("Refer-Sub") or "").strip().lower() == "false":
            # RFC 4488 §4: the peer created no subscription, so no NOTIFY will come.
            leg.sent_refers.end(number)
        return [TransferAccepted(leg)]

    def _on_notify_response(self, event: ResponseReceived) -> list[Output]:
        if event.response.is_provisional:
            return []
        refer = self._notify_tx.pop(event.transaction_id)
        if not event.response.is_success:
            # RFC 6665 §4.2.2: a failure response to NOTIFY (481 once the referrer has
            # hung up) ends the subscription. RFC 5057 §5.2: only that usage ends,
            # the call in the same dialog goes on.
            refer.terminated = True
        return []

    def _on_timeout(self, tx_id: str, now: float) -> list[Output]:
        if tx_id in self._refer_tx:
            referring, number = self._refer_tx.pop(tx_id)
            referring.sent_refers.end(number)
            return [TransferFailed(referring, 408)]  # §8.1.3.1: a timeout is a 408
        if tx_id in self._notify_tx:
            self._notify_tx.pop(tx_id).terminated = True  # RFC 6665 §4.2.2
            return []
        if tx_id in self._reinvite_tx:
            reinvited = self._reinvite_tx.pop(tx_id)
            reinvited.reinvite_client_tx = None
            # §14.1: a re-INVITE timeout ends the dialog with BYE.
            return self._send_bye(reinvited, now, "re-INVITE timed out")
        leg = self._legs_by_tx.pop(tx_id, None)
        if leg is None or leg.state is LegState.ENDED:
            return []
        return self._end(leg, "no answer (timeout)", now, 408)

    def _on_ack_timeout(self, tx_id: str, now: float) -> list[Output]:
        leg = self._legs_by_tx.get(tx_id)
        if leg is None or leg.state is not LegState.ANSWERED:
            return []
        # §13.3.1.4: no ACK for our 2xx within 64*T1: confirm and end with BYE.
        leg.move_to(LegState.CONFIRMED)
        return self._send_bye(leg, now, "no ACK")

    # ---------------------------------------------------------------- helpers

    def _ack(
        self,
        dialog: Dialog,
        invite: Request | None,
        now: float,
        leg: CallLeg | None = None,
        cseq: int | None = None,
    ) -> list[Output]:
        # §13.2.2.4: the ACK for a 2xx is built by the UAC core, in the dialog, with the
        # INVITE's CSeq number; it is not a transaction.
        number = cseq if cseq is not None else (invite.cseq.number if invite else 1)
        ack = dialog.create_request("ACK", self.config.host_for_uri, self.config.port, cseq=number)
        data = bytes(ack)
        if leg is not None:
            leg.ack_bytes = data
        peer = dialog.peer or (leg.peer if leg else None)
        assert peer is not None
        return [Transmit(data, peer)]

    def _bye_stray(self, dialog: Dialog, now: float) -> list[Output]:
        bye = dialog.create_request("BYE", self.config.host_for_uri, self.config.port)
        assert dialog.peer is not None
        _, out = self.transactions.send_request(bye, dialog.peer, now)
        return _wire(out)

    def _send_bye(self, leg: CallLeg, now: float, reason: str = "local hangup") -> list[Output]:
        # §15.1.1: the session is over (no more media) once the BYE is handed to its
        # transaction; its response changes nothing, so it is not waited for.
        leg.bye_pending = False
        out = self._bye_stray(leg.dialog, now) if leg.dialog is not None else []
        return out + self._end(leg, reason, now)

    def _end(
        self, leg: CallLeg, reason: str, now: float, status: int | None = None
    ) -> list[Output]:
        if leg.state is LegState.ENDED:
            return []
        leg.state = LegState.ENDED
        leg.ended_at = now
        if leg.dialog is not None:
            leg.dialog.state = DialogState.TERMINATED
        self._legs_by_dialog.pop((leg.call_id, leg.local_tag), None)
        if leg.invite_transaction_id is not None:
            self._legs_by_tx.pop(leg.invite_transaction_id, None)
        log.debug("%s leg %s ended: %s", leg.call_id, leg.role, reason)
        return [CallEnded(leg, reason, status)]

    def _final_to_invite(
        self,
        leg: CallLeg,
        status_code: int,
        now: float,
        *,
        body: bytes = b"",
        reason: str = "",
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Output]:
        extra = list(headers or ())
        if status_code < 300:
            extra = [("Contact", self._contact(leg.peer.transport))] + extra
            # §12.1.1: Record-Route is copied into dialog-creating responses.
            extra += [("Record-Route", rr) for rr in leg.invite.headers.get_all("Record-Route")]
            extra.append(("Allow", ALLOW))
            extra.append(("Supported", SUPPORTED))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        extra.append(("Server", self.config.user_agent))
        response = make_response(
            leg.invite, status_code, reason, to_tag=leg.local_tag, headers=extra, body=body
        )
        return self._send_response(leg.invite_transaction_id, response, now)

    def _respond(
        self,
        event: RequestReceived,
        status_code: int,
        *,
        now: float,
        reason: str = "",
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Output]:
        extra = list(headers or ()) + [("Server", self.config.user_agent)]
        response = make_response(
            event.request, status_code, reason, to_tag=new_tag(), headers=extra
        )
        if event.transaction_id is None:
            return _wire(self.transactions.send_stateless(response, event.source))
        return self._send_response(event.transaction_id, response, now)

    def _send_response(self, tx_id: str | None, response: Response, now: float) -> list[Output]:
        if tx_id is None:
            return []
        return _wire(self.transactions.send_response(tx_id, response, now))

    def _leg_for_in_dialog(self, request: Request) -> CallLeg | None:
        # Our tag is the To tag of requests the peer sends inside our dialog.
        return self._legs_by_dialog.get((request.call_id, request.to.tag or ""))

    def _dialog_peer(self, leg: CallLeg) -> Peer:
        return leg.dialog.peer if leg.dialog and leg.dialog.peer else leg.peer

    def _via(self, peer: Peer) -> str:
        params: dict[str, str | None] = {"branch": new_branch(), "rport": None}
        return str(Via(peer.transport.upper(), self.config.host_for_uri, self.config.port, params))

    def _contact(self, transport: str = "udp") -> str:
        params = "" if transport == "udp" else f";transport={transport}"
        host = self.config.host_for_uri
        return f"<sip:{self.config.contact_user}@{host}:{self.config.port}{params}>"


def _wire(outputs: list[TransactionOutput]) -> list[Output]:
    """Keep what goes on the wire; the layer's bookkeeping events stay below us."""
    return [output for output in outputs if isinstance(output, Transmit)]


def _capability_headers() -> list[tuple[str, str]]:
    # §11.2: OPTIONS answers say what we allow and accept.
    return [
        ("Allow", ALLOW),
        ("Supported", SUPPORTED),
        ("Accept", "application/sdp"),
        ("Accept-Language", "en"),
    ]


def _unsupported_requirements(request: Request) -> list[str]:
    required = request.headers.get_all("Require")
    return [tag for tag in required if tag.lower() not in SUPPORTED_EXTENSIONS]


def _replaces_of(request: Request) -> Replaces | None:
    values = request.headers.get_all("Replaces")
    if not values:
        return None
    if len(values) > 1:
        # RFC 3891 §3: more than one Replaces header gets 400.
        raise RemoteProtocolError("more than one Replaces header")
    return Replaces.parse(values[0])


def _contact_or(request: Request, fallback: SipUri) -> SipUri:
    value = request.headers.get("Contact")
    return NameAddress.parse(value).uri if value else fallback
