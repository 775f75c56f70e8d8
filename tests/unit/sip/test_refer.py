"""Call transfer through REFER (RFC 3515, RFC 4488) on a fake clock, both directions.

An agent's softphone sends REFER in its dialog with us: we answer 202, send the
NOTIFYs of the implicit subscription and tell the application. We also send
REFER ourselves and follow the NOTIFYs that come back.
"""

import pytest
from ua_harness import PHONE, US, Harness, from_peer, invite, response_to

from sip.call_leg import CallLeg, LegState
from sip.errors import LocalProtocolError
from sip.message import Request, Response, make_response
from sip.refer import (
    parse_refer_to,
    parse_sipfrag_status,
    refer_to_value,
    sipfrag_status,
    uri_headers,
)
from sip.replaces import Replaces
from sip.ua_events import (
    IncomingCall,
    TransferAccepted,
    TransferFailed,
    TransferProgress,
    TransferRequested,
)
from sip.uri import SipUri

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)
ATTENDED = f"<sip:bob@{US}?Replaces=c2%40phone%3Bto-tag%3Dhot9%3Bfrom-tag%3Dph2%3Bearly-only>"


def answered_call(h: Harness) -> CallLeg:
    """An agent called us, we answered, the ACK came: a confirmed dialog (we are UAS)."""
    h.deliver(invite())
    (call,) = [e for e in h.pop_events() if isinstance(e, IncomingCall)]
    h.take(h.ua.answer(call.leg, SDP, h.now))
    h.deliver(invite(method="ACK", branch="z9hG4bKack1", to_tag=call.leg.local_tag))
    h.pop_sent()
    h.pop_events()
    return call.leg


def agent_call(h: Harness) -> CallLeg:
    """We called an agent and they answered: a confirmed dialog (we are UAC)."""
    leg, outputs = h.ua.invite(
        SipUri.parse("sip:nurse1@10.2.2.2:5080"),
        PHONE,
        h.now,
        from_uri=f"<sip:hotline@{US}>",
        sdp=SDP,
    )
    h.take(outputs)
    (request,) = h.pop_sent()
    h.deliver(response_to(request, 200, body=SDP))
    h.pop_sent()
    h.pop_events()
    return leg


def refer(leg: CallLeg, cseq: int, refer_to: str = f"<sip:bob@{US}>", extra: str = "") -> bytes:
    return from_peer(leg, "REFER", cseq, f"Refer-To: {refer_to}\r\n{extra}")


def notify(
    leg: CallLeg,
    cseq: int,
    frag: bytes,
    state: str = "active;expires=60",
    event: str = "refer",
    content_type: str = "message/sipfrag;version=2.0",
) -> bytes:
    extra = f"Event: {event}\r\nSubscription-State: {state}\r\nContent-Type: {content_type}\r\n"
    return from_peer(leg, "NOTIFY", cseq, extra, frag)


def responses(messages: list) -> list[Response]:
    return [m for m in messages if isinstance(m, Response)]


def requests(messages: list) -> list[Request]:
    return [m for m in messages if isinstance(m, Request)]


def transfers(h: Harness) -> list[TransferRequested]:
    return [e for e in h.pop_events() if isinstance(e, TransferRequested)]


# ------------------------------------------------------- receiving REFER


def test_blind_transfer_is_accepted_notified_at_once_and_offered_to_the_application():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2, extra="Referred-By: <sip:nurse1@192.0.2.1>\r\n"))
    accepted, trying = h.pop_sent()
    assert (accepted.status_code, accepted.cseq.method) == (202, "REFER")
    assert accepted.headers.get("Contact") == f"<sip:hotline@{US}:5060>"
    assert accepted.headers.get("Refer-Sub") is None
    # RFC 6665 §4.2.1.2: the subscription's first NOTIFY goes out without waiting.
    assert trying.method == "NOTIFY"
    assert trying.headers.get("Event") == "refer"
    assert trying.headers.get("Subscription-State") == "active;expires=60"
    assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    # In the dialog: their tag in To, ours in From, their Contact as Request-URI.
    assert (trying.to.tag, trying.from_.tag) == ("ph1", leg.local_tag)
    assert str(trying.uri) == "sip:ann@10.1.1.1:5062"
    assert trying.headers.get("Contact") == f"<sip:hotline@{US}:5060>"
    (event,) = transfers(h)
    assert event.leg is leg
    assert str(event.target) == f"sip:bob@{US}"
    assert event.replaces is None
    assert event.referred_by == "<sip:nurse1@192.0.2.1>"
    assert (event.subscription, event.event_id) == (True, None)


def test_attended_transfer_carries_the_escaped_replaces_and_a_target_without_headers():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2, ATTENDED))
    assert [r.status_code for r in responses(h.pop_sent())] == [202]
    (event,) = transfers(h)
    assert event.target == SipUri(user="bob", host=US)
    assert event.replaces == Replaces("c2@phone", "hot9", "ph2", early_only=True)
    assert event.referred_by is None


def test_compact_refer_to_and_params_of_the_target_are_kept():
    h = Harness()
    leg = answered_call(h)
    h.deliver(from_peer(leg, "REFER", 2, "r: <sip:+15551234@gw.example.com;user=phone>\r\n"))
    (event,) = transfers(h)
    assert str(event.target) == "sip:+15551234@gw.example.com;user=phone"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Refer-To: <sip:bob@x>\r\nRefer-To: <sip:carol@x>\r\n", "more than one Refer-To header"),
        ("Refer-To: <sip:bob@x>, <sip:carol@x>\r\n", "more than one Refer-To header"),
        ("", "no Refer-To header"),
        ("Refer-To: <bob>\r\n", "bad Refer-To header: bad URI 'bob'"),
        ("Refer-To: <sip:bob@x?Replaces=c1%3Bto-tag%3Da>\r\n", "missing from-tag in Replaces"),
        (
            "Refer-To: <sip:bob@x?Replaces=a%3Bto-tag%3Db%3Bfrom-tag%3Dc&Replaces=d>\r\n",
            "more than one Replaces in Refer-To",
        ),
        ("Refer-To: <sip:bob@x>\r\nRefer-Sub: maybe\r\n", "bad Refer-Sub 'maybe'"),
    ],
    ids=[
        "two-headers",
        "two-values",
        "none",
        "bad-uri",
        "bad-replaces",
        "two-replaces",
        "bad-refer-sub",
    ],
)
def test_malformed_refer_gets_400_naming_the_problem(extra: str, reason: str):
    h = Harness()
    leg = answered_call(h)
    h.deliver(from_peer(leg, "REFER", 2, extra))
    (response,) = h.pop_sent()
    assert (response.status_code, response.reason) == (400, reason)
    assert h.pop_events() == []
    assert leg.state is LegState.CONFIRMED


def test_progress_is_reported_then_the_final_notify_terminates_the_subscription():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    _, trying = h.pop_sent()
    h.take(h.ua.notify_transfer(leg, 180, "Ringing", h.now))
    (ringing,) = h.pop_sent()
    assert ringing.body == b"SIP/2.0 180 Ringing\r\n"
    assert ringing.headers.get("Subscription-State") == "active;expires=60"
    assert ringing.cseq.number == trying.cseq.number + 1
    h.take(h.ua.notify_transfer(leg, 200, "", h.now))  # empty reason: the standard phrase
    (done,) = h.pop_sent()
    assert done.body == b"SIP/2.0 200 OK\r\n"
    # RFC 3515 §2.4.7: the final NOTIFY terminates with reason noresource.
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert h.ua.notify_transfer(leg, 200, "OK", h.now) == []  # nothing left to report on


def test_a_failed_transfer_is_reported_with_its_status():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    h.pop_sent()
    h.take(h.ua.notify_transfer(leg, 486, "Busy Here", h.now))
    (busy,) = h.pop_sent()
    assert busy.body == b"SIP/2.0 486 Busy Here\r\n"
    assert busy.headers.get("Subscription-State").startswith("terminated")


def test_second_refer_in_a_dialog_is_notified_with_its_cseq_as_event_id():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    h.take(h.ua.notify_transfer(leg, 603, "Declined", h.now))
    h.pop_sent()
    h.pop_events()
    h.deliver(refer(leg, 7, f"<sip:carol@{US}>"))
    accepted, trying = h.pop_sent()
    assert accepted.status_code == 202
    # RFC 3515 §2.4.6: NOTIFYs for the second REFER name it by its CSeq number.
    assert trying.headers.get("Event") == "refer;id=7"
    (event,) = transfers(h)
    assert (str(event.target), event.event_id) == (f"sip:carol@{US}", "7")
    h.take(h.ua.notify_transfer(leg, 200, "OK", h.now))
    (done,) = h.pop_sent()
    assert done.headers.get("Event") == "refer;id=7"


def test_refer_while_the_previous_one_is_unreported_gets_491_until_it_is():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    h.pop_sent()
    h.pop_events()
    h.take(h.ua.notify_transfer(leg, 180, "Ringing", h.now))  # provisional: still pending
    h.pop_sent()
    h.deliver(refer(leg, 3, f"<sip:carol@{US}>"))
    (pending,) = h.pop_sent()
    assert (pending.status_code, pending.headers.get("Retry-After")) == (491, "1")
    assert h.pop_events() == []
    h.take(h.ua.notify_transfer(leg, 200, "OK", h.now))
    h.pop_sent()
    h.deliver(refer(leg, 4, f"<sip:carol@{US}>"))
    assert [r.status_code for r in responses(h.pop_sent())] == [202]
    assert [e.event_id for e in transfers(h)] == ["4"]


def test_refer_sub_false_is_accepted_without_any_notify():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2, extra="Refer-Sub: false\r\nRequire: norefersub\r\n"))
    (accepted,) = h.pop_sent()  # no NOTIFY: RFC 4488 §4
    assert accepted.status_code == 202 and accepted.headers.get("Refer-Sub") == "false"
    (event,) = transfers(h)
    assert event.subscription is False
    assert h.ua.notify_transfer(leg, 100, "Trying", h.now) == []
    assert h.ua.notify_transfer(leg, 200, "OK", h.now) == []
    # The final report still ends the transfer: the dialog's next REFER is taken.
    h.deliver(refer(leg, 3, extra="Refer-Sub: false\r\n"))
    assert [r.status_code for r in responses(h.pop_sent())] == [202]


def test_referrer_hanging_up_makes_our_notify_get_481_without_ending_anything_else():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    _, trying = h.pop_sent()
    h.pop_events()
    h.deliver(bytes(make_response(trying, 481)))
    assert h.pop_events() == [] and h.pop_sent() == []
    assert leg.state is LegState.CONFIRMED
    # RFC 6665 §4.2.2: the subscription is gone, so there is no one to notify.
    assert h.ua.notify_transfer(leg, 200, "OK", h.now) == []


def test_a_200_to_our_notify_changes_nothing_and_later_notifies_still_go():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    _, trying = h.pop_sent()
    h.pop_events()
    h.deliver(bytes(make_response(trying, 200)))
    assert h.pop_events() == [] and h.pop_sent() == []
    h.take(h.ua.notify_transfer(leg, 200, "OK", h.now))
    assert [m.method for m in h.pop_sent()] == ["NOTIFY"]


def test_an_unanswered_notify_times_out_quietly_and_ends_the_subscription():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    h.pop_sent()
    h.pop_events()
    h.advance(33)  # Timer F = 64*T1
    assert h.pop_events() == []
    assert leg.state is LegState.CONFIRMED
    assert h.ua.notify_transfer(leg, 200, "OK", h.now) == []


def test_notify_transfer_on_an_ended_leg_or_a_leg_without_refer_sends_nothing():
    h = Harness()
    leg = answered_call(h)
    assert h.ua.notify_transfer(leg, 200, "OK", h.now) == []
    h.deliver(refer(leg, 2))
    h.deliver(from_peer(leg, "BYE", 3))
    h.pop_sent()
    assert leg.state is LegState.ENDED
    assert h.ua.notify_transfer(leg, 200, "OK", h.now) == []


def test_notify_transfer_refuses_what_is_not_a_status_line():
    h = Harness()
    leg = answered_call(h)
    h.deliver(refer(leg, 2))
    with pytest.raises(LocalProtocolError):
        h.ua.notify_transfer(leg, 42, "Nope", h.now)
    with pytest.raises(LocalProtocolError):
        h.ua.notify_transfer(leg, 200, "OK\r\nEvil: yes", h.now)


def test_refer_for_an_unknown_dialog_or_outside_any_dialog_gets_481():
    h = Harness()
    h.deliver(invite(method="REFER", to_tag="nosuch", extra=f"Refer-To: <sip:bob@{US}>\r\n"))
    h.deliver(invite(method="REFER", branch="z9hG4bKood", extra=f"Refer-To: <sip:bob@{US}>\r\n"))
    assert [r.status_code for r in responses(h.pop_sent())] == [481, 481]
    assert h.pop_events() == []


def test_refer_before_the_call_is_answered_is_forbidden():
    h = Harness()
    h.deliver(invite())
    (call,) = [e for e in h.pop_events() if isinstance(e, IncomingCall)]
    h.pop_sent()
    h.deliver(refer(call.leg, 2))
    (response,) = h.pop_sent()
    assert response.status_code == 403
    assert call.leg.state is LegState.INCOMING


def test_transfer_works_on_a_leg_we_placed_too():
    h = Harness()
    leg = agent_call(h)
    h.deliver(refer(leg, 1, ATTENDED))
    accepted, trying = h.pop_sent()
    assert accepted.status_code == 202
    assert str(trying.uri) == "sip:nurse1@10.2.2.2:5080" and trying.to.tag == "agent1"
    (event,) = transfers(h)
    assert event.replaces == Replaces("c2@phone", "hot9", "ph2", early_only=True)


# --------------------------------------------------------- sending REFER


def sent_refer(h: Harness, leg: CallLeg, refer_to: str = f"sip:bob@{US}", **kwargs) -> Request:
    h.take(h.ua.refer(leg, refer_to, h.now, **kwargs))
    (request,) = h.pop_sent()
    return request


def test_our_refer_is_sent_in_the_dialog_then_accepted_and_followed_to_the_end():
    h = Harness()
    leg = agent_call(h)
    request = sent_refer(h, leg, referred_by=f"<sip:hotline@{US}>")
    assert request.method == "REFER" and str(request.uri) == "sip:nurse1@10.2.2.2:5080"
    assert request.headers.get("Refer-To") == f"<sip:bob@{US}>"
    assert request.headers.get("Referred-By") == f"<sip:hotline@{US}>"
    assert request.headers.get("Contact") == f"<sip:hotline@{US}:5060>"
    assert request.headers.get("Refer-Sub") is None
    assert (request.from_.tag, request.to.tag) == (leg.local_tag, "agent1")
    h.deliver(response_to(request, 202))
    assert h.pop_events() == [TransferAccepted(leg)]
    h.deliver(notify(leg, 1, b"SIP/2.0 100 Trying\r\n"))
    h.deliver(notify(leg, 2, b"SIP/2.0 180 Ringing\r\n"))
    h.deliver(notify(leg, 3, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource"))
    assert [r.status_code for r in responses(h.pop_sent())] == [200, 200, 200]
    assert h.pop_events() == [
        TransferProgress(leg, 100, False),
        TransferProgress(leg, 180, False),
        TransferProgress(leg, 200, True),
    ]
    # The subscription is over: a further NOTIFY matches nothing (RFC 6665 §4.1.3).
    h.deliver(notify(leg, 4, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource"))
    assert [r.status_code for r in responses(h.pop_sent())] == [481]
    assert h.pop_events() == []


def test_a_notify_may_overtake_the_202():
    h = Harness()
    leg = agent_call(h)
    request = sent_refer(h, leg)
    h.deliver(notify(leg, 1, b"SIP/2.0 100 Trying\r\n"))
    h.deliver(response_to(request, 202))
    assert h.pop_events() == [TransferProgress(leg, 100, False), TransferAccepted(leg)]


def test_our_refer_with_replaces_escapes_it_into_the_refer_to_uri():
    h = Harness()
    leg = agent_call(h)
    replaces = Replaces("c2@phone", "hot9", "ph2", early_only=True)
    request = sent_refer(h, leg, replaces=replaces)
    assert request.headers.get("Refer-To") == ATTENDED
    assert parse_refer_to(request.headers).replaces == replaces


def test_refused_refer_fails_the_transfer_and_its_notifies_match_nothing():
    h = Harness()
    leg = agent_call(h)
    request = sent_refer(h, leg)
    h.deliver(response_to(request, 403))
    assert h.pop_events() == [TransferFailed(leg, 403)]
    h.deliver(notify(leg, 1, b"SIP/2.0 100 Trying\r\n"))
    assert [r.status_code for r in responses(h.pop_sent())] == [481]
    assert leg.state is LegState.CONFIRMED


def test_unanswered_refer_fails_with_408():
    h = Harness()
    leg = agent_call(h)
    sent_refer(h, leg)
    h.advance(33)  # Timer F
    assert h.pop_events() == [TransferFailed(leg, 408)]
    assert leg.state is LegState.CONFIRMED


def test_refer_sub_false_is_asked_for_and_honoured():
    h = Harness()
    leg = agent_call(h)
    request = sent_refer(h, leg, refer_sub=False)
    assert request.headers.get("Refer-Sub") == "false"
    h.deliver(bytes(make_response(request, 202, headers=[("Refer-Sub", "false")])))
    assert h.pop_events() == [TransferAccepted(leg)]
    h.deliver(notify(leg, 1, b"SIP/2.0 100 Trying\r\n"))
    assert [r.status_code for r in responses(h.pop_sent())] == [481]


def test_refer_sub_false_ignored_by_the_peer_still_has_its_notifies_followed():
    h = Harness()
    leg = agent_call(h)
    request = sent_refer(h, leg, refer_sub=False)
    h.deliver(response_to(request, 202))  # an RFC 3515-only peer: no Refer-Sub in the 202
    h.pop_events()
    h.deliver(notify(leg, 1, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource"))
    assert [r.status_code for r in responses(h.pop_sent())] == [200]
    assert h.pop_events() == [TransferProgress(leg, 200, True)]


@pytest.mark.parametrize(
    ("frag", "content_type"),
    [
        (b"hello", "message/sipfrag"),
        (b"", "message/sipfrag"),
        (b"SIP/2.0 200 OK\r\n", "text/plain"),
        (b"SIP/2.0 2000 OK\r\n", "message/sipfrag"),
    ],
    ids=["not-a-status-line", "empty", "wrong-type", "bad-code"],
)
def test_unreadable_notify_body_is_still_acknowledged_and_reported_as_status_0(
    frag: bytes, content_type: str
):
    h = Harness()
    leg = agent_call(h)
    sent_refer(h, leg)
    h.deliver(notify(leg, 1, frag, content_type=content_type))
    assert [r.status_code for r in responses(h.pop_sent())] == [200]
    assert h.pop_events() == [TransferProgress(leg, 0, False)]


def test_notifies_of_two_refers_are_told_apart_by_event_id():
    h = Harness()
    leg = agent_call(h)
    first = sent_refer(h, leg)
    second = sent_refer(h, leg, f"sip:carol@{US}")
    h.deliver(notify(leg, 1, b"SIP/2.0 200 OK\r\n", "terminated", f"refer;id={second.cseq.number}"))
    h.deliver(notify(leg, 2, b"SIP/2.0 200 OK\r\n", "terminated", f"refer;id={first.cseq.number}"))
    h.deliver(notify(leg, 3, b"SIP/2.0 200 OK\r\n", "terminated", "refer;id=99999"))
    assert [r.status_code for r in responses(h.pop_sent())] == [200, 200, 481]
    assert [e.final for e in h.pop_events()] == [True, True]


def test_notify_of_another_event_package_gets_489_and_one_without_event_400():
    h = Harness()
    leg = agent_call(h)
    sent_refer(h, leg)
    h.deliver(notify(leg, 1, b"SIP/2.0 100 Trying\r\n", event="dialog"))
    h.deliver(from_peer(leg, "NOTIFY", 2, "Subscription-State: active\r\n"))
    h.deliver(from_peer(leg, "NOTIFY", 3, "Event: refer\r\n"))
    bad_event, no_event, no_state = responses(h.pop_sent())
    assert (bad_event.status_code, bad_event.reason) == (489, "Bad Event")
    assert bad_event.headers.get("Allow-Events") == "refer"
    assert (no_event.status_code, no_event.reason) == (400, "missing Event header")
    assert (no_state.status_code, no_state.reason) == (400, "missing Subscription-State header")
    assert h.pop_events() == []


def test_refer_on_a_leg_without_a_confirmed_dialog_sends_nothing():
    h = Harness()
    leg, outputs = h.ua.invite(
        SipUri.parse("sip:nurse1@10.2.2.2:5080"),
        PHONE,
        h.now,
        from_uri=f"<sip:hotline@{US}>",
        sdp=SDP,
    )
    assert h.ua.refer(leg, f"sip:bob@{US}", h.now) == []


def test_refer_to_our_own_bad_uri_is_our_bug():
    h = Harness()
    leg = agent_call(h)
    with pytest.raises(LocalProtocolError):
        h.ua.refer(leg, "bob", h.now)


# ------------------------------------------------------------- wire helpers


def test_uri_headers_are_unescaped_and_named_canonically():
    assert uri_headers("replaces=a%40b%3Bto-tag%3D1&Require=replaces") == [
        ("Replaces", "a@b;to-tag=1"),
        ("Require", "replaces"),
    ]
    assert uri_headers("") == []


def test_refer_to_value_keeps_existing_uri_headers_and_escapes_what_hvalue_forbids():
    replaces = Replaces("a b%c@h", "1", "2")
    value = refer_to_value(f"sip:bob@{US}?Priority=urgent", replaces)
    assert (
        value
        == f"<sip:bob@{US}?Priority=urgent&Replaces=a%20b%25c%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"
    )
    assert uri_headers(SipUri.parse(value[1:-1]).headers)[1] == ("Replaces", str(replaces))


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"SIP/2.0 180 Ringing\r\n", 180),
        (b"SIP/2.0 200\r\n", 200),
        (b"SIP/2.0 603 Declined\r\nContent-Length: 0\r\n\r\n", 603),
        (b"\r\nSIP/2.0 100 Trying", 100),
        (b"SIP/2.0 20 OK\r\n", None),
        (b"SIP/3.0 200 OK\r\n", None),
        (b"INVITE sip:bob@x SIP/2.0\r\n", None),
    ],
)
def test_sipfrag_status_is_read_from_the_first_line(body: bytes, status: int | None):
    assert parse_sipfrag_status("message/sipfrag", body) == status


def test_sipfrag_status_line_ends_with_crlf():
    # RFC 3420 §2: the fragment's start-line is a whole Status-Line, CRLF included.
    assert sipfrag_status(503, "Service Unavailable") == b"SIP/2.0 503 Service Unavailable\r\n"


# ------------------------------------------------------------ capabilities


def test_allow_and_supported_advertise_transfer():
    h = Harness()
    h.deliver(invite(method="OPTIONS"))
    (options,) = h.pop_sent()
    assert {"REFER", "NOTIFY"} <= set(options.headers.get_all("Allow"))
    assert options.headers.get_all("Supported") == ["norefersub", "replaces"]
    leg = answered_call(h)
    assert leg.state is LegState.CONFIRMED
    h.deliver(invite(call_id="c3", branch="z9hG4bKinv3"))
    (call,) = [e for e in h.pop_events() if isinstance(e, IncomingCall)]
    h.pop_sent()
    h.take(h.ua.answer(call.leg, SDP, h.now))
    (ok,) = h.pop_sent()
    assert "REFER" in ok.headers.get_all("Allow")
    assert "replaces" in ok.headers.get_all("Supported")
    _, outputs = h.ua.invite(
        SipUri.parse("sip:nurse1@10.2.2.2:5080"),
        PHONE,
        h.now,
        from_uri=f"<sip:hotline@{US}>",
        sdp=SDP,
    )
    h.take(outputs)
    (ours,) = h.pop_sent()
    assert "NOTIFY" in ours.headers.get_all("Allow")
    assert "replaces" in ours.headers.get_all("Supported")
