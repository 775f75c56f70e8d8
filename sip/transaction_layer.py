"""The RFC 3261 §17 transaction layer: matches messages to transactions, runs timers.

Sans-IO: the shell feeds parsed messages with ``receive(message, source, now)``,
the TU sends with ``send_request``/``send_response``/``send_stateless``, and the
shell calls ``on_timer(now)`` at ``next_deadline()``. Every call returns a list of
outputs (``sip.transaction_events``): ``Transmit`` for the wire, the rest for the
TU. All timers of all transactions live on one heap.

Matching and the choices made where the RFCs leave room:

* Responses go to the client transaction of their top Via branch and CSeq
  method (§17.1.3). A response that matches none is dropped and counted as
  ``stray_responses``, a stray 2xx to INVITE included: RFC 6026 rewrites §18.1.2
  (which passed unmatched responses to the core) so that any element other than
  a stateless proxy silently discards them. 2xx retransmissions still reach
  the TU, because the INVITE client transaction waits in Accepted for 64*T1.
* Requests go to the server transaction of their top Via branch, sent-by and
  method (§17.2.3; an ACK counts as the INVITE, a CANCEL is its own). Branches
  without the magic cookie use an RFC 2543 approximation, described at
  ``server_transaction_id``.
* A CANCEL is reported with the INVITE server transaction it matches (§9.2).
* An ACK for a 2xx carries a new branch (§13.2.2.4), so the layer ties it to
  our 2xx by Call-ID, From tag, To tag and CSeq number, stops the 2xx
  retransmissions, and passes it up with no transaction id. ACKs that match
  nothing are passed up too: the TU drops strays (§17.2.3).
* The top Via of each request is stamped with ``received``/``rport``
  (§18.2.1, RFC 3581 §4), and responses go where §18.2.2 says (see
  ``response_destination``).
* ``receive`` first fires the timers due at ``now``, so that a transaction
  whose timer expired does not see a late message. ``send_request`` and
  ``send_response`` fire no other transaction's timers: their outputs are only
  ``Transmit`` and, when a zero-length timer of a reliable transport (D, I, J,
  K) ends the transaction at once, ``TransactionTerminated``.
* Transport errors (§17.1.4, §17.2.4) are not reported to this layer; the
  timeouts cover them.
"""

from __future__ import annotations

import logging

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.message import BRANCH_MAGIC, Request, Response
from sip.peer import Peer
from sip.timers import TimerConfig, TimerHeap, TimerKey, TransactionTimers
from sip.transaction_client import ClientState, ClientTransaction, client_transaction_id
from sip.transaction_events import Output, RequestReceived, TransactionTerminated, Transmit
from sip.transaction_server import (
    ServerState,
    ServerTransaction,
    ack_dialog_key,
    server_transaction_id,
    stamp_via,
)

log = logging.getLogger("hotline.sip")

_CLIENT = "client"
_SERVER = "server"


class TransactionLayer:
    """Every client and server transaction of one UA, and their timers.

    Attributes:
        timers: T1, T2, T4 and the values derived from them.
        stats: counters for metrics: ``retransmissions_sent``,
            ``retransmissions_absorbed``, ``timeouts`` (Timers B, F, H),
            ``ack_timeouts``, ``stray_responses``, and the current number of
            ``client_transactions`` and ``server_transactions``.
    """

    def __init__(self, timers: TimerConfig = TimerConfig()) -> None:  # noqa: B008 - frozen
        self.timers = timers
        self.stats: dict[str, int] = {
            "retransmissions_sent": 0,
            "retransmissions_absorbed": 0,
            "server_transactions": 0,
            "client_transactions": 0,
            "timeouts": 0,
            "ack_timeouts": 0,
            "stray_responses": 0,
        }
        self._heap: TimerHeap[TimerKey] = TimerHeap()
        self._client: dict[str, ClientTransaction] = {}
        self._server: dict[str, ServerTransaction] = {}
        # (Call-ID, From tag, To tag, CSeq number) of each 2xx we sent -> its transaction.
        self._awaiting_ack: dict[tuple[str, str, str, int], str] = {}

    # ----------------------------------------------------------------- wire in

    def receive(self, message: Request | Response, source: Peer, now: float) -> list[Output]:
        """Feed one parsed message from the wire.

        Raises:
            RemoteProtocolError: a header needed for matching is malformed (the
                parser normally caught that already).
        """
        out = self._fire_due(now)
        if isinstance(message, Response):
            out += self._receive_response(message, source, now)
        else:
            out += self._receive_request(message, source, now)
        return out

    def _receive_response(self, response: Response, source: Peer, now: float) -> list[Output]:
        branch = response.via.branch
        tx = None
        if branch:
            tx = self._client.get(client_transaction_id(branch, response.cseq.method))
        if tx is None:
            # §18.1.2 as updated by RFC 6026: no matching client transaction: discard.
            self.stats["stray_responses"] += 1
            log.debug("stray %d response from %s dropped", response.status_code, source)
            return []
        return self._reap(tx, tx.on_response(response, source, now))

    def _receive_request(self, request: Request, source: Peer, now: float) -> list[Output]:
        if request.method != "ACK":
            stamp_via(request, source)
        via = request.via
        tx_id = server_transaction_id(request, via)
        tx = self._server.get(tx_id)
        if request.method == "ACK":
            return self._receive_ack(request, tx, source, now)
        if tx is not None:
            return self._reap(tx, tx.on_request(request, source, now))
        cancelled_id = None
        if request.method == "CANCEL":
            # §9.2: the CANCEL matches the INVITE transaction with its branch and sent-by.
            invite_id = server_transaction_id(request, via, "INVITE")
            if invite_id in self._server:
                cancelled_id = invite_id
        timers = TransactionTimers((_SERVER, tx_id), self._heap, self.timers, source.reliable)
        tx = ServerTransaction(tx_id, request, source, timers, self.stats, cancelled_id)
        self._server[tx_id] = tx
        self._count()
        return self._reap(tx, tx.start(now))

    def _receive_ack(
        self, ack: Request, tx: ServerTransaction | None, source: Peer, now: float
    ) -> list[Output]:
        if tx is None:
            # §13.2.2.4: the ACK for a 2xx is a new transaction: match it by dialog.
            tx_id = self._awaiting_ack.get(ack_dialog_key(ack))
            tx = self._server.get(tx_id) if tx_id is not None else None
        if tx is None:
            return [RequestReceived(ack, source, None)]
        return self._reap(tx, tx.on_request(ack, source, now))

    # ------------------------------------------------------------------ TU in

    def send_request(self, request: Request, peer: Peer, now: float) -> tuple[str, list[Output]]:
        """Start a client transaction for ``request`` and send it to ``peer``.

        The request must already carry its top Via with an RFC 3261 branch.

        Returns:
            The transaction id (responses come with it) and the outputs, the
            first ``Transmit`` of the request among them.

        Raises:
            LocalProtocolError: an ACK (no transaction, use ``send_stateless``),
                no magic-cookie branch, or a transaction with this branch and
                method exists already.
        """
        if request.method == "ACK":
            raise LocalProtocolError(
                "an ACK is not a client transaction (§17.1.1.3, §13.2.2.4): use send_stateless"
            )
        try:
            via = request.via
            cseq = request.cseq
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"cannot send this request: {exc.reason}") from None
        if cseq.method != request.method:
            raise LocalProtocolError(f"CSeq method {cseq.method} differs from {request.method}")
        branch = via.branch
        if not branch or not branch.startswith(BRANCH_MAGIC):
            raise LocalProtocolError(f"§8.1.1.7: the top Via branch must start with {BRANCH_MAGIC}")
        tx_id = client_transaction_id(branch, request.method)
        if tx_id in self._client:
            raise LocalProtocolError(f"client transaction {tx_id} exists already")
        timers = TransactionTimers((_CLIENT, tx_id), self._heap, self.timers, peer.reliable)
        tx = ClientTransaction(tx_id, request, peer, timers, self.stats)
        self._client[tx_id] = tx
        self._count()
        return tx_id, tx.start(now)

    def send_response(self, transaction_id: str, response: Response, now: float) -> list[Output]:
        """Send ``response`` on the server transaction ``transaction_id``.

        It goes where §18.2.2 says (the request's source, see
        ``response_destination``). A 2xx to INVITE is retransmitted by the layer
        until its ACK arrives (§13.3.1.4), and ``AckTimedOut`` comes if none does
        within 64*T1. A response the transaction's state does not take (a second
        final response) is discarded, as §17.2.1 and §17.2.2 require.

        Raises:
            LocalProtocolError: no such transaction (it terminated, or it was
                never ours), or the response's CSeq method is not the request's.
        """
        tx = self._server.get(transaction_id)
        if tx is None:
            raise LocalProtocolError(f"no server transaction {transaction_id!r}")
        if response.cseq.method != tx.request.method:
            raise LocalProtocolError(
                f"a {response.cseq.method} response on a {tx.request.method} transaction"
            )
        out = tx.on_tu_response(response, now)
        for key in tx.ack_keys:
            self._awaiting_ack[key] = transaction_id
        return self._reap(tx, out)

    def send_stateless(self, message: Request | Response, peer: Peer) -> list[Output]:
        """Send ``message`` outside any transaction (an ACK for a 2xx, a 400 to garbage)."""
        return [Transmit(bytes(message), peer)]

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """When ``on_timer`` wants to be called next, or None if no timer runs."""
        return self._heap.next_deadline()

    def on_timer(self, now: float) -> list[Output]:
        """Fire every timer due at ``now``, earliest first."""
        return self._fire_due(now)

    def _fire_due(self, now: float) -> list[Output]:
        out: list[Output] = []
        while (due := self._heap.pop_due(now)) is not None:
            (side, tx_id), timer = due
            tx: ClientTransaction | ServerTransaction | None
            tx = self._client.get(tx_id) if side == _CLIENT else self._server.get(tx_id)
            if tx is not None:
                out += self._reap(tx, tx.on_timer(timer, now))
        return out

    # ------------------------------------------------------------- inspection

    def state_of(self, transaction_id: str) -> ClientState | ServerState | None:
        """The state of a live transaction, or None once it is destroyed."""
        tx = self._client.get(transaction_id) or self._server.get(transaction_id)
        return tx.state if tx is not None else None

    # ---------------------------------------------------------------- helpers

    def _reap(
        self, tx: ClientTransaction | ServerTransaction, out: list[Output]
    ) -> list[Output]:
        """Destroy ``tx`` if it reached Terminated (§17.1.1.2: "destroyed immediately")."""
        if not tx.terminated:
            return out
        tx_id = tx.transaction_id
        if isinstance(tx, ClientTransaction):
            self._heap.disarm_all((_CLIENT, tx_id))
            del self._client[tx_id]
        else:
            self._heap.disarm_all((_SERVER, tx_id))
            del self._server[tx_id]
            for key in tx.ack_keys:
                if self._awaiting_ack.get(key) == tx_id:
                    del self._awaiting_ack[key]
        self._count()
        out.append(TransactionTerminated(tx_id))
        return out

    def _count(self) -> None:
        self.stats["client_transactions"] = len(self._client)
        self.stats["server_transactions"] = len(self._server)
