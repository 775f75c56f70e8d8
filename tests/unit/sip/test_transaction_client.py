"""Client transactions, RFC 3261 §17.1 and RFC 6026 §8.4, on a fake clock."""

import pytest
from fakes import FakeClock, first_line, gaps, of_type, timed, transmit_times

from sip.errors import LocalProtocolError
from sip.message import Request, make_response
from sip.parser import parse_message
from sip.peer import Peer
from sip.timers import TimerConfig
from sip.transaction_client import ClientState
from sip.transaction_events import (
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from sip.transaction_layer import TransactionLayer

AGENT_UDP = Peer("udp", "198.51.100.7", 5060)
AGENT_TCP = Peer("tcp", "198.51.100.7", 5060)

INVITE = (
    b"INVITE sip:agent7@198.51.100.7 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKclient1;rport\r\n"
    b"Route: <sip:proxy1.example.net;lr>\r\n"
    b"Route: <sip:proxy2.example.net;lr>\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:hotline@192.0.2.1>;tag=ours1\r\n"
    b"To: <sip:agent7@198.51.100.7>\r\n"
    b"Call-ID: call-1@192.0.2.1\r\n"
    b"CSeq: 4 INVITE\r\n"
    b"Contact: <sip:hotline@192.0.2.1:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\n"
    b"v=0\n"
)

OPTIONS = (
    b"OPTIONS sip:agent7@198.51.100.7 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKclient2;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:hotline@192.0.2.1>;tag=ours2\r\n"
    b"To: <sip:agent7@198.51.100.7>\r\n"
    b"Call-ID: ping-1@192.0.2.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def invite() -> Request:
    return request(INVITE)


def cancel_for(invite_request: Request) -> Request:
    text = (
        b"CANCEL sip:agent7@198.51.100.7 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKclient1;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:hotline@192.0.2.1>;tag=ours1\r\n"
        b"To: <sip:agent7@198.51.100.7>\r\n"
        b"Call-ID: call-1@192.0.2.1\r\n"
        b"CSeq: 4 CANCEL\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    return request(text)


# ----------------------------------------------------------- INVITE: Calling


def test_invite_is_sent_once_at_once_with_its_serialized_bytes():
    layer = TransactionLayer()
    sent = invite()
    tx_id, out = layer.send_request(sent, AGENT_UDP, now=0.0)
    assert out == [Transmit(bytes(sent), AGENT_UDP)]
    assert layer.state_of(tx_id) is ClientState.CALLING
    assert layer.stats["client_transactions"] == 1


def test_timer_a_retransmits_the_invite_at_intervals_doubling_from_t1():
    layer = TransactionLayer()
    _, out = layer.send_request(invite(), AGENT_UDP, now=0.0)
    clock = FakeClock()
    events = clock.run(layer, until=16.0)
    times = [0.0] + transmit_times(events)
    # §17.1.1.2: T1, 2*T1, 4*T1 ...; Timer A is not capped at T2 (8 s > T2 = 4 s).
    assert gaps(times) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert {t.data for _, t in timed(events, Transmit)} == {out[0].data}
    assert layer.stats["retransmissions_sent"] == 5


def test_timer_b_times_out_the_invite_after_64_t1_with_seven_transmissions():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    events = FakeClock().run(layer, until=60.0)
    assert [0.0] + transmit_times(events) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert timed(events, TransactionTimedOut) == [(32.0, TransactionTimedOut(tx_id, sent))]
    assert timed(events, TransactionTerminated) == [(32.0, TransactionTerminated(tx_id))]
    assert layer.stats["timeouts"] == 1
    assert layer.stats["client_transactions"] == 0
    assert layer.next_deadline() is None


def test_timers_follow_the_configured_t1():
    layer = TransactionLayer(TimerConfig(t1_s=0.1, t2_s=0.4))
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    events = FakeClock().run(layer, until=10.0)
    assert timed(events, TransactionTimedOut) == [
        (pytest.approx(6.4), TransactionTimedOut(tx_id, sent))
    ]
    assert transmit_times(events)[:3] == pytest.approx([0.1, 0.3, 0.7])


def test_invite_over_tcp_is_never_retransmitted_but_still_times_out():
    layer = TransactionLayer()
    tx_id, out = layer.send_request(invite(), AGENT_TCP, now=0.0)
    assert len(of_type(out, Transmit)) == 1
    events = FakeClock().run(layer, until=60.0)
    assert transmit_times(events) == []
    assert [at for at, _ in timed(events, TransactionTimedOut)] == [32.0]


def test_provisional_response_stops_timer_a_and_timer_b():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    ringing = make_response(sent, 180, to_tag="agent")
    out = layer.receive(ringing, AGENT_UDP, now=0.2)
    assert out == [ResponseReceived(ringing, AGENT_UDP, tx_id)]
    assert layer.state_of(tx_id) is ClientState.PROCEEDING
    # §17.1.1.2: no retransmissions and no timeout in Proceeding: the INVITE may ring.
    assert FakeClock(0.2).run(layer, until=300.0) == []
    assert layer.next_deadline() is None


def test_every_provisional_response_in_proceeding_is_passed_up():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    layer.receive(make_response(sent, 100), AGENT_UDP, now=0.1)
    progress = make_response(sent, 183, to_tag="agent")
    assert layer.receive(progress, AGENT_UDP, now=0.2) == [
        ResponseReceived(progress, AGENT_UDP, tx_id)
    ]


# ---------------------------------------------------- INVITE: non-2xx finals


def test_486_is_acked_by_the_transaction_with_the_headers_of_17_1_1_3():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    busy = make_response(sent, 486, to_tag="agent9")
    out = layer.receive(busy, AGENT_UDP, now=0.3)
    assert out[1:] == [ResponseReceived(busy, AGENT_UDP, tx_id)]
    assert isinstance(out[0], Transmit) and out[0].peer == AGENT_UDP
    ack = parse_message(out[0].data)
    assert isinstance(ack, Request)
    assert first_line(out[0].data) == "ACK sip:agent7@198.51.100.7 SIP/2.0"
    # One Via: the INVITE's top Via, so the ACK shares the INVITE's branch.
    assert ack.headers.get_all("Via") == [
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKclient1;rport"
    ]
    assert ack.headers.get_all("Route") == [
        "<sip:proxy1.example.net;lr>", "<sip:proxy2.example.net;lr>"
    ]
    assert ack.headers.get("From") == "<sip:hotline@192.0.2.1>;tag=ours1"
    assert ack.headers.get("To") == "<sip:agent7@198.51.100.7>;tag=agent9"
    assert ack.call_id == "call-1@192.0.2.1"
    assert str(ack.cseq) == "4 ACK"
    assert ack.headers.get("Max-Forwards") == "70"
    assert ack.body == b"" and ack.headers.get("Content-Type") is None
    assert layer.state_of(tx_id) is ClientState.COMPLETED


def test_retransmitted_final_re_sends_the_same_ack_and_is_not_passed_up():
    layer = TransactionLayer()
    sent = invite()
    layer.send_request(sent, AGENT_UDP, now=0.0)
    busy = make_response(sent, 486, to_tag="agent9")
    first_ack = layer.receive(busy, AGENT_UDP, now=0.3)[0]
    again = layer.receive(busy, AGENT_UDP, now=0.8)
    assert again == [first_ack]
    assert layer.stats["retransmissions_absorbed"] == 1


def test_timer_d_destroys_the_completed_invite_after_32_s_on_udp():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    layer.receive(make_response(sent, 603, to_tag="a"), AGENT_UDP, now=1.0)
    events = FakeClock(1.0).run(layer, until=100.0)
    assert events == [(33.0, TransactionTerminated(tx_id))]
    assert layer.stats["client_transactions"] == 0


def test_timer_d_is_zero_on_tcp_so_the_transaction_ends_with_its_ack():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_TCP, now=0.0)
    busy = make_response(sent, 486, to_tag="a")
    out = layer.receive(busy, AGENT_TCP, now=1.0)
    assert [type(o) for o in out] == [Transmit, ResponseReceived, TransactionTerminated]
    assert layer.stats["client_transactions"] == 0
    assert layer.next_deadline() is None


# --------------------------------------------------- INVITE: 2xx, Accepted


def test_2xx_moves_the_invite_to_accepted_without_an_ack_from_the_transaction():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    ok = make_response(sent, 200, to_tag="agent9")
    # §13.2.2.4: the TU acknowledges a 2xx, not the transaction.
    assert layer.receive(ok, AGENT_UDP, now=0.4) == [ResponseReceived(ok, AGENT_UDP, tx_id)]
    assert layer.state_of(tx_id) is ClientState.ACCEPTED
    assert FakeClock(0.4).run(layer, until=10.0) == []  # Timer A stopped


def test_2xx_retransmissions_in_accepted_are_all_passed_up():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    ok = make_response(sent, 200, to_tag="agent9")
    layer.receive(ok, AGENT_UDP, now=0.4)
    # RFC 6026 §8.4: every 2xx goes up so the TU re-sends its ACK.
    assert layer.receive(ok, AGENT_UDP, now=0.9) == [ResponseReceived(ok, AGENT_UDP, tx_id)]
    forked = make_response(sent, 200, to_tag="other-fork")
    assert layer.receive(forked, AGENT_UDP, now=1.0) == [
        ResponseReceived(forked, AGENT_UDP, tx_id)
    ]


def test_timer_m_ends_accepted_and_later_2xx_are_stray():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    ok = make_response(sent, 200, to_tag="agent9")
    layer.receive(ok, AGENT_UDP, now=1.0)
    assert FakeClock(1.0).run(layer, until=40.0) == [(33.0, TransactionTerminated(tx_id))]
    assert layer.receive(ok, AGENT_UDP, now=41.0) == []
    assert layer.stats["stray_responses"] == 1


def test_provisional_after_the_final_response_is_ignored():
    layer = TransactionLayer()
    sent = invite()
    layer.send_request(sent, AGENT_UDP, now=0.0)
    layer.receive(make_response(sent, 200, to_tag="a"), AGENT_UDP, now=0.1)
    assert layer.receive(make_response(sent, 180, to_tag="a"), AGENT_UDP, now=0.2) == []


def test_late_final_after_timer_b_fired_is_stray_even_if_on_timer_was_not_called():
    layer = TransactionLayer()
    sent = invite()
    tx_id, _ = layer.send_request(sent, AGENT_TCP, now=0.0)
    out = layer.receive(make_response(sent, 200, to_tag="a"), AGENT_TCP, now=32.5)
    assert out == [TransactionTimedOut(tx_id, sent), TransactionTerminated(tx_id)]
    assert layer.stats["stray_responses"] == 1


# ------------------------------------------------------------- non-INVITE


def test_timer_e_doubles_from_t1_and_is_capped_at_t2():
    layer = TransactionLayer()
    layer.send_request(request(OPTIONS), AGENT_UDP, now=0.0)
    events = FakeClock().run(layer, until=20.0)
    times = [0.0] + transmit_times(events)
    assert gaps(times) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_timer_f_times_out_the_non_invite_after_64_t1():
    layer = TransactionLayer()
    sent = request(OPTIONS)
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    events = FakeClock().run(layer, until=60.0)
    assert timed(events, TransactionTimedOut) == [(32.0, TransactionTimedOut(tx_id, sent))]
    assert max(transmit_times(events)) < 32.0
    assert layer.stats["client_transactions"] == 0


def test_non_invite_in_proceeding_retransmits_every_t2():
    layer = TransactionLayer()
    sent = request(OPTIONS)
    layer.send_request(sent, AGENT_UDP, now=0.0)
    layer.receive(make_response(sent, 100), AGENT_UDP, now=0.2)
    events = FakeClock(0.2).run(layer, until=13.0)
    # The pending Timer E still fires at 0.5; from then on §17.1.2.2 resets it to T2.
    assert transmit_times(events) == [0.5, 4.5, 8.5, 12.5]


def test_non_invite_final_is_passed_up_once_and_its_retransmissions_absorbed():
    layer = TransactionLayer()
    sent = request(OPTIONS)
    tx_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    ok = make_response(sent, 200, to_tag="agent")
    assert layer.receive(ok, AGENT_UDP, now=0.1) == [ResponseReceived(ok, AGENT_UDP, tx_id)]
    assert layer.receive(ok, AGENT_UDP, now=0.6) == []
    assert layer.stats["retransmissions_absorbed"] == 1
    assert layer.state_of(tx_id) is ClientState.COMPLETED


def test_timer_k_destroys_the_non_invite_after_t4_on_udp_and_at_once_on_tcp():
    layer = TransactionLayer()
    sent = request(OPTIONS)
    udp_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    layer.receive(make_response(sent, 404, to_tag="a"), AGENT_UDP, now=1.0)
    assert FakeClock(1.0).run(layer, until=10.0) == [(6.0, TransactionTerminated(udp_id))]

    tcp_request = request(OPTIONS.replace(b"z9hG4bKclient2", b"z9hG4bKclient3"))
    tcp_id, _ = layer.send_request(tcp_request, AGENT_TCP, now=10.0)
    out = layer.receive(make_response(tcp_request, 200, to_tag="a"), AGENT_TCP, now=10.5)
    assert out[-1] == TransactionTerminated(tcp_id)
    assert layer.stats["client_transactions"] == 0


# ------------------------------------------------------ matching and misuse


def test_cancel_is_a_transaction_of_its_own_sharing_the_invite_branch():
    layer = TransactionLayer()
    sent = invite()
    invite_id, _ = layer.send_request(sent, AGENT_UDP, now=0.0)
    layer.receive(make_response(sent, 180, to_tag="a"), AGENT_UDP, now=0.1)
    cancel = cancel_for(sent)
    cancel_id, _ = layer.send_request(cancel, AGENT_UDP, now=1.0)
    assert cancel_id != invite_id
    cancel_ok = make_response(cancel, 200, to_tag="a")
    terminated = make_response(sent, 487, to_tag="a")
    assert layer.receive(cancel_ok, AGENT_UDP, now=1.1) == [
        ResponseReceived(cancel_ok, AGENT_UDP, cancel_id)
    ]
    out = layer.receive(terminated, AGENT_UDP, now=1.2)
    assert out[1] == ResponseReceived(terminated, AGENT_UDP, invite_id)
    assert first_line(out[0].data).startswith("ACK ")


def test_responses_matching_no_transaction_are_dropped_and_counted():
    layer = TransactionLayer()
    sent = invite()
    layer.send_request(sent, AGENT_UDP, now=0.0)
    other_branch = request(INVITE.replace(b"z9hG4bKclient1", b"z9hG4bKnotours"))
    # A response to a CANCEL we never sent shares the branch but not the method.
    cancel_response = make_response(cancel_for(sent), 200, to_tag="a")
    assert layer.receive(make_response(other_branch, 200, to_tag="a"), AGENT_UDP, 0.1) == []
    assert layer.receive(cancel_response, AGENT_UDP, now=0.2) == []
    assert layer.stats["stray_responses"] == 2
    assert layer.stats["client_transactions"] == 1


def test_ack_cannot_start_a_client_transaction():
    layer = TransactionLayer()
    ack = request(OPTIONS.replace(b"OPTIONS", b"ACK"))
    with pytest.raises(LocalProtocolError, match="send_stateless"):
        layer.send_request(ack, AGENT_UDP, now=0.0)


def test_a_branch_without_the_magic_cookie_is_refused():
    layer = TransactionLayer()
    old_style = request(OPTIONS.replace(b"z9hG4bKclient2", b"1234"))
    with pytest.raises(LocalProtocolError, match="z9hG4bK"):
        layer.send_request(old_style, AGENT_UDP, now=0.0)


def test_the_same_request_cannot_be_sent_as_two_transactions():
    layer = TransactionLayer()
    layer.send_request(request(OPTIONS), AGENT_UDP, now=0.0)
    with pytest.raises(LocalProtocolError, match="exists already"):
        layer.send_request(request(OPTIONS), AGENT_UDP, now=0.1)
