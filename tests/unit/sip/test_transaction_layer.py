"""The transaction layer as a whole: 2xx reliability, ACK and CANCEL matching, cleanup."""

from fakes import FakeClock, of_type, timed, transmit_times

from sip.message import Request, make_response
from sip.parser import parse_message
from sip.peer import Peer
from sip.transaction_events import (
    AckTimedOut,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from sip.transaction_layer import TransactionLayer
from sip.transaction_server import ServerState

CALLER = Peer("udp", "203.0.113.9", 40000)
CALLER_TCP = Peer("tcp", "203.0.113.9", 40001)
HOTLINE = Peer("udp", "192.0.2.1", 5060)

INVITE = (
    b"INVITE sip:hotline@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKinv1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:ann@example.com>;tag=caller1\r\n"
    b"To: <sip:hotline@192.0.2.1>\r\n"
    b"Call-ID: in-1@example.com\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:ann@10.0.0.5:5062>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

# §13.2.2.4: the ACK for a 2xx is built in the dialog with a new branch.
ACK_2XX = (
    b"ACK sip:hotline@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKack1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:ann@example.com>;tag=caller1\r\n"
    b"To: <sip:hotline@192.0.2.1>;tag=ours\r\n"
    b"Call-ID: in-1@example.com\r\n"
    b"CSeq: 7 ACK\r\n"
    b"Content-Length: 0\r\n\r\n"
)

# §9.1: a CANCEL copies the INVITE's top Via, branch included.
CANCEL = (
    b"CANCEL sip:hotline@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKinv1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:ann@example.com>;tag=caller1\r\n"
    b"To: <sip:hotline@192.0.2.1>\r\n"
    b"Call-ID: in-1@example.com\r\n"
    b"CSeq: 7 CANCEL\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def answered_call(layer: TransactionLayer, source: Peer = CALLER, now: float = 0.0):
    """An INVITE came in and the TU sent 200 OK at ``now``."""
    received = of_type(layer.receive(request(INVITE), source, now), RequestReceived)[0]
    ok = make_response(received.request, 200, to_tag="ours", headers=[
        ("Contact", "<sip:hotline@192.0.2.1>")
    ])
    out = layer.send_response(received.transaction_id, ok, now)
    return received.transaction_id, ok, out


# ------------------------------------------------ 2xx to INVITE (§13.3.1.4)


def test_2xx_is_retransmitted_by_the_layer_from_t1_doubling_to_t2_until_the_ack():
    layer = TransactionLayer()
    tx_id, ok, out = answered_call(layer)
    assert out == [Transmit(bytes(ok), CALLER)]
    assert layer.state_of(tx_id) is ServerState.ACCEPTED
    clock = FakeClock()
    before_ack = clock.run(layer, until=12.0)
    assert [0.0] + transmit_times(before_ack) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert {t.data for _, t in timed(before_ack, Transmit)} == {bytes(ok)}

    ack = request(ACK_2XX)
    assert layer.receive(ack, CALLER, now=12.0) == [RequestReceived(ack, CALLER, None)]
    after_ack = clock.run(layer, until=100.0)
    # Retransmissions stop; Timer L (64*T1 after the 2xx) ends Accepted, no AckTimedOut.
    assert after_ack == [(32.0, TransactionTerminated(tx_id))]
    assert layer.stats["ack_timeouts"] == 0


def test_2xx_without_an_ack_gives_ack_timed_out_after_64_t1():
    layer = TransactionLayer()
    tx_id, ok, _ = answered_call(layer)
    events = FakeClock().run(layer, until=100.0)
    assert transmit_times(events) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timed(events, AckTimedOut) == [(32.0, AckTimedOut(tx_id, ok))]
    assert timed(events, TransactionTerminated) == [(32.0, TransactionTerminated(tx_id))]
    assert layer.stats["ack_timeouts"] == 1
    assert layer.stats["server_transactions"] == 0


def test_2xx_is_retransmitted_over_tcp_too_because_a_later_hop_may_be_udp():
    # §13.3.1.4: "This is independent of whatever transport protocols are used".
    layer = TransactionLayer()
    _, ok, _ = answered_call(layer, CALLER_TCP)
    events = FakeClock().run(layer, until=4.0)
    assert [(at, t.peer) for at, t in timed(events, Transmit)] == [
        (0.5, CALLER_TCP), (1.5, CALLER_TCP), (3.5, CALLER_TCP)
    ]


def test_invite_retransmitted_after_the_2xx_is_absorbed_in_accepted():
    layer = TransactionLayer()
    tx_id, _, _ = answered_call(layer)
    # RFC 6026 §8.7: not a new call, and no re-send (the 2xx timer does that).
    assert layer.receive(request(INVITE), CALLER, now=0.2) == []
    assert layer.stats["server_transactions"] == 1
    assert layer.stats["retransmissions_absorbed"] == 1


def test_every_ack_for_the_2xx_is_passed_up_retransmissions_included():
    layer = TransactionLayer()
    answered_call(layer)
    first = request(ACK_2XX)
    again = request(ACK_2XX)
    assert layer.receive(first, CALLER, now=0.1) == [RequestReceived(first, CALLER, None)]
    assert layer.receive(again, CALLER, now=0.6) == [RequestReceived(again, CALLER, None)]


def test_an_ack_for_another_dialog_is_passed_up_but_does_not_stop_the_2xx():
    layer = TransactionLayer()
    answered_call(layer)
    other = request(ACK_2XX.replace(b"tag=ours", b"tag=someone-else"))
    assert layer.receive(other, CALLER, now=0.1) == [RequestReceived(other, CALLER, None)]
    assert transmit_times(FakeClock(0.1).run(layer, until=2.0)) == [0.5, 1.5]


def test_an_ack_with_another_cseq_does_not_stop_the_2xx():
    layer = TransactionLayer()
    answered_call(layer)
    layer.receive(request(ACK_2XX.replace(b"CSeq: 7 ACK", b"CSeq: 6 ACK")), CALLER, now=0.1)
    assert transmit_times(FakeClock(0.1).run(layer, until=1.0)) == [0.5]


def test_a_stray_ack_is_passed_up_without_a_transaction():
    layer = TransactionLayer()
    ack = request(ACK_2XX)
    assert layer.receive(ack, CALLER, now=0.0) == [RequestReceived(ack, CALLER, None)]
    assert layer.stats["server_transactions"] == 0


# ----------------------------------------------------------- CANCEL (§9.2)


def test_cancel_is_its_own_transaction_and_names_the_invite_it_cancels():
    layer = TransactionLayer()
    invite_id = layer.receive(request(INVITE), CALLER, now=0.0)[1].transaction_id
    out = layer.receive(request(CANCEL), CALLER, now=1.0)
    assert len(out) == 1 and isinstance(out[0], RequestReceived)
    cancel = out[0]
    assert cancel.request.method == "CANCEL"
    assert cancel.cancelled_transaction_id == invite_id
    assert cancel.transaction_id not in (None, invite_id)
    # The TU answers the CANCEL on its own transaction and the INVITE with 487.
    invite = request(INVITE)
    ok = layer.send_response(cancel.transaction_id, make_response(cancel.request, 200), 1.0)
    terminated = make_response(invite, 487, to_tag="ours")
    final = layer.send_response(invite_id, terminated, now=1.0)
    assert [t.peer for t in of_type(ok + final, Transmit)] == [CALLER, CALLER]
    assert parse_message(ok[0].data).cseq.method == "CANCEL"
    assert layer.state_of(invite_id) is ServerState.COMPLETED


def test_cancel_for_an_unknown_invite_has_no_cancelled_transaction():
    layer = TransactionLayer()
    out = layer.receive(request(CANCEL), CALLER, now=0.0)
    assert out[0].cancelled_transaction_id is None
    assert out[0].transaction_id is not None  # the TU answers it 481 on it


def test_cancel_with_the_branch_of_an_invite_from_another_sent_by_does_not_match():
    layer = TransactionLayer()
    layer.receive(request(INVITE), CALLER, now=0.0)
    spoofed = CANCEL.replace(b"10.0.0.5:5062", b"10.6.6.6:5062")
    out = layer.receive(request(spoofed), Peer("udp", "198.51.100.66", 5062), now=0.1)
    assert out[0].cancelled_transaction_id is None


# ------------------------------------------------- cleanup and the timer heap


def test_every_transaction_is_destroyed_when_its_timers_run_out():
    layer = TransactionLayer()
    clock = FakeClock()
    # A confirmed call (Timer L), a rejected one acknowledged (Timer I), a REGISTER
    # answered (Timer J), an outbound OPTIONS answered (Timer K) and an outbound
    # INVITE refused (Timer D).
    answered_call(layer)
    layer.receive(request(ACK_2XX), CALLER, now=0.1)
    rejected = INVITE.replace(b"z9hG4bKinv1", b"z9hG4bKinv2").replace(b"in-1@", b"in-2@")
    rejected_id = layer.receive(request(rejected), CALLER, now=0.0)[1].transaction_id
    layer.send_response(rejected_id, make_response(request(rejected), 486, to_tag="x"), 0.0)
    ack = ACK_2XX.replace(b"z9hG4bKack1", b"z9hG4bKinv2").replace(b"in-1@", b"in-2@")
    layer.receive(request(ack.replace(b"tag=ours", b"tag=x")), CALLER, now=0.2)
    register = request(
        b"REGISTER sip:192.0.2.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bKreg\r\n"
        b"From: <sip:a@192.0.2.1>;tag=r\r\nTo: <sip:a@192.0.2.1>\r\n"
        b"Call-ID: r@x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
    )
    register_id = layer.receive(register, CALLER, now=0.0)[0].transaction_id
    layer.send_response(register_id, make_response(register, 200, to_tag="t"), now=0.0)
    options = request(
        b"OPTIONS sip:agent@198.51.100.7 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt\r\n"
        b"From: <sip:hotline@192.0.2.1>;tag=o\r\nTo: <sip:agent@198.51.100.7>\r\n"
        b"Call-ID: o@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    layer.send_request(options, Peer("udp", "198.51.100.7", 5060), now=0.0)
    layer.receive(make_response(options, 200, to_tag="p"), CALLER, now=0.1)
    outbound = request(INVITE.replace(b"z9hG4bKinv1", b"z9hG4bKout").replace(b"in-1@", b"o-1@"))
    layer.send_request(outbound, Peer("udp", "198.51.100.7", 5060), now=0.0)
    layer.receive(make_response(outbound, 603, to_tag="q"), CALLER, now=0.1)
    assert layer.stats["server_transactions"] == 3
    assert layer.stats["client_transactions"] == 2

    events = clock.run(layer, until=100.0)
    assert len(of_type([o for _, o in events], TransactionTerminated)) == 5
    assert layer.stats["server_transactions"] == 0
    assert layer.stats["client_transactions"] == 0
    assert layer.next_deadline() is None
    assert layer._awaiting_ack == {}  # the 2xx's dialog index is emptied too


def test_next_deadline_is_the_earliest_timer_of_any_transaction():
    layer = TransactionLayer()
    assert layer.next_deadline() is None
    answered_call(layer, now=10.0)  # 2xx retransmit at 10.5
    options = request(
        b"OPTIONS sip:agent@198.51.100.7 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt\r\n"
        b"From: <sip:hotline@192.0.2.1>;tag=o\r\nTo: <sip:agent@198.51.100.7>\r\n"
        b"Call-ID: o@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    layer.send_request(options, Peer("udp", "198.51.100.7", 5060), now=10.2)  # E at 10.7
    assert layer.next_deadline() == 10.5
    layer.on_timer(10.5)
    assert layer.next_deadline() == 10.7


def test_sending_leaves_other_transactions_overdue_timers_to_on_timer():
    # The TU passes send_* outputs straight to the wire; timeouts come from on_timer.
    layer = TransactionLayer()
    agent_tcp = Peer("tcp", "198.51.100.7", 5060)
    options = request(
        b"OPTIONS sip:agent@198.51.100.7 SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKopt\r\n"
        b"From: <sip:hotline@192.0.2.1>;tag=o\r\nTo: <sip:agent@198.51.100.7>\r\n"
        b"Call-ID: o@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    options_id, _ = layer.send_request(options, agent_tcp, now=0.0)  # Timer F at 32 s
    later = request(bytes(options).replace(b"z9hG4bKopt", b"z9hG4bKopt2"))
    _, out = layer.send_request(later, agent_tcp, now=40.0)
    assert [type(o) for o in out] == [Transmit]
    assert of_type(layer.on_timer(40.0), TransactionTimedOut) == [
        TransactionTimedOut(options_id, options)
    ]


def test_send_stateless_transmits_without_creating_a_transaction():
    layer = TransactionLayer()
    bad = make_response(request(INVITE), 400, "Bad Request")
    assert layer.send_stateless(bad, CALLER) == [Transmit(bytes(bad), CALLER)]
    assert layer.stats["server_transactions"] == layer.stats["client_transactions"] == 0
    assert layer.next_deadline() is None


# ------------------------------------------ two layers over a lossy network


def deliver(transmit: Transmit, layer: TransactionLayer, source: Peer, now: float):
    return layer.receive(parse_message(transmit.data), source, now)


def test_a_call_survives_losing_two_invites_and_one_2xx():
    uac, uas = TransactionLayer(), TransactionLayer()
    invite = request(INVITE)
    tx_id, out = uac.send_request(invite, HOTLINE, now=0.0)  # lost
    assert transmit_times(FakeClock().run(uac, until=1.0)) == [0.5]  # lost too
    third = of_type(uac.on_timer(1.5), Transmit)[0]

    at_uas = deliver(third, uas, CALLER, now=1.5)
    trying, received = at_uas
    uas_tx = received.transaction_id
    ok = make_response(received.request, 200, to_tag="ours")
    uas.send_response(uas_tx, ok, now=1.5)  # lost
    assert deliver(trying, uac, HOTLINE, now=1.5)[0].response.status_code == 100

    retransmitted = of_type(uas.on_timer(2.0), Transmit)[0]
    answered = deliver(retransmitted, uac, HOTLINE, now=2.0)
    assert [(type(e), e.response.status_code) for e in answered] == [(ResponseReceived, 200)]
    assert answered[0].transaction_id == tx_id

    # The UAC's TU acknowledges the 2xx outside the transaction (§13.2.2.4).
    ack = request(ACK_2XX)
    (ack_transmit,) = uac.send_stateless(ack, HOTLINE)
    acked = of_type(deliver(ack_transmit, uas, CALLER, now=2.1), RequestReceived)
    assert [event.request.method for event in acked] == ["ACK"]
    assert transmit_times(FakeClock(2.1).run(uas, until=40.0)) == []  # the 2xx stops
    assert uas.stats["ack_timeouts"] == 0
    assert uac.stats["retransmissions_sent"] == 2
