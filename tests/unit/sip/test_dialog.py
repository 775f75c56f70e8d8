"""Dialogs, RFC 3261 §12: identity, route sets, CSeq rules, in-dialog requests."""

import pytest

from sip.dialog import Dialog, DialogState, new_branch
from sip.errors import RemoteProtocolError
from sip.message import make_response
from sip.parser import parse_message
from sip.peer import Peer

CALLER = Peer("udp", "192.0.2.10", 5062)

INVITE = (
    b"INVITE sip:hotline@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Ann" <sip:ann@example.com>;tag=caller1\r\n'
    b"To: <sip:hotline@192.0.2.1>\r\n"
    b"Call-ID: d1@example.com\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Record-Route: <sip:p1.example.com;lr>\r\n"
    b"Record-Route: <sip:p2.example.com;lr>\r\n"
    b"Contact: <sip:ann@10.0.0.5:5062>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def uas_dialog() -> Dialog:
    return Dialog.from_uas(parse_message(INVITE), "ours1", CALLER)


def test_uas_dialog_takes_identity_target_and_route_set_from_the_request():
    dialog = uas_dialog()
    assert dialog.dialog_id == ("d1@example.com", "ours1", "caller1")
    assert str(dialog.remote_target) == "sip:ann@10.0.0.5:5062"
    # §12.1.1: the UAS keeps the Record-Route order.
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert dialog.remote_cseq == 7
    assert dialog.peer == CALLER


def test_uac_dialog_reverses_the_record_route_of_the_response():
    invite = parse_message(INVITE)
    response = make_response(invite, 200, to_tag="callee9", headers=[
        ("Record-Route", "<sip:p1.example.com;lr>"),
        ("Record-Route", "<sip:p2.example.com;lr>"),
        ("Contact", "<sip:bob@198.51.100.7>"),
    ])
    dialog = Dialog.from_uac(invite, response, CALLER)
    assert dialog.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.remote_tag == "callee9"
    assert str(dialog.remote_target) == "sip:bob@198.51.100.7"


def test_in_dialog_request_targets_the_contact_and_carries_the_route_set():
    dialog = uas_dialog()
    first_cseq = dialog.local_cseq
    bye = dialog.create_request("BYE", "192.0.2.1", 5060)
    assert bye.method == "BYE"
    assert str(bye.uri) == "sip:ann@10.0.0.5:5062"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.from_.tag == "ours1" and bye.to.tag == "caller1"
    assert bye.cseq.number == first_cseq + 1
    assert bye.via.branch.startswith("z9hG4bK")


def test_ack_reuses_the_invite_cseq_number():
    dialog = uas_dialog()
    ack = dialog.create_request("ACK", "192.0.2.1", 5060, cseq=42)
    assert (ack.cseq.number, ack.cseq.method) == (42, "ACK")


def test_strict_router_becomes_the_request_uri():
    dialog = uas_dialog()
    dialog.route_set = ["<sip:strict.example.com>", "<sip:p2.example.com;lr>"]
    bye = dialog.create_request("BYE", "192.0.2.1", 5060)
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:ann@10.0.0.5:5062>"]


def test_remote_cseq_must_increase_but_ack_and_cancel_are_exempt():
    dialog = uas_dialog()
    lower = parse_message(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 6 INFO").replace(
        b"INVITE sip:", b"INFO sip:"))
    with pytest.raises(RemoteProtocolError) as err:
        dialog.check_remote_cseq(lower)
    assert err.value.status_code == 500
    ack = parse_message(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 7 ACK").replace(
        b"INVITE sip:", b"ACK sip:"))
    dialog.check_remote_cseq(ack)
    higher = parse_message(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 8 BYE").replace(
        b"INVITE sip:", b"BYE sip:"))
    dialog.check_remote_cseq(higher)
    assert dialog.remote_cseq == 8


def test_dialog_creating_request_without_contact_is_refused():
    request = parse_message(INVITE.replace(b"Contact: <sip:ann@10.0.0.5:5062>\r\n", b""))
    with pytest.raises(RemoteProtocolError, match="Contact"):
        Dialog.from_uas(request, "t", CALLER)


def test_branches_are_unique_and_carry_the_magic_cookie():
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(branch.startswith("z9hG4bK") for branch in branches)
