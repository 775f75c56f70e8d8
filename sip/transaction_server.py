"""Server transactions (RFC 3261 §17.2, with the Accepted state of RFC 6026 §8).

As on the client side, each machine is one table ``(state, input) -> (next
state, steps)``. Inputs are a retransmission of the request, an ACK, a response
from the TU (1xx, 2xx, 300-699) or a timer. A pair missing from a table is an
input the state ignores; for a response from the TU that means it is discarded
(§17.2.2: "Any other final responses passed by the TU to the server transaction
MUST be discarded while in the Completed state").

INVITE server transaction (§17.2.1 Figure 7 as amended by RFC 6026 §8)::

    (new INVITE)                 Proceeding  send 100 Trying, pass up
    Proceeding --INVITE------>   Proceeding  re-send the last provisional
    Proceeding --1xx from TU->   Proceeding  send
    Proceeding --2xx from TU->   Accepted    send, start Timer L and the 2xx timer
    Proceeding --3xx-6xx TU-->   Completed   send, start Timer G and Timer H
    Completed  --INVITE------>   Completed   re-send the final
    Completed  --Timer G----->   Completed   retransmit, G doubles up to T2
    Completed  --Timer H----->   Terminated  inform TU (no ACK)
    Completed  --ACK--------->   Confirmed   start Timer I (the ACK is not passed up)
    Confirmed  --INVITE/ACK-->   Confirmed   absorb
    Confirmed  --Timer I----->   Terminated
    Accepted   --INVITE------>   Accepted    absorb
    Accepted   --ACK--------->   Accepted    pass up, stop the 2xx timer
    Accepted   --2xx from TU->   Accepted    send
    Accepted   --2xx timer--->   Accepted    retransmit the 2xx (§13.3.1.4)
    Accepted   --Timer L----->   Terminated  AckTimedOut if no ACK came

Retransmitting the 2xx is the UAS core's duty in §13.3.1.4, not the
transaction's; the layer does it here, in the Accepted state whose Timer L has
the same 64*T1 length, so that the TU runs no timers of its own.

Non-INVITE server transaction (§17.2.2 Figure 8)::

    (new request)                Trying      pass up
    Trying     --request----->   Trying      absorb
    Trying/Proceeding --1xx from TU-----> Proceeding  send
    Trying/Proceeding --200-699 from TU-> Completed   send, start Timer J
    Proceeding --request----->   Proceeding  re-send the last provisional
    Completed  --request----->   Completed   re-send the final
    Completed  --Timer J----->   Terminated
"""

from __future__ import annotations

import logging
from enum import Enum

from sip.address import Via
from sip.message import BRANCH_MAGIC, Request, Response, make_response
from sip.peer import Peer
from sip.timers import (
    Arm,
    Backoff,
    Disarm,
    TimerKey,
    TimerName,
    TimerStep,
    TransactionTimers,
)
from sip.transaction_events import (
    AckTimedOut,
    Output,
    RequestReceived,
    TransactionTimedOut,
    Transmit,
)

log = logging.getLogger("hotline.sip")


class ServerState(Enum):
    """States of both server machines (§17.2.1, §17.2.2 and RFC 6026's Accepted)."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ServerEvent(Enum):
    """Inputs of the server machines other than timers."""

    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_PROVISIONAL = "1xx from TU"
    TU_SUCCESS = "2xx from TU"
    TU_FAILURE = "300-699 from TU"

    @classmethod
    def of_response(cls, status_code: int) -> ServerEvent:
        """Classify a response the TU passes down."""
        if status_code < 200:
            return cls.TU_PROVISIONAL
        if status_code < 300:
            return cls.TU_SUCCESS
        return cls.TU_FAILURE


class ServerAction(Enum):
    """What a server transition does besides timers."""

    SEND_TRYING = "send 100 Trying"
    PASS_UP = "pass the new request to the TU"
    PASS_ACK_UP = "pass the ACK to the TU (it has no transaction)"
    MARK_ACKED = "note that the 2xx was acknowledged"
    SEND_RESPONSE = "send the TU's response and keep it"
    RESEND_RESPONSE = "re-send the last response"
    RETRANSMIT_RESPONSE = "retransmit the response on a timer"
    ABSORB = "absorb a retransmitted request"
    TIMEOUT = "inform the TU that no ACK came (Timer H)"
    REPORT_UNACKED = "inform the TU if the 2xx got no ACK"


ServerInput = ServerEvent | TimerName
ServerStep = ServerAction | TimerStep
ServerTransition = tuple[ServerState, tuple[ServerStep, ...]]

_S = ServerState
_E = ServerEvent
_A = ServerAction
_T = TimerName

# §17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it
# knows that the TU will generate a provisional or final response within 200 ms";
# we always send it at once, which quenches the INVITE retransmissions.
INVITE_SERVER_START: ServerTransition = (_S.PROCEEDING, (_A.SEND_TRYING, _A.PASS_UP))

INVITE_SERVER_TABLE: dict[tuple[ServerState, ServerInput], ServerTransition] = {
    # §17.2.1: "If a request retransmission is received while in the "Proceeding"
    # state, the most recent provisional response that was received from the TU
    # MUST be passed to the transport layer for retransmission."
    (_S.PROCEEDING, _E.REQUEST): (_S.PROCEEDING, (_A.RESEND_RESPONSE, _A.ABSORB)),
    (_S.PROCEEDING, _E.TU_PROVISIONAL): (_S.PROCEEDING, (_A.SEND_RESPONSE,)),
    # RFC 6026 (§17.2.1 updated): a 2xx from the TU is sent and the transaction
    # goes to Accepted with Timer L; §13.3.1.4 retransmissions start at T1.
    (_S.PROCEEDING, _E.TU_SUCCESS): (
        _S.ACCEPTED, (_A.SEND_RESPONSE, Arm(_T.L), Arm(_T.RETRANSMIT_2XX))
    ),
    # §17.2.1: Timer G only on unreliable transports (Arm skips it on TCP), Timer H always.
    (_S.PROCEEDING, _E.TU_FAILURE): (
        _S.COMPLETED, (_A.SEND_RESPONSE, Arm(_T.G), Arm(_T.H))
    ),
    (_S.COMPLETED, _E.REQUEST): (_S.COMPLETED, (_A.RESEND_RESPONSE, _A.ABSORB)),
    # §17.2.1: G doubles "until it reaches T2".
    (_S.COMPLETED, _T.G): (_S.COMPLETED, (_A.RETRANSMIT_RESPONSE, Backoff(_T.G))),
    (_S.COMPLETED, _T.H): (_S.TERMINATED, (_A.TIMEOUT,)),
    # §17.2.1: the ACK moves to Confirmed and "is not passed up to the TU".
    (_S.COMPLETED, _E.ACK): (_S.CONFIRMED, (Disarm(_T.G), Disarm(_T.H), Arm(_T.I))),
    # §17.2.1: Confirmed absorbs further ACKs (and INVITE retransmissions).
    (_S.CONFIRMED, _E.ACK): (_S.CONFIRMED, (_A.ABSORB,)),
    (_S.CONFIRMED, _E.REQUEST): (_S.CONFIRMED, (_A.ABSORB,)),
    (_S.CONFIRMED, _T.I): (_S.TERMINATED, ()),
    # RFC 6026 §8.7, in Accepted: INVITE retransmissions are absorbed (the 2xx is
    # already being retransmitted), an ACK is passed up to the TU, and further 2xx
    # responses from the TU are sent.
    (_S.ACCEPTED, _E.REQUEST): (_S.ACCEPTED, (_A.ABSORB,)),
    (_S.ACCEPTED, _E.ACK): (
        _S.ACCEPTED, (_A.MARK_ACKED, Disarm(_T.RETRANSMIT_2XX), _A.PASS_ACK_UP)
    ),
    (_S.ACCEPTED, _E.TU_SUCCESS): (_S.ACCEPTED, (_A.SEND_RESPONSE,)),
    # §13.3.1.4: "an interval that starts at T1 seconds and doubles for each
    # retransmission until it reaches T2 seconds".
    (_S.ACCEPTED, _T.RETRANSMIT_2XX): (
        _S.ACCEPTED, (_A.RETRANSMIT_RESPONSE, Backoff(_T.RETRANSMIT_2XX))
    ),
    # §13.3.1.4: no ACK after 64*T1 of retransmissions: the TU ends the session.
    (_S.ACCEPTED, _T.L): (_S.TERMINATED, (_A.REPORT_UNACKED,)),
}

# §17.2.2: the request is passed to the TU; non-INVITE gets no automatic 100
# (RFC 4320 §4.1 even forbids an early one).
NON_INVITE_SERVER_START: ServerTransition = (_S.TRYING, (_A.PASS_UP,))

_NON_INVITE_FINAL: ServerTransition = (_S.COMPLETED, (_A.SEND_RESPONSE, Arm(_T.J)))

NON_INVITE_SERVER_TABLE: dict[tuple[ServerState, ServerInput], ServerTransition] = {
    # §17.2.2: in Trying "any further request retransmissions are discarded".
    (_S.TRYING, _E.REQUEST): (_S.TRYING, (_A.ABSORB,)),
    (_S.TRYING, _E.TU_PROVISIONAL): (_S.PROCEEDING, (_A.SEND_RESPONSE,)),
    (_S.TRYING, _E.TU_SUCCESS): _NON_INVITE_FINAL,
    (_S.TRYING, _E.TU_FAILURE): _NON_INVITE_FINAL,
    (_S.PROCEEDING, _E.REQUEST): (_S.PROCEEDING, (_A.RESEND_RESPONSE, _A.ABSORB)),
    (_S.PROCEEDING, _E.TU_PROVISIONAL): (_S.PROCEEDING, (_A.SEND_RESPONSE,)),
    (_S.PROCEEDING, _E.TU_SUCCESS): _NON_INVITE_FINAL,
    (_S.PROCEEDING, _E.TU_FAILURE): _NON_INVITE_FINAL,
    (_S.COMPLETED, _E.REQUEST): (_S.COMPLETED, (_A.RESEND_RESPONSE, _A.ABSORB)),
    (_S.COMPLETED, _T.J): (_S.TERMINATED, ()),
}


def server_transaction_id(request: Request, via: Via, method: str | None = None) -> str:
    """The key §17.2.3 matches requests on, used as the server transaction's id.

    With an RFC 3261 branch (magic cookie): branch, sent-by and method, where an
    ACK counts as INVITE (it belongs to the INVITE's transaction) and a CANCEL is
    its own. ``method`` overrides the method, e.g. "INVITE" to find the
    transaction a CANCEL cancels (§9.2).

    Without the cookie (RFC 2543 peers), §17.2.3 compares Request-URI, To tag,
    From tag, Call-ID, CSeq and the top Via. We approximate: Call-ID, From tag,
    CSeq number, top Via sent-by and branch, Request-URI and the method as above.
    The To tag is left out, because the ACK of a non-2xx carries the tag of our
    response where the INVITE had none; a request is still told apart from its
    neighbours by its CSeq number.

    Raises:
        RemoteProtocolError: a header needed for matching is malformed.
    """
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    branch = via.branch
    sent_by = via.host if via.port is None else f"{via.host}:{via.port}"
    if branch and branch.startswith(BRANCH_MAGIC):
        return f"{branch}|{sent_by}|{method}"
    parts = (
        "rfc2543", request.call_id, request.from_.tag or "", str(request.cseq.number),
        sent_by, branch or "", str(request.uri), method,
    )
    return "|".join(parts)


def ack_dialog_key(message: Request | Response) -> tuple[str, str, str, int]:
    """(Call-ID, From tag, To tag, CSeq number): ties a 2xx to INVITE and its ACK.

    The ACK for a 2xx has a branch of its own (§13.2.2.4), so it is matched to
    the 2xx by dialog and CSeq number instead of by transaction.
    """
    return (message.call_id, message.from_.tag or "", message.to.tag or "", message.cseq.number)


def stamp_via(request: Request, source: Peer) -> None:
    """Record in the top Via where the request really came from.

    §18.2.1: "If the host portion of the "sent-by" parameter contains a domain
    name, or if it contains an IP address that differs from the packet source
    address, the server MUST add a "received" parameter". RFC 3581 §4: an "rport"
    without value is set to the source port, and then "received" is added even
    when it equals sent-by. Responses copy the Via, so the client learns its
    public address.
    """
    values = request.headers.get_all("Via")
    if not values:
        return
    top = Via.parse(values[0])
    changed = False
    if "rport" in top.params and top.params["rport"] is None:
        top.params["rport"] = str(source.port)
        changed = True
    source_host = f"[{source.host}]" if ":" in source.host else source.host
    if "received" not in top.params and (changed or top.host != source_host.lower()):
        # received = "received" EQUAL (IPv4address / IPv6address): no brackets.
        top.params["received"] = source.host
        changed = True
    if changed:
        request.headers.remove("Via")
        for value in reversed([str(top), *values[1:]]):
            request.headers.prepend("Via", value)


def response_destination(via: Via, source: Peer) -> Peer:
    """Where responses to a request from ``source`` with top ``via`` go (§18.2.2).

    Reliable transports answer over the connection the request came on. On UDP
    the address is the ``received`` one, i.e. the packet's source address; the
    port is the source port when the Via has ``rport`` (RFC 3581 §4, symmetric
    response routing, what gets through NAT), else the sent-by port, 5060 by
    default. Multicast ``maddr`` is not supported.
    """
    if source.reliable or "rport" in via.params:
        return source
    return Peer(source.transport, source.host, via.port or 5060)


class ServerTransaction:
    """One INVITE or non-INVITE server transaction, driven by its table."""

    __slots__ = (
        "transaction_id", "request", "source", "destination", "cancelled_transaction_id",
        "state", "acked", "last_response", "ack_keys", "_last_bytes", "_table", "_start",
        "_timers", "_stats",
    )

    def __init__(
        self,
        transaction_id: str,
        request: Request,
        source: Peer,
        timers: TransactionTimers[TimerKey],
        stats: dict[str, int],
        cancelled_transaction_id: str | None = None,
    ) -> None:
        """Create the transaction for a new request; ``start`` passes it up.

        Args:
            transaction_id: from ``server_transaction_id``.
            request: the request that created the transaction.
            source: where it came from.
            timers: this transaction's timers on the layer's heap.
            stats: the layer's counters, updated in place.
            cancelled_transaction_id: for a CANCEL, the INVITE transaction it matches.
        """
        self.transaction_id = transaction_id
        self.request = request
        self.source = source
        self.destination = response_destination(request.via, source)
        self.cancelled_transaction_id = cancelled_transaction_id
        self._timers = timers
        self._stats = stats
        if request.method == "INVITE":
            self._start, self._table = INVITE_SERVER_START, INVITE_SERVER_TABLE
        else:
            self._start, self._table = NON_INVITE_SERVER_START, NON_INVITE_SERVER_TABLE
        self.state = self._start[0]
        self.acked = False
        self.last_response: Response | None = None
        # The dialog keys of the 2xx responses we sent (one, unless the TU forks).
        self.ack_keys: list[tuple[str, str, str, int]] = []
        # Serialized once: retransmissions re-send these exact bytes.
        self._last_bytes: bytes | None = None

    @property
    def terminated(self) -> bool:
        """True once the transaction is over and must be destroyed."""
        return self.state is ServerState.TERMINATED

    def start(self, now: float) -> list[Output]:
        """Run the initial state's entry steps (100 Trying for INVITE, pass up)."""
        return self._run(self._start, now)

    def on_request(self, request: Request, source: Peer, now: float) -> list[Output]:
        """Feed a retransmission of the request, or an ACK matched to this transaction."""
        event = ServerEvent.ACK if request.method == "ACK" else ServerEvent.REQUEST
        return self._feed(event, now, request, source)

    def on_tu_response(self, response: Response, now: float) -> list[Output]:
        """Send a response from the TU, as far as the state allows."""
        event = ServerEvent.of_response(response.status_code)
        outputs = self._feed(event, now, response=response)
        if self.state is ServerState.ACCEPTED and event is ServerEvent.TU_SUCCESS:
            key = ack_dialog_key(response)
            if key not in self.ack_keys:
                self.ack_keys.append(key)
        return outputs

    def on_timer(self, timer: TimerName, now: float) -> list[Output]:
        """Feed a timer of this transaction that fired."""
        return self._feed(timer, now)

    def _feed(
        self,
        event: ServerInput,
        now: float,
        request: Request | None = None,
        source: Peer | None = None,
        response: Response | None = None,
    ) -> list[Output]:
        transition = self._table.get((self.state, event))
        if transition is None:
            level = logging.INFO if isinstance(event, ServerEvent) and response else logging.DEBUG
            log.log(level, "%s: %s ignored in %s", self.transaction_id, event, self.state.value)
            return []
        return self._run(transition, now, request, source, response)

    def _run(
        self,
        transition: ServerTransition,
        now: float,
        request: Request | None = None,
        source: Peer | None = None,
        response: Response | None = None,
    ) -> list[Output]:
        self.state, steps = transition
        out: list[Output] = []
        for step in steps:
            if not isinstance(step, ServerAction):
                self._timers.apply(step, now)
            elif step is ServerAction.SEND_TRYING:
                # §17.2.1: built per §8.2.6 but without a To tag (make_response adds
                # none to a 100).
                out.append(self._send(make_response(self.request, 100)))
            elif step is ServerAction.PASS_UP:
                out.append(
                    RequestReceived(
                        self.request, self.source, self.transaction_id,
                        self.cancelled_transaction_id,
                    )
                )
            elif step is ServerAction.PASS_ACK_UP:
                assert request is not None and source is not None
                out.append(RequestReceived(request, source, None))
            elif step is ServerAction.MARK_ACKED:
                self.acked = True
            elif step is ServerAction.SEND_RESPONSE:
                assert response is not None
                out.append(self._send(response))
            elif step is ServerAction.RESEND_RESPONSE or step is ServerAction.RETRANSMIT_RESPONSE:
                if self._last_bytes is not None:
                    self._stats["retransmissions_sent"] += 1
                    out.append(Transmit(self._last_bytes, self.destination))
            elif step is ServerAction.ABSORB:
                self._stats["retransmissions_absorbed"] += 1
            elif step is ServerAction.TIMEOUT:
                self._stats["timeouts"] += 1
                log.info("%s: no ACK for our final response (Timer H)", self.transaction_id)
                out.append(TransactionTimedOut(self.transaction_id, self.request))
            elif step is ServerAction.REPORT_UNACKED and not self.acked:
                assert self.last_response is not None
                self._stats["ack_timeouts"] += 1
                log.info("%s: no ACK for our 2xx within 64*T1", self.transaction_id)
                out.append(AckTimedOut(self.transaction_id, self.last_response))
        # A zero-length timer armed above (reliable transports) fires right away.
        while (timer := self._timers.pop_due_now()) is not None:
            out += self._feed(timer, now)
        return out

    def _send(self, response: Response) -> Transmit:
        self.last_response = response
        self._last_bytes = bytes(response)
        return Transmit(self._last_bytes, self.destination)
