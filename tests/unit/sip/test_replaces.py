"""The Replaces header (RFC 3891): its grammar, and INVITEs that carry it.

An agent doing an attended transfer first calls bob through us, then REFERs the
caller to bob with that second dialog in a Replaces; the INVITE with Replaces
that results names a dialog *we* are in, tags written from our side.
"""

import pytest
from ua_harness import PHONE, US, Harness, from_peer, invite, response_to

from sip.call_leg import LegState
from sip.errors import RemoteProtocolError
from sip.replaces import Replaces, tags_match
from sip.ua_events import IncomingCall
from sip.uri import SipUri

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


# ------------------------------------------------------------------ grammar


def test_replaces_value_is_parsed_into_call_id_tags_and_flag():
    value = Replaces.parse("425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only")
    assert value == Replaces("425928@bobster.example.org", "7743", "6472", early_only=True)
    # §3: the receiver of the INVITE compares to-tag with its own tag.
    assert (value.local_tag, value.remote_tag) == ("7743", "6472")


def test_parameter_order_case_and_whitespace_do_not_matter_and_extensions_are_ignored():
    value = Replaces.parse(" abc ; From-Tag = f1 ;x-vendor=1; TO-TAG=t1 ;flag ")
    assert value == Replaces("abc", "t1", "f1", early_only=False)


@pytest.mark.parametrize(
    "value",
    [
        "425928@bobster.example.org;to-tag=7743;from-tag=6472",
        "a84b4c76e66710;to-tag=0;from-tag=1928301774;early-only",
        "weird.(id)/[x]:{y}@host;to-tag=a.b-c!~;from-tag=x'y*z",
    ],
)
def test_replaces_round_trips_through_parse_and_format(value: str):
    assert str(Replaces.parse(value)) == value
    parsed = Replaces.parse(value)
    assert Replaces.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc;from-tag=f", "missing to-tag in Replaces"),
        ("abc;to-tag=t", "missing from-tag in Replaces"),
        ("abc;to-tag=t;from-tag=f;to-tag=u", "repeated to-tag in Replaces"),
        (";to-tag=t;from-tag=f", "bad Call-ID in Replaces ';to-tag=t;from-tag=f'"),
        ("a b;to-tag=t;from-tag=f", "bad Call-ID in Replaces 'a b;to-tag=t;from-tag=f'"),
        ("abc;to-tag=;from-tag=f", "bad Replaces parameter 'to-tag='"),
        ("abc;to-tag=t t;from-tag=f", "bad to-tag in Replaces 't t'"),
        ("abc;to-tag=t;;from-tag=f", "bad Replaces parameter ''"),
        ("", "bad Call-ID in Replaces ''"),
    ],
)
def test_malformed_replaces_is_refused_naming_the_problem(value: str, reason: str):
    with pytest.raises(RemoteProtocolError) as caught:
        Replaces.parse(value)
    assert (caught.value.status_code, caught.value.reason) == (400, reason)


def test_a_zero_tag_also_matches_a_missing_tag_of_an_rfc_2543_dialog():
    # §6.1: for compatibility with RFC 2543 UAs, a tag of zero matches zero and null.
    assert tags_match("0", "") and tags_match("0", "0")
    assert tags_match("abc", "abc")
    assert not tags_match("abc", "") and not tags_match("", "0") and not tags_match("1", "0")


# ------------------------------------------------------- INVITE with Replaces


def test_invite_with_replaces_offers_the_call_with_the_parsed_header():
    h = Harness()
    h.deliver(invite(extra="Replaces: c9@phone;to-tag=hot1;from-tag=ph9\r\nRequire: replaces\r\n"))
    assert [m.status_code for m in h.pop_sent()] == [100]  # replaces is supported: no 420
    (call,) = h.pop_events()
    assert isinstance(call, IncomingCall)
    assert call.replaces == Replaces("c9@phone", "hot1", "ph9")


def test_invite_without_replaces_has_none():
    h = Harness()
    h.deliver(invite())
    (call,) = h.pop_events()
    assert isinstance(call, IncomingCall) and call.replaces is None


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Replaces: c9@phone;to-tag=hot1\r\n", "missing from-tag in Replaces"),
        (
            "Replaces: a;to-tag=1;from-tag=2\r\nReplaces: b;to-tag=1;from-tag=2\r\n",
            "more than one Replaces header",
        ),
    ],
    ids=["malformed", "two"],
)
def test_invite_with_a_bad_replaces_gets_400_and_no_call(extra: str, reason: str):
    h = Harness()
    h.deliver(invite(extra=extra))
    trying, refused = h.pop_sent()
    assert (trying.status_code, refused.status_code, refused.reason) == (100, 400, reason)
    assert h.pop_events() == []
    assert h.ua.active_legs == []


def test_replaces_in_a_request_other_than_invite_gets_400():
    h = Harness()
    h.deliver(invite(method="OPTIONS", extra="Replaces: a;to-tag=1;from-tag=2\r\n"))
    (response,) = h.pop_sent()
    assert (response.status_code, response.reason) == (400, "Replaces header in OPTIONS")


# ---------------------------------------------------------- dialog lookup


def test_attended_transfer_finds_the_consultation_dialog_the_agent_has_with_us():
    h = Harness()
    # The agent calls bob through us: we are UAS of that dialog, our tag in its To.
    h.deliver(invite(call_id="consult@agent", from_user="nurse1", from_host=US))
    (consult,) = h.pop_events()
    h.take(h.ua.answer(consult.leg, SDP, h.now))
    h.pop_sent()
    # The agent's Replaces names it from the view of whoever receives the INVITE: us.
    replaces = Replaces("consult@agent", to_tag=consult.leg.local_tag, from_tag="ph1")
    found = h.ua.leg_for_dialog(replaces.call_id, replaces.local_tag, replaces.remote_tag)
    assert found is consult.leg
    # The tags the other way round, or another Call-ID, name no dialog of ours.
    assert h.ua.leg_for_dialog("consult@agent", "ph1", consult.leg.local_tag) is None
    assert h.ua.leg_for_dialog("other@agent", consult.leg.local_tag, "ph1") is None
    # Once the dialog is over it is gone (the application answers 481, or 603, §3).
    h.deliver(
        invite(
            method="ACK",
            call_id="consult@agent",
            branch="z9hG4bKack",
            from_user="nurse1",
            from_host=US,
            to_tag=consult.leg.local_tag,
        )
    )
    h.deliver(from_peer(consult.leg, "BYE", 2))
    assert consult.leg.state is LegState.ENDED
    assert h.ua.leg_for_dialog("consult@agent", consult.leg.local_tag, "ph1") is None


def test_a_dialog_we_placed_is_found_by_our_from_tag_and_their_to_tag():
    h = Harness()
    leg, outputs = h.ua.invite(
        SipUri.parse("sip:nurse1@10.2.2.2:5080"),
        PHONE,
        h.now,
        from_uri=f"<sip:hotline@{US}>",
        sdp=SDP,
    )
    h.take(outputs)
    assert h.ua.leg_for_dialog(leg.call_id, leg.local_tag, "agent1") is None  # no dialog yet
    (request,) = h.pop_sent()
    h.deliver(response_to(request, 180))
    assert h.ua.leg_for_dialog(leg.call_id, leg.local_tag, "agent1") is leg  # early dialog
    h.deliver(response_to(request, 200, body=SDP))
    assert h.ua.leg_for_dialog(leg.call_id, leg.local_tag, "agent1") is leg
    assert h.ua.leg_for_dialog(leg.call_id, leg.local_tag, "agent2") is None
