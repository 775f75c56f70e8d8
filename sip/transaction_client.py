"""Client transactions (RFC 3261 §17.1, with RFC 6026 §8.4's Accepted state).

Each machine is one table: ``(state, input) -> (next state, steps)``. An input is
the class of a response from the wire (1xx, 2xx, 300-699) or a timer firing; the
steps are what the transition does, in order (send, pass up, arm a timer ...).
A pair missing from a table is an input the state ignores, such as a 1xx after
the final response.

INVITE client transaction (§17.1.1.2 Figure 5 as amended by RFC 6026 §8.4)::

    Calling    --Timer A-->   Calling     retransmit, A doubles
    Calling    --Timer B-->   Terminated  inform TU (timeout)
    Calling    --1xx----->    Proceeding  pass up
    Calling/Proceeding --2xx------> Accepted   pass up, start Timer M
    Calling/Proceeding --300-699--> Completed  send ACK, pass up, start Timer D
    Proceeding --1xx----->    Proceeding  pass up
    Completed  --300-699-->   Completed   re-send ACK
    Completed  --Timer D-->   Terminated
    Accepted   --2xx------>   Accepted    pass up (the TU re-sends its ACK)
    Accepted   --Timer M-->   Terminated

Non-INVITE client transaction (§17.1.2.2 Figure 6)::

    Trying     --Timer E-->   Trying      retransmit, E doubles up to T2
    Trying/Proceeding --Timer F--> Terminated  inform TU (timeout)
    Trying/Proceeding --1xx------> Proceeding  pass up
    Trying/Proceeding --200-699--> Completed   pass up, start Timer K
    Proceeding --Timer E-->   Proceeding  retransmit, E = T2
    Completed  --any------>   Completed   absorb
    Completed  --Timer K-->   Terminated
"""

from __future__ import annotations

import logging
from enum import Enum

from sip.headers import Headers
from sip.message import Request, Response
from sip.peer import Peer
from sip.timers import (
    Arm,
    ArmAtT2,
    Backoff,
    Disarm,
    TimerKey,
    TimerName,
    TimerStep,
    TransactionTimers,
)
from sip.transaction_events import Output, ResponseReceived, TransactionTimedOut, Transmit

log = logging.getLogger("hotline.sip")


class ResponseClass(Enum):
    """The class of a response, as the transaction machines tell them apart."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"

    @classmethod
    def of(cls, status_code: int) -> ResponseClass:
        """Classify ``status_code``."""
        if status_code < 200:
            return cls.PROVISIONAL
        if status_code < 300:
            return cls.SUCCESS
        return cls.FAILURE


class ClientState(Enum):
    """States of both client machines (§17.1.1.2, §17.1.2.2, RFC 6026 §8.4)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ClientAction(Enum):
    """What a client transition does besides timers."""

    SEND_REQUEST = "send the request"
    RETRANSMIT_REQUEST = "retransmit the request"
    PASS_UP = "pass the response to the TU"
    SEND_ACK = "build the ACK (§17.1.1.3) and send it"
    RESEND_ACK = "re-send the ACK"
    ABSORB = "absorb a retransmitted response"
    TIMEOUT = "inform the TU of a timeout"


ClientInput = ResponseClass | TimerName
ClientStep = ClientAction | TimerStep
ClientTransition = tuple[ClientState, tuple[ClientStep, ...]]

_S = ClientState
_A = ClientAction
_R = ResponseClass
_T = TimerName

# §17.1.1.2: send the INVITE, start Timer A (unreliable transports only) and Timer B.
INVITE_CLIENT_START: ClientTransition = (_S.CALLING, (_A.SEND_REQUEST, Arm(_T.A), Arm(_T.B)))

INVITE_CLIENT_TABLE: dict[tuple[ClientState, ClientInput], ClientTransition] = {
    # §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the
    # request ... and MUST reset the timer with a value of 2*T1."
    (_S.CALLING, _T.A): (_S.CALLING, (_A.RETRANSMIT_REQUEST, Backoff(_T.A))),
    (_S.CALLING, _T.B): (_S.TERMINATED, (_A.TIMEOUT,)),
    # §17.1.1.2: a 1xx stops the retransmissions; Timer B only matters in Calling.
    (_S.CALLING, _R.PROVISIONAL): (
        _S.PROCEEDING, (Disarm(_T.A), Disarm(_T.B), _A.PASS_UP)
    ),
    # RFC 6026 §8.4: a 2xx moves to Accepted and starts Timer M; no ACK from us.
    (_S.CALLING, _R.SUCCESS): (
        _S.ACCEPTED, (Disarm(_T.A), Disarm(_T.B), Arm(_T.M), _A.PASS_UP)
    ),
    (_S.CALLING, _R.FAILURE): (
        _S.COMPLETED, (Disarm(_T.A), Disarm(_T.B), _A.SEND_ACK, Arm(_T.D), _A.PASS_UP)
    ),
    (_S.PROCEEDING, _R.PROVISIONAL): (_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.PROCEEDING, _R.SUCCESS): (_S.ACCEPTED, (Arm(_T.M), _A.PASS_UP)),
    (_S.PROCEEDING, _R.FAILURE): (_S.COMPLETED, (_A.SEND_ACK, Arm(_T.D), _A.PASS_UP)),
    # §17.1.1.2: "Any retransmissions of the final response that are received while
    # in the Completed state MUST cause the ACK to be re-passed to the transport
    # layer for retransmission, but the newly received response MUST NOT be passed
    # up to the TU."
    (_S.COMPLETED, _R.FAILURE): (_S.COMPLETED, (_A.RESEND_ACK, _A.ABSORB)),
    (_S.COMPLETED, _T.D): (_S.TERMINATED, ()),
    # RFC 6026 §8.4: in Accepted, every matching 2xx (retransmission or another
    # fork's) is passed up to the TU, which acknowledges each one itself.
    (_S.ACCEPTED, _R.SUCCESS): (_S.ACCEPTED, (_A.PASS_UP,)),
    (_S.ACCEPTED, _T.M): (_S.TERMINATED, ()),
}

# §17.1.2.2: send the request, start Timer E (unreliable transports only) and Timer F.
NON_INVITE_CLIENT_START: ClientTransition = (
    _S.TRYING, (_A.SEND_REQUEST, Arm(_T.E), Arm(_T.F))
)

_NON_INVITE_FINAL: tuple[ClientStep, ...] = (Disarm(_T.E), Disarm(_T.F), Arm(_T.K), _A.PASS_UP)

NON_INVITE_CLIENT_TABLE: dict[tuple[ClientState, ClientInput], ClientTransition] = {
    # §17.1.2.2: E doubles "until it reaches T2".
    (_S.TRYING, _T.E): (_S.TRYING, (_A.RETRANSMIT_REQUEST, Backoff(_T.E))),
    (_S.TRYING, _T.F): (_S.TERMINATED, (_A.TIMEOUT,)),
    (_S.TRYING, _R.PROVISIONAL): (_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.TRYING, _R.SUCCESS): (_S.COMPLETED, _NON_INVITE_FINAL),
    (_S.TRYING, _R.FAILURE): (_S.COMPLETED, _NON_INVITE_FINAL),
    # §17.1.2.2: "If Timer E fires while in the Proceeding state, the request MUST
    # be passed to the transport layer for retransmission, and Timer E MUST be
    # reset with a value of T2 seconds."
    (_S.PROCEEDING, _T.E): (_S.PROCEEDING, (_A.RETRANSMIT_REQUEST, ArmAtT2(_T.E))),
    (_S.PROCEEDING, _T.F): (_S.TERMINATED, (_A.TIMEOUT,)),
    (_S.PROCEEDING, _R.PROVISIONAL): (_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.PROCEEDING, _R.SUCCESS): (_S.COMPLETED, _NON_INVITE_FINAL),
    (_S.PROCEEDING, _R.FAILURE): (_S.COMPLETED, _NON_INVITE_FINAL),
    # §17.1.2.2: Completed buffers response retransmissions until Timer K.
    (_S.COMPLETED, _R.PROVISIONAL): (_S.COMPLETED, (_A.ABSORB,)),
    (_S.COMPLETED, _R.SUCCESS): (_S.COMPLETED, (_A.ABSORB,)),
    (_S.COMPLETED, _R.FAILURE): (_S.COMPLETED, (_A.ABSORB,)),
    (_S.COMPLETED, _T.K): (_S.TERMINATED, ()),
}


def client_transaction_id(branch: str, method: str) -> str:
    """The id of a client transaction: §17.1.3 matches on top Via branch + CSeq method.

    The method is part of the id because a CANCEL shares its INVITE's branch
    but is a transaction of its own.
    """
    return f"{branch}|{method}"


class ClientTransaction:
    """One INVITE or non-INVITE client transaction, driven by its table."""

    __slots__ = (
        "transaction_id", "request", "peer", "state", "_table", "_start",
        "_request_bytes", "_ack_bytes", "_timers", "_stats",
    )

    def __init__(
        self,
        transaction_id: str,
        request: Request,
        peer: Peer,
        timers: TransactionTimers[TimerKey],
        stats: dict[str, int],
    ) -> None:
        """Create the transaction; ``start`` sends the request.

        Args:
            transaction_id: from ``client_transaction_id``.
            request: the request, top Via already carrying its branch.
            peer: where the request (and any ACK for a non-2xx) goes.
            timers: this transaction's timers on the layer's heap.
            stats: the layer's counters, updated in place.
        """
        self.transaction_id = transaction_id
        self.request = request
        self.peer = peer
        self._timers = timers
        self._stats = stats
        if request.method == "INVITE":
            self._start, self._table = INVITE_CLIENT_START, INVITE_CLIENT_TABLE
        else:
            self._start, self._table = NON_INVITE_CLIENT_START, NON_INVITE_CLIENT_TABLE
        self.state = self._start[0]
        # Serialized once: every retransmission re-sends these exact bytes (§17.1.1.2).
        self._request_bytes = bytes(request)
        self._ack_bytes: bytes | None = None

    @property
    def terminated(self) -> bool:
        """True once the transaction is over and must be destroyed."""
        return self.state is ClientState.TERMINATED

    def start(self, now: float) -> list[Output]:
        """Send the request and start the timers of the initial state."""
        return self._run(self._start, now)

    def on_response(self, response: Response, source: Peer, now: float) -> list[Output]:
        """Feed a response matched to this transaction (§17.1.3)."""
        return self._feed(ResponseClass.of(response.status_code), now, response, source)

    def on_timer(self, timer: TimerName, now: float) -> list[Output]:
        """Feed a timer of this transaction that fired."""
        return self._feed(timer, now)

    def _feed(
        self,
        event: ClientInput,
        now: float,
        response: Response | None = None,
        source: Peer | None = None,
    ) -> list[Output]:
        transition = self._table.get((self.state, event))
        if transition is None:
            log.debug("%s: %s ignored in %s", self.transaction_id, event, self.state.value)
            return []
        return self._run(transition, now, response, source)

    def _run(
        self,
        transition: ClientTransition,
        now: float,
        response: Response | None = None,
        source: Peer | None = None,
    ) -> list[Output]:
        self.state, steps = transition
        out: list[Output] = []
        for step in steps:
            if not isinstance(step, ClientAction):
                self._timers.apply(step, now)
            elif step is ClientAction.SEND_REQUEST:
                out.append(Transmit(self._request_bytes, self.peer))
            elif step is ClientAction.RETRANSMIT_REQUEST:
                self._stats["retransmissions_sent"] += 1
                out.append(Transmit(self._request_bytes, self.peer))
            elif step is ClientAction.PASS_UP:
                assert response is not None and source is not None
                out.append(ResponseReceived(response, source, self.transaction_id))
            elif step is ClientAction.SEND_ACK:
                assert response is not None
                self._ack_bytes = bytes(build_ack(self.request, response))
                out.append(Transmit(self._ack_bytes, self.peer))
            elif step is ClientAction.RESEND_ACK:
                assert self._ack_bytes is not None
                self._stats["retransmissions_sent"] += 1
                out.append(Transmit(self._ack_bytes, self.peer))
            elif step is ClientAction.ABSORB:
                self._stats["retransmissions_absorbed"] += 1
            elif step is ClientAction.TIMEOUT:
                self._stats["timeouts"] += 1
                log.info("%s: %s timed out", self.transaction_id, self.request.method)
                out.append(TransactionTimedOut(self.transaction_id, self.request))
        # A zero-length timer armed above (reliable transports) fires right away.
        while (timer := self._timers.pop_due_now()) is not None:
            out += self._feed(timer, now)
        return out


def build_ack(invite: Request, response: Response) -> Request:
    """Build the ACK for a non-2xx final response to ``invite`` (§17.1.1.3).

    "The ACK request constructed by the client transaction MUST contain values for
    the Call-ID, From, and Request-URI that are equal to the values of those
    header fields in the request passed to the transport by the client transaction
    (call this the "original request"). The To header field in the ACK MUST equal
    the To header field in the response being acknowledged ... The ACK MUST contain
    a single Via header field, and this MUST be equal to the top Via header field
    of the original request. The CSeq header field in the ACK MUST contain the same
    value for the sequence number as was present in the original request, but the
    method parameter MUST be equal to "ACK". If the INVITE request whose response
    is being acknowledged had Route header fields, those header fields MUST appear
    in the ACK."
    """
    original = invite.headers
    headers = Headers()
    headers.add("Via", original.get("Via") or "")
    for route in original.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")  # §8.1.1.6: every request carries one
    headers.add("From", original.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", original.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri, headers)
