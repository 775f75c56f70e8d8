"""Server transactions, RFC 3261 §17.2 and the Accepted state of RFC 6026, on a fake clock."""

import pytest
from fakes import FakeClock, first_line, gaps, of_type, timed, transmit_times

from sip.errors import LocalProtocolError
from sip.message import Request, Response, make_response
from sip.parser import parse_message
from sip.peer import Peer
from sip.transaction_events import (
    RequestReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from sip.transaction_layer import TransactionLayer
from sip.transaction_server import ServerState

# The caller is behind NAT: its Via says 10.0.0.5:5062, packets come from here.
CALLER = Peer("udp", "203.0.113.9", 40000)
CALLER_TCP = Peer("tcp", "203.0.113.9", 40001)
# An agent on the LAN sends from the address its Via names.
AGENT = Peer("udp", "10.0.0.8", 5060)
AGENT_TCP = Peer("tcp", "10.0.0.8", 50123)

INVITE = (
    b"INVITE sip:hotline@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKserver1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Ann" <sip:ann@example.com>;tag=caller1\r\n'
    b"To: <sip:hotline@192.0.2.1>\r\n"
    b"Call-ID: in-1@example.com\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:ann@10.0.0.5:5062>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

# §17.1.1.3: the ACK for a non-2xx reuses the INVITE's branch; To has our tag.
ACK_NON_2XX = (
    b"ACK sip:hotline@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKserver1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Ann" <sip:ann@example.com>;tag=caller1\r\n'
    b"To: <sip:hotline@192.0.2.1>;tag=ours\r\n"
    b"Call-ID: in-1@example.com\r\n"
    b"CSeq: 7 ACK\r\n"
    b"Content-Length: 0\r\n\r\n"
)

REGISTER = (
    b"REGISTER sip:192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bKreg1\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:agent7@192.0.2.1>;tag=r1\r\n"
    b"To: <sip:agent7@192.0.2.1>\r\n"
    b"Call-ID: reg-1@10.0.0.8\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:agent7@10.0.0.8:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def parsed_response(output: Transmit) -> Response:
    message = parse_message(output.data)
    assert isinstance(message, Response)
    return message


def new_invite(layer: TransactionLayer, source: Peer = CALLER, now: float = 0.0):
    out = layer.receive(request(INVITE), source, now)
    received = of_type(out, RequestReceived)[0]
    return received.transaction_id, received.request, out


# ------------------------------------------------------- INVITE: Proceeding


def test_new_invite_gets_100_trying_at_once_and_is_passed_up():
    layer = TransactionLayer()
    out = layer.receive(request(INVITE), CALLER, now=0.0)
    assert [type(o) for o in out] == [Transmit, RequestReceived]
    trying = parsed_response(out[0])
    assert trying.status_code == 100
    assert trying.to.tag is None  # §17.2.1: a 100 from the transaction gets no To tag
    received = out[1]
    assert received.transaction_id is not None
    assert received.cancelled_transaction_id is None
    assert layer.state_of(received.transaction_id) is ServerState.PROCEEDING
    assert layer.stats["server_transactions"] == 1


def test_retransmitted_invite_is_absorbed_and_the_last_provisional_re_sent():
    layer = TransactionLayer()
    tx_id, invite, _ = new_invite(layer)
    ringing = make_response(invite, 180, to_tag="ours")
    sent = layer.send_response(tx_id, ringing, now=0.2)
    again = layer.receive(request(INVITE), CALLER, now=0.5)
    assert again == sent == [Transmit(bytes(ringing), CALLER)]
    assert layer.stats["retransmissions_absorbed"] == 1
    assert layer.stats["server_transactions"] == 1


def test_invite_retransmitted_before_the_tu_answers_re_sends_100_trying():
    layer = TransactionLayer()
    _, _, first = new_invite(layer)
    assert layer.receive(request(INVITE), CALLER, now=0.5) == [first[0]]


# ------------------------------------------- INVITE: non-2xx final, Completed


def test_non_2xx_final_is_retransmitted_on_timer_g_capped_at_t2_until_timer_h():
    layer = TransactionLayer()
    tx_id, invite, _ = new_invite(layer)
    busy = make_response(invite, 486, to_tag="ours")
    assert layer.send_response(tx_id, busy, now=0.0) == [Transmit(bytes(busy), CALLER)]
    events = FakeClock().run(layer, until=40.0)
    times = [0.0] + transmit_times(events)
    assert gaps(times)[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert max(times) == 31.5
    assert {t.data for _, t in timed(events, Transmit)} == {bytes(busy)}
    # §17.2.1: Timer H: no ACK came; the TU is told, the transaction is destroyed.
    assert timed(events, TransactionTimedOut) == [(32.0, TransactionTimedOut(tx_id, invite))]
    assert layer.stats["server_transactions"] == 0


def test_ack_for_a_non_2xx_confirms_the_transaction_and_is_not_passed_up():
    layer = TransactionLayer()
    tx_id, invite, _ = new_invite(layer)
    layer.send_response(tx_id, make_response(invite, 486, to_tag="ours"), now=0.0)
    assert layer.receive(request(ACK_NON_2XX), CALLER, now=0.3) == []
    assert layer.state_of(tx_id) is ServerState.CONFIRMED
    # A repeated ACK or INVITE is absorbed in Confirmed.
    assert layer.receive(request(ACK_NON_2XX), CALLER, now=1.0) == []
    assert layer.receive(request(INVITE), CALLER, now=1.1) == []
    # Timer G no longer retransmits; §17.2.1: Timer I (T4 on UDP) destroys the transaction.
    assert FakeClock(1.1).run(layer, until=50.0) == [(5.3, TransactionTerminated(tx_id))]
    assert layer.stats["server_transactions"] == 0
    assert layer.stats["retransmissions_absorbed"] == 2


def test_retransmitted_invite_in_completed_re_sends_the_final():
    layer = TransactionLayer()
    tx_id, invite, _ = new_invite(layer)
    busy = make_response(invite, 486, to_tag="ours")
    layer.send_response(tx_id, busy, now=0.0)
    assert layer.receive(request(INVITE), CALLER, now=0.2) == [Transmit(bytes(busy), CALLER)]


def test_over_tcp_the_final_is_not_retransmitted_and_timer_i_is_zero():
    layer = TransactionLayer()
    tx_id, invite, _ = new_invite(layer, CALLER_TCP)
    layer.send_response(tx_id, make_response(invite, 480, to_tag="ours"), now=0.0)
    assert FakeClock().run(layer, until=20.0) == []
    out = layer.receive(request(ACK_NON_2XX), CALLER_TCP, now=20.0)
    assert out == [TransactionTerminated(tx_id)]
    assert layer.stats["server_transactions"] == 0
    assert layer.next_deadline() is None


def test_a_second_final_response_from_the_tu_is_discarded():
    layer = TransactionLayer()
    tx_id, invite, _ = new_invite(layer)
    layer.send_response(tx_id, make_response(invite, 486, to_tag="ours"), now=0.0)
    assert layer.send_response(tx_id, make_response(invite, 200, to_tag="ours"), 0.1) == []
    assert layer.state_of(tx_id) is ServerState.COMPLETED


# ---------------------------------------------------------------- non-INVITE


def test_non_invite_is_passed_up_without_100_and_retransmissions_absorbed_in_trying():
    layer = TransactionLayer()
    out = layer.receive(request(REGISTER), AGENT, now=0.0)
    assert [type(o) for o in out] == [RequestReceived]
    assert layer.state_of(out[0].transaction_id) is ServerState.TRYING
    assert layer.receive(request(REGISTER), AGENT, now=0.5) == []
    assert layer.stats["retransmissions_absorbed"] == 1


def test_non_invite_retransmission_gets_the_last_response_again():
    layer = TransactionLayer()
    received = layer.receive(request(REGISTER), AGENT, now=0.0)[0]
    tx_id = received.transaction_id
    trying = make_response(received.request, 100)
    layer.send_response(tx_id, trying, now=0.1)
    assert layer.state_of(tx_id) is ServerState.PROCEEDING
    assert layer.receive(request(REGISTER), AGENT, now=0.5) == [Transmit(bytes(trying), AGENT)]
    ok = make_response(received.request, 200, to_tag="t")
    layer.send_response(tx_id, ok, now=0.6)
    assert layer.state_of(tx_id) is ServerState.COMPLETED
    assert layer.receive(request(REGISTER), AGENT, now=1.0) == [Transmit(bytes(ok), AGENT)]


def test_timer_j_destroys_the_non_invite_after_64_t1_on_udp_and_at_once_on_tcp():
    layer = TransactionLayer()
    received = layer.receive(request(REGISTER), AGENT, now=0.0)[0]
    layer.send_response(received.transaction_id, make_response(received.request, 200), 1.0)
    assert FakeClock(1.0).run(layer, until=60.0) == [
        (33.0, TransactionTerminated(received.transaction_id))
    ]
    received = layer.receive(request(REGISTER), AGENT_TCP, now=60.0)[0]
    out = layer.send_response(received.transaction_id, make_response(received.request, 200), 60)
    assert out[-1] == TransactionTerminated(received.transaction_id)
    assert layer.stats["server_transactions"] == 0


# ----------------------------------------------------- response destination


def test_with_rport_responses_go_back_to_the_source_address_and_port():
    layer = TransactionLayer()
    tx_id, invite, out = new_invite(layer)
    assert out[0].peer == CALLER
    ok = layer.send_response(tx_id, make_response(invite, 200, to_tag="ours"), now=0.1)
    assert ok[0].peer == CALLER


def test_the_top_via_is_stamped_with_received_and_rport_for_the_client():
    layer = TransactionLayer()
    _, invite, out = new_invite(layer)
    # §18.2.1 and RFC 3581 §4: the response tells the caller its public address.
    via = parsed_response(out[0]).via
    assert via.params["rport"] == "40000"
    assert via.params["received"] == "203.0.113.9"
    assert via.branch == "z9hG4bKserver1"
    assert (via.host, via.port) == ("10.0.0.5", 5062)
    assert invite.via.params["rport"] == "40000"


def test_without_rport_udp_responses_go_to_the_source_address_and_the_via_port():
    layer = TransactionLayer()
    no_rport = INVITE.replace(b";rport", b"")
    out = layer.receive(request(no_rport), CALLER, now=0.0)
    # §18.2.2: the "received" address, the sent-by port.
    assert out[0].peer == Peer("udp", "203.0.113.9", 5062)
    via = parsed_response(out[0]).via
    assert via.params == {"branch": "z9hG4bKserver1", "received": "203.0.113.9"}


def test_via_is_left_alone_when_sent_by_is_the_source_and_there_is_no_rport():
    layer = TransactionLayer()
    direct = INVITE.replace(b";rport", b"")
    out = layer.receive(request(direct), Peer("udp", "10.0.0.5", 5062), now=0.0)
    assert parsed_response(out[0]).headers.get("Via") == (
        "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKserver1"
    )


def test_tcp_responses_go_back_over_the_connection_the_request_came_on():
    layer = TransactionLayer()
    no_rport = INVITE.replace(b";rport", b"").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    out = layer.receive(request(no_rport), CALLER_TCP, now=0.0)
    assert out[0].peer == CALLER_TCP


# ------------------------------------------------------------------ matching


def test_the_same_branch_from_another_sent_by_is_another_transaction():
    layer = TransactionLayer()
    first, _, _ = new_invite(layer)
    other = INVITE.replace(b"10.0.0.5:5062", b"10.0.0.6:5062")
    out = layer.receive(request(other), CALLER, now=0.1)
    second = of_type(out, RequestReceived)[0].transaction_id
    assert second != first
    assert layer.stats["server_transactions"] == 2


def test_rfc2543_requests_without_magic_cookie_match_their_retransmissions_and_ack():
    layer = TransactionLayer()
    old_invite = INVITE.replace(b";branch=z9hG4bKserver1", b"")
    old_ack = ACK_NON_2XX.replace(b";branch=z9hG4bKserver1", b"")
    tx_id = layer.receive(request(old_invite), CALLER, now=0.0)[1].transaction_id
    assert layer.receive(request(old_invite), CALLER, now=0.3)[0].data.startswith(b"SIP/2.0 100")
    layer.send_response(tx_id, make_response(request(old_invite), 404, to_tag="ours"), 0.4)
    assert layer.receive(request(old_ack), CALLER, now=0.5) == []
    assert layer.state_of(tx_id) is ServerState.CONFIRMED
    # Another CSeq is another transaction.
    next_invite = old_invite.replace(b"CSeq: 7 INVITE", b"CSeq: 8 INVITE")
    out = layer.receive(request(next_invite), CALLER, now=0.6)
    assert of_type(out, RequestReceived)[0].transaction_id != tx_id


def test_responding_on_an_unknown_transaction_is_our_bug():
    layer = TransactionLayer()
    _, invite, _ = new_invite(layer)
    with pytest.raises(LocalProtocolError, match="no server transaction"):
        layer.send_response("z9hG4bKnope|x|INVITE", make_response(invite, 200), now=0.0)


def test_a_response_for_another_method_is_refused():
    layer = TransactionLayer()
    tx_id, _, _ = new_invite(layer)
    register_response = make_response(request(REGISTER), 200)
    with pytest.raises(LocalProtocolError, match="REGISTER response"):
        layer.send_response(tx_id, register_response, now=0.0)


def test_the_100_trying_names_the_invite():
    layer = TransactionLayer()
    _, _, out = new_invite(layer)
    trying = parsed_response(out[0])
    assert first_line(out[0].data) == "SIP/2.0 100 Trying"
    assert (trying.call_id, str(trying.cseq)) == ("in-1@example.com", "7 INVITE")
