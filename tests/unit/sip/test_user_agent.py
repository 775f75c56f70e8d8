"""The user agent core, RFC 3261 §8-§15, on a fake clock: both legs of the B2BUA."""

from sip.call_leg import LegState
from sip.digest import DigestClient
from sip.message import Request, Response, make_response
from sip.ua_events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    IncomingCall,
    OfferReceived,
    RegistrationChanged,
)
from sip.uri import SipUri

from ua_harness import PHONE, US, Harness, invite, response_to

SDP = b"v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def statuses(messages: list) -> list[int]:
    return [m.status_code for m in messages if isinstance(m, Response)]


def incoming(h: Harness, **kwargs: object) -> IncomingCall:
    h.deliver(invite(**kwargs))  # type: ignore[arg-type]
    (event,) = [e for e in h.pop_events() if isinstance(e, IncomingCall)]
    return event


# ------------------------------------------------------------------ UAS leg


def test_inbound_call_is_trying_then_offered_then_answered_acked_and_hung_up():
    h = Harness()
    call = incoming(h, body=SDP)
    assert statuses(h.pop_sent()) == [100]
    assert call.leg.state is LegState.INCOMING and call.request.body == SDP

    h.take(h.ua.answer(call.leg, b"v=0 answer", h.now))
    (ok,) = h.pop_sent()
    assert ok.status_code == 200 and ok.body == b"v=0 answer"
    assert ok.to.tag == call.leg.local_tag
    assert ok.headers.get("Contact") == f"<sip:hotline@{US}:5060>"

    h.deliver(invite(method="ACK", branch="z9hG4bKack1", to_tag=call.leg.local_tag))
    assert [type(e) for e in h.pop_events()] == [CallConfirmed]

    h.deliver(invite(method="BYE", branch="z9hG4bKbye1", cseq=2, to_tag=call.leg.local_tag))
    assert statuses(h.pop_sent()) == [200]
    (ended,) = h.pop_events()
    assert isinstance(ended, CallEnded) and ended.reason == "remote hangup"


def test_2xx_is_retransmitted_until_the_ack_arrives():
    h = Harness()
    call = incoming(h)
    h.pop_sent()
    h.take(h.ua.answer(call.leg, b"sdp", h.now))
    h.advance(0.5 + 1.0 + 0.01)  # §13.3.1.4: T1, then 2*T1
    assert statuses(h.pop_sent()) == [200, 200, 200]
    h.deliver(invite(method="ACK", branch="z9hG4bKack1", to_tag=call.leg.local_tag))
    h.advance(10)
    assert h.pop_sent() == []


def test_missing_ack_ends_the_call_with_bye_after_64_t1():
    h = Harness()
    call = incoming(h)
    h.take(h.ua.answer(call.leg, b"sdp", h.now))
    h.pop_sent()
    h.advance(32.1)
    byes = [m for m in h.pop_sent() if isinstance(m, Request)]
    assert [m.method for m in byes] == ["BYE"]
    assert str(byes[0].uri) == "sip:ann@10.1.1.1:5062"
    ended = [e for e in h.pop_events() if isinstance(e, CallEnded)]
    assert [e.reason for e in ended] == ["no ACK"]  # media stops now, not after the BYE's answer


def test_cancel_before_answer_gets_200_and_the_invite_487():
    h = Harness()
    call = incoming(h)
    h.pop_sent()
    h.deliver(invite(method="CANCEL"))
    sent = h.pop_sent()
    assert [(m.status_code, m.cseq.method) for m in sent] == [(200, "CANCEL"), (487, "INVITE")]
    (ended,) = h.pop_events()
    assert isinstance(ended, CallEnded) and ended.status_code == 487
    assert call.leg.state is LegState.ENDED


def test_cancel_that_matches_nothing_gets_481():
    h = Harness()
    h.deliver(invite(method="CANCEL", branch="z9hG4bKnothing"))
    assert statuses(h.pop_sent()) == [481]


def test_unknown_method_gets_501_with_allow():
    h = Harness()
    h.deliver(invite(method="FROBNICATE"))
    (response,) = h.pop_sent()
    assert response.status_code == 501 and "INVITE" in response.headers.get("Allow")


def test_options_keepalive_is_answered_with_capabilities():
    h = Harness()
    h.deliver(invite(method="OPTIONS"))
    (response,) = h.pop_sent()
    assert response.status_code == 200
    assert response.headers.get("Accept") == "application/sdp"


def test_bye_for_an_unknown_dialog_gets_481():
    h = Harness()
    h.deliver(invite(method="BYE", to_tag="nosuch"))
    assert statuses(h.pop_sent()) == [481]


def test_required_extension_we_lack_gets_420_naming_it():
    h = Harness()
    h.deliver(invite(extra="Require: 100rel, timer\r\n"))
    trying, response = h.pop_sent()
    assert (trying.status_code, response.status_code) == (100, 420)
    assert response.headers.get_all("Unsupported") == ["100rel", "timer"]


def test_out_of_order_cseq_in_dialog_gets_500():
    h = Harness()
    call = incoming(h, cseq=5)
    h.take(h.ua.answer(call.leg, b"sdp", h.now))
    h.deliver(invite(method="ACK", branch="z9hG4bKack", cseq=5, to_tag=call.leg.local_tag))
    h.pop_sent()
    h.deliver(invite(method="INFO", branch="z9hG4bKinfo", cseq=4, to_tag=call.leg.local_tag))
    assert statuses(h.pop_sent()) == [500]


def test_reinvite_is_offered_to_the_application_and_answered():
    h = Harness()
    call = incoming(h)
    h.take(h.ua.answer(call.leg, b"sdp", h.now))
    h.deliver(invite(method="ACK", branch="z9hG4bKack", to_tag=call.leg.local_tag))
    h.pop_sent()
    h.pop_events()
    h.deliver(invite(branch="z9hG4bKre", cseq=2, to_tag=call.leg.local_tag, body=b"v=0 hold"))
    (offer,) = h.pop_events()
    assert isinstance(offer, OfferReceived) and offer.request.body == b"v=0 hold"
    h.pop_sent()
    h.take(h.ua.answer_offer(call.leg, 200, h.now, sdp=b"v=0 held"))
    (ok,) = h.pop_sent()
    assert (ok.status_code, ok.cseq.number, ok.body) == (200, 2, b"v=0 held")


def test_reinvite_glare_gets_491():
    h = Harness()
    call = incoming(h)
    h.take(h.ua.answer(call.leg, b"sdp", h.now))
    h.deliver(invite(method="ACK", branch="z9hG4bKack", to_tag=call.leg.local_tag))
    h.pop_sent()
    h.take(h.ua.send_reinvite(call.leg, b"v=0 ours", h.now))
    assert [m.method for m in h.pop_sent()] == ["INVITE"]
    # §14.2: their re-INVITE crosses ours: 491 Request Pending.
    h.deliver(invite(branch="z9hG4bKre", cseq=2, to_tag=call.leg.local_tag, body=b"v=0 theirs"))
    assert statuses(h.pop_sent()) == [100, 491]


def test_invite_guard_refusal_is_sent_instead_of_offering_the_call():
    def busy(request: Request, source: object, now: float) -> Response:
        return make_response(request, 503, to_tag="x", headers=[("Retry-After", "5")])

    h = Harness(guard=busy)
    h.deliver(invite())
    sent = h.pop_sent()
    assert statuses(sent) == [100, 503]
    assert sent[1].headers.get("Retry-After") == "5"
    assert h.pop_events() == []


# ------------------------------------------------------------------ UAC leg


def place_call(h: Harness):
    leg, outputs = h.ua.invite(
        SipUri.parse("sip:nurse1@10.2.2.2:5080"), PHONE, h.now,
        from_uri="<sip:hotline@192.0.2.1>", sdp=SDP,
        headers=[("X-Hotline-Intent", "pharmacy")],
    )
    h.take(outputs)
    (request,) = h.pop_sent()
    return leg, request


def test_outbound_call_rings_is_answered_and_acked():
    h = Harness()
    leg, request = place_call(h)
    assert request.method == "INVITE" and request.headers.get("X-Hotline-Intent") == "pharmacy"
    h.deliver(response_to(request, 180))
    assert [type(e) for e in h.pop_events()] == [CallProgress]
    h.deliver(response_to(request, 200, body=b"v=0 agent"))
    (ack,) = h.pop_sent()
    assert ack.method == "ACK" and ack.cseq.number == request.cseq.number
    assert str(ack.uri) == "sip:nurse1@10.2.2.2:5080"  # §12.2.1.1: the remote target
    (answered,) = h.pop_events()
    assert isinstance(answered, CallAnswered) and leg.remote_sdp == b"v=0 agent"
    # A retransmitted 2xx means our ACK was lost: the same ACK goes again.
    h.deliver(response_to(request, 200, body=b"v=0 agent"))
    (again,) = h.pop_sent()
    assert bytes(again) == bytes(ack)


def test_hangup_before_any_provisional_waits_to_cancel_until_one_arrives():
    h = Harness()
    leg, request = place_call(h)
    h.take(h.ua.hangup(leg, h.now))
    assert h.pop_sent() == []  # §9.1: no CANCEL before a provisional response
    h.deliver(response_to(request, 180))
    (cancel,) = h.pop_sent()
    assert cancel.method == "CANCEL" and cancel.via.branch == request.via.branch
    h.deliver(response_to(request, 487))
    ended = [e for e in h.pop_events() if isinstance(e, CallEnded)]
    assert ended and ended[0].reason == "cancelled"


def test_cancel_200_race_acks_and_then_byes_the_answered_call():
    h = Harness()
    leg, request = place_call(h)
    h.deliver(response_to(request, 180))
    h.take(h.ua.hangup(leg, h.now))
    assert [m.method for m in h.pop_sent()] == ["CANCEL"]
    h.deliver(response_to(request, 200, body=SDP))  # the callee answered anyway
    assert [m.method for m in h.pop_sent()] == ["ACK", "BYE"]
    assert not any(isinstance(e, CallAnswered) for e in h.pop_events())


def test_unanswered_outbound_call_times_out_with_408():
    h = Harness()
    place_call(h)
    h.advance(32.5)  # Timer B = 64*T1
    ended = [e for e in h.pop_events() if isinstance(e, CallEnded)]
    assert ended and ended[0].status_code == 408


def test_rejected_outbound_call_ends_with_the_status():
    h = Harness()
    leg, request = place_call(h)
    h.deliver(response_to(request, 486))
    assert [m.method for m in h.pop_sent()] == ["ACK"]  # the transaction ACKs non-2xx
    (ended,) = [e for e in h.pop_events() if isinstance(e, CallEnded)]
    assert ended.status_code == 486 and leg.state is LegState.ENDED


def test_our_bye_ends_the_call_when_answered():
    h = Harness()
    leg, request = place_call(h)
    h.deliver(response_to(request, 200, body=SDP))
    h.pop_sent()
    h.pop_events()
    h.take(h.ua.hangup(leg, h.now))
    (bye,) = h.pop_sent()
    assert bye.method == "BYE" and bye.to.tag == "agent1"
    # §15.1.1: the session ends when the BYE is sent, not when it is answered.
    (ended,) = h.pop_events()
    assert isinstance(ended, CallEnded) and ended.reason == "local hangup"
    h.deliver(bytes(make_response(bye, 200)))
    assert h.pop_events() == []


# ---------------------------------------------------------------- REGISTER


def register(cseq: int, authorization: str = "", contact: str = "<sip:nurse1@10.1.1.1:5062>",
             expires: int = 600) -> bytes:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"REGISTER sip:{US} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.1.1.1:5062;branch=z9hG4bKreg{cseq};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:nurse1@{US}>;tag=r1\r\nTo: <sip:nurse1@{US}>\r\n"
        f"Call-ID: reg1\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: {contact}\r\nExpires: {expires}\r\n{auth}Content-Length: 0\r\n\r\n"
    ).encode()


def test_register_is_challenged_then_accepted_with_the_binding_listed():
    h = Harness()
    h.deliver(register(1))
    (challenge,) = h.pop_sent()
    assert challenge.status_code == 401
    offers = challenge.headers.get_all("WWW-Authenticate")
    assert any("SHA-256" in offer for offer in offers)
    authorization = DigestClient("nurse1", "secret1").authorize(offers, "REGISTER", f"sip:{US}")
    h.deliver(register(2, authorization))
    (ok,) = h.pop_sent()
    assert ok.status_code == 200
    assert ok.headers.get("Contact") == "<sip:nurse1@10.1.1.1:5062>;expires=600"
    (changed,) = h.pop_events()
    assert isinstance(changed, RegistrationChanged) and changed.aor == f"sip:nurse1@{US}"
    (binding,) = h.registration.registrar.lookup(f"sip:nurse1@{US}", h.now)
    assert binding.source == ("udp", PHONE.host, PHONE.port)  # RFC 3581: where it came from


def test_wrong_password_is_refused_and_repeated_failures_block_the_address():
    h = Harness()
    h.deliver(register(1))
    offers = h.pop_sent()[0].headers.get_all("WWW-Authenticate")
    for cseq in range(2, 5):
        bad = DigestClient("nurse1", "guess").authorize(offers, "REGISTER", f"sip:{US}")
        h.deliver(register(cseq, bad))
    assert statuses(h.pop_sent()) == [403, 403, 403]
    good = DigestClient("nurse1", "secret1").authorize(offers, "REGISTER", f"sip:{US}")
    h.deliver(register(10, good))
    assert h.pop_sent() == []  # blocked: dropped without an answer


def test_invite_claiming_to_be_an_agent_is_challenged_with_407():
    h = Harness()
    h.ua.invite_guard = h.registration.check_agent_request
    h.deliver(invite(from_user="nurse1", from_host=US))
    sent = h.pop_sent()
    assert statuses(sent) == [100, 407]
    assert sent[1].headers.get("Proxy-Authenticate").startswith("Digest")
    h.deliver(invite(call_id="c2", branch="z9hG4bKinv2"))  # an ordinary caller is not
    assert statuses(h.pop_sent()) == [100]
