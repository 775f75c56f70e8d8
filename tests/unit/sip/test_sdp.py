"""SDP parse and serialize (RFC 8866): round trips, parsed views, and every error path."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import RemoteProtocolError
from sip.sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

FIXTURES = Path(__file__).parents[2] / "data" / "sdp"
FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.sdp"))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sdp(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.5", "s=-", "c=IN IP4 192.0.2.5", "t=0 0")


def audio(*lines: str, head: tuple[str, ...] = HEAD) -> SessionDescription:
    return SessionDescription.parse(sdp(*head, *lines))


# ------------------------------------------------------------------ round trips


def test_fixtures_are_present():
    assert {"sipp_uac.sdp", "baresip_offer.sdp", "pjsua2_offer.sdp", "linphone_offer.sdp",
            "trunk_session_c.sdp", "chrome_webrtc_offer.sdp"} <= set(FIXTURE_NAMES)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_captured_offers_serialize_back_to_the_same_bytes(name):
    data = fixture(name)
    assert bytes(SessionDescription.parse(data)) == data


def test_rfc_8866_example_with_every_optional_session_line_round_trips():
    data = sdp(
        "v=0",
        "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1",
        "s=Call to John Smith",
        "i=SDP Offer #1",
        "u=http://www.jdoe.example.com/home.html",
        "e=Jane Doe <jane@jdoe.example.com>",
        "p=+1 617 555-6011",
        "c=IN IP4 198.51.100.1",
        "b=CT:128",
        "t=3724394400 3724398000",
        "r=604800 3600 0 90000",
        "t=3724398000 3724401600",
        "z=2882844526 -1h 2898848070 0",
        "k=prompt",
        "a=recvonly",
        "m=audio 49170 RTP/AVP 0",
        "i=voice",
        "b=AS:64",
        "k=prompt",
        "m=audio 49180 RTP/AVP 0",
        "m=video 51372 RTP/AVP 99",
        "c=IN IP6 2001:db8::2",
        "a=rtpmap:99 h263-1998/90000",
    )
    session = SessionDescription.parse(data)
    assert bytes(session) == data
    assert session.information == "SDP Offer #1"
    assert session.emails == ["Jane Doe <jane@jdoe.example.com>"]
    assert session.phones == ["+1 617 555-6011"]
    assert [(t.start_time, t.stop_time, t.repeats) for t in session.times] == [
        (3724394400, 3724398000, ["604800 3600 0 90000"]),
        (3724398000, 3724401600, []),
    ]
    assert session.timing.start_time == 3724394400
    assert session.zone == "2882844526 -1h 2898848070 0"
    assert str(session.bandwidths[0]) == "CT:128" and session.bandwidths[0].value == 128
    assert session.media[0].information == "voice" and session.media[0].key == "prompt"
    assert session.media[2].connection == Connection("IN", "IP6", "2001:db8::2")


def test_bare_lf_input_is_accepted_and_written_back_with_crlf():
    data = fixture("sipp_uac_pcap.sdp")
    session = SessionDescription.parse(data.replace(b"\r\n", b"\n"))
    assert bytes(session) == data


def test_text_input_is_accepted_and_str_gives_the_crlf_text():
    text = fixture("sipp_uac.sdp").decode()
    assert str(SessionDescription.parse(text)) == text


def test_blank_lines_are_tolerated():
    session = SessionDescription.parse(fixture("sipp_uac.sdp") + b"\r\n\r\n")
    assert bytes(session) == fixture("sipp_uac.sdp")


def test_lines_with_unknown_type_letters_are_kept_at_the_end_of_their_section():
    data = sdp(*HEAD, "a=tool:x", "x=session-extension",
               "m=video 6000 RTP/AVP 96", "a=rtpmap:96 PS/90000", "y=0100000001", "f=")
    session = SessionDescription.parse(data)
    assert session.extra_lines == ["x=session-extension"]
    assert session.media[0].extra_lines == ["y=0100000001", "f="]
    assert bytes(session) == data


def test_unknown_attributes_keep_their_exact_value():
    session = SessionDescription.parse(fixture("chrome_webrtc_offer.sdp"))
    semantic = next(a for a in session.attributes if a.name == "msid-semantic")
    assert semantic.value == " WMS 5f3a9c1e-2b7d-4c8e-9a61-0d2e4f6b8a10"
    fingerprint = session.media[0].attribute_value("fingerprint")
    assert fingerprint is not None and fingerprint.startswith("sha-256 4A:1F:D3")
    assert session.media[0].has_attribute("rtcp-mux")


def test_a_description_built_from_objects_serializes_in_rfc_order():
    media = MediaDescription("audio", 20000, "RTP/AVP", ["0", "101"], attributes=[
        Attribute("rtpmap", "0 PCMU/8000"),
        Attribute("rtpmap", "101 telephone-event/8000"),
        Attribute("fmtp", "101 0-16"),
        Attribute("sendrecv"),
    ])
    session = SessionDescription(
        origin=Origin("hotline", 7, 8, "IN", "IP4", "192.0.2.1"),
        connection=Connection.for_address("192.0.2.1"),
        media=[media],
    )
    assert bytes(session) == sdp(
        "v=0", "o=hotline 7 8 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
        "m=audio 20000 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv",
    )


# ------------------------------------------------------------------ session fields


def test_session_fields_of_the_sipp_offer():
    session = SessionDescription.parse(fixture("sipp_uac.sdp"))
    assert session.version == 0
    assert session.origin == Origin("user1", 53655765, 2353687637, "IN", "IP4", "127.0.0.1")
    assert session.session_name == "-"
    assert session.connection == Connection("IN", "IP4", "127.0.0.1")
    assert (session.timing.start_time, session.timing.stop_time) == (0, 0)
    media = session.media[0]
    assert (media.media, media.port, media.proto) == ("audio", 6000, "RTP/AVP")
    assert media.formats == ["0"]


def test_session_level_attributes_stay_at_session_level():
    session = SessionDescription.parse(fixture("baresip_offer.sdp"))
    assert session.attributes == [Attribute("tool", "baresip 1.0.0")]
    assert session.attribute_value("tool") == "baresip 1.0.0"
    assert session.media[0].attributes[0] == Attribute("rtpmap", "96 opus/48000/2")


def test_bandwidth_lines_at_both_levels():
    session = SessionDescription.parse(fixture("pjsua2_offer.sdp"))
    assert [(b.bwtype, b.value) for b in session.bandwidths] == [("AS", 84)]
    assert [(b.bwtype, b.value) for b in session.media[0].bandwidths] == [("TIAS", 64000)]


# ------------------------------------------------------------------ c= lines


def test_media_level_connection_overrides_the_session_one():
    session = audio("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.7", "m=audio 4002 RTP/AVP 0")
    first, second = session.media
    assert first.effective_connection(session) == Connection("IN", "IP4", "198.51.100.7")
    assert second.effective_connection(session) == Connection("IN", "IP4", "192.0.2.5")


def test_connection_only_at_media_level_as_pjsua_sends_it():
    session = SessionDescription.parse(fixture("pjsua2_offer.sdp"))
    assert session.connection is None
    assert session.media[0].effective_connection(session) == Connection("IN", "IP4", "127.0.0.1")


def test_no_connection_anywhere_gives_none():
    session = audio("m=audio 4000 RTP/AVP 0", head=("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"))
    assert session.media[0].effective_connection(session) is None


def test_ipv6_connection():
    session = audio("m=audio 4000 RTP/AVP 0", head=(
        "v=0", "o=- 1 1 IN IP6 ::1", "s=-", "c=IN IP6 ::1", "t=0 0"))
    assert session.connection == Connection("IN", "IP6", "::1")
    assert session.origin.addrtype == "IP6"
    assert not session.connection.is_null


def test_captured_ipv6_offer():
    session = SessionDescription.parse(fixture("baresip_offer_ipv6.sdp"))
    assert session.connection == Connection("IN", "IP6", "fd00::2")
    assert session.media[0].port == 38354


def test_connection_may_name_a_host():
    assert Connection.parse("IN IP4 media.example.com").address == "media.example.com"


def test_multicast_connection_keeps_ttl_and_address_count():
    ip4 = Connection.parse("IN IP4 224.2.1.1/127/3")
    assert (ip4.address, ip4.ttl, ip4.address_count) == ("224.2.1.1", 127, 3)
    assert str(ip4) == "IN IP4 224.2.1.1/127/3"
    ip6 = Connection.parse("IN IP6 ff15::101/3")  # RFC 8866 §5.7: IP6 has no TTL
    assert (ip6.ttl, ip6.address_count) == (None, 3)
    assert str(ip6) == "IN IP6 ff15::101/3"


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_unspecified_addresses_are_null(address):
    assert Connection.for_address(address).is_null


def test_for_address_picks_the_address_type():
    assert Connection.for_address("2001:db8::1") == Connection("IN", "IP6", "2001:db8::1")
    assert Connection.for_address("192.0.2.1") == Connection("IN", "IP4", "192.0.2.1")


# ------------------------------------------------------------------ m= lines and views


def test_rtpmaps_of_opus_g722_and_telephone_event():
    media = SessionDescription.parse(fixture("baresip_offer.sdp")).media[0]
    assert media.payload_types == [96, 9, 0, 8, 101]
    assert media.rtpmaps == {
        96: RtpMap("opus", 48000, 2),
        9: RtpMap("G722", 8000),  # RFC 3551 §4.5.2: 8000 although G.722 audio is 16 kHz
        0: RtpMap("PCMU", 8000),
        8: RtpMap("PCMA", 8000),
        101: RtpMap("telephone-event", 8000),
    }
    assert media.fmtp == {96: "stereo=1;sprop-stereo=1", 101: "0-15"}
    assert media.ptime_ms == 20


def test_static_payload_types_without_rtpmap_use_the_rfc_3551_table():
    media = audio("m=audio 4000 RTP/AVP 0 8 9 18").media[0]
    assert media.rtpmaps == {
        0: RtpMap("PCMU", 8000), 8: RtpMap("PCMA", 8000),
        9: RtpMap("G722", 8000), 18: RtpMap("G729", 8000),
    }


def test_a_static_type_listed_with_only_an_fmtp_is_still_known():
    media = SessionDescription.parse(fixture("linphone_offer.sdp")).media[0]
    assert media.rtpmaps[18] == RtpMap("G729", 8000)
    assert media.fmtp[18] == "annexb=yes"


def test_a_dynamic_type_without_rtpmap_is_unknown():
    assert audio("m=audio 4000 RTP/AVP 96").media[0].rtpmaps == {}


def test_payload_type_numbers_are_scoped_to_their_media_section():
    audio_section, video_section = SessionDescription.parse(fixture("linphone_offer.sdp")).media
    assert audio_section.rtpmaps[96] == RtpMap("opus", 48000, 2)
    assert video_section.rtpmaps[96] == RtpMap("VP8", 90000)


def test_rtpmap_text_and_codec_identity():
    assert str(RtpMap("opus", 48000, 2)) == "opus/48000/2"
    assert str(RtpMap("PCMU", 8000)) == "PCMU/8000"
    assert RtpMap("pcmu", 8000).same_codec(RtpMap("PCMU", 8000))  # names are case-insensitive
    assert not RtpMap("opus", 48000, 1).same_codec(RtpMap("opus", 48000, 2))


def test_ptime_written_with_a_decimal_point_is_read():
    assert audio("m=audio 4000 RTP/AVP 0", "a=ptime:20.0").media[0].ptime_ms == 20


def test_ptime_is_none_when_absent():
    assert audio("m=audio 4000 RTP/AVP 0").media[0].ptime_ms is None


def test_non_rtp_media_keeps_token_formats_and_has_no_payload_views():
    media = audio("m=image 0 udptl t38", "a=T38FaxVersion:0").media[0]
    assert media.formats == ["t38"]
    assert not media.is_rtp
    assert (media.payload_types, media.rtpmaps, media.fmtp) == ([], {}, {})


def test_secure_profiles_count_as_rtp():
    media = SessionDescription.parse(fixture("chrome_webrtc_offer.sdp")).media[0]
    assert media.is_rtp
    assert media.rtpmaps[111] == RtpMap("opus", 48000, 2)
    assert media.rtpmaps[126] == RtpMap("telephone-event", 8000)


def test_port_count_round_trips():
    session = audio("m=audio 49170/2 RTP/AVP 0")
    assert (session.media[0].port, session.media[0].port_count) == (49170, 2)
    assert "m=audio 49170/2 RTP/AVP 0\r\n" in str(session)


# ------------------------------------------------------------------ direction and hold


def test_direction_defaults_to_sendrecv():
    session = audio("m=audio 4000 RTP/AVP 0")
    assert session.direction == "sendrecv"
    assert session.media[0].direction == "sendrecv"
    assert session.media[0].effective_direction(session) == "sendrecv"


def test_session_level_direction_applies_to_media_without_one():
    session = audio("a=sendonly", "m=audio 4000 RTP/AVP 0")
    assert session.direction == "sendonly"
    assert session.media[0].direction == "sendrecv"  # its own lines say nothing
    assert session.media[0].effective_direction(session) == "sendonly"


def test_media_level_direction_overrides_session_level():
    session = audio("a=inactive", "m=audio 4000 RTP/AVP 0", "a=recvonly")
    assert session.media[0].effective_direction(session) == "recvonly"


@pytest.mark.parametrize(
    ("lines", "on_hold"),
    [
        (("m=audio 4000 RTP/AVP 0", "a=sendonly"), True),
        (("m=audio 4000 RTP/AVP 0", "a=inactive"), True),
        (("m=audio 4000 RTP/AVP 0", "a=recvonly"), False),
        (("m=audio 4000 RTP/AVP 0", "a=sendrecv"), False),
        (("m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0"), True),  # RFC 3264 §8.4, RFC 2543 style
        (("m=audio 4000 RTP/AVP 0", "c=IN IP6 ::"), True),
    ],
)
def test_is_hold(lines, on_hold):
    session = audio(*lines)
    assert session.media[0].is_hold(session) is on_hold
    assert session.media[0].is_hold() is on_hold


def test_is_hold_sees_a_session_level_null_connection():
    session = audio("m=audio 4000 RTP/AVP 0", head=(
        "v=0", "o=- 1 2 IN IP4 192.0.2.5", "s=-", "c=IN IP4 0.0.0.0", "t=0 0"))
    assert session.media[0].is_hold(session)
    assert not session.media[0].is_hold()  # its own lines alone say nothing


def test_captured_pjsua_hold_offer_is_a_hold():
    session = SessionDescription.parse(fixture("pjsua2_hold.sdp"))
    # RFC 3264 §8: the re-offer keeps sess-id and adds one to sess-version.
    assert session.origin.sess_version == session.origin.sess_id + 1
    assert session.media[0].effective_direction(session) == "sendonly"
    assert session.media[0].is_hold(session)


# ------------------------------------------------------------------ errors

ERRORS = [
    (b"", "empty SDP body"),
    (b"\r\n\r\n", "empty SDP body"),
    (sdp("o=- 1 1 IN IP4 h", "s=-", "t=0 0"), "missing v= line"),
    (sdp("o=- 1 1 IN IP4 h", "v=0", "s=-", "t=0 0"), "v= line must come first"),
    (sdp("v=1", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"), "unsupported SDP version 1"),
    (sdp("v=", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"), "non-numeric version in v= line"),
    (sdp("v=0", "v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"), "more than one v= line"),
    (sdp("v=0", "s=-", "t=0 0"), "missing o= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "t=0 0"), "missing s= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-"), "missing t= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "m=audio 4000 RTP/AVP 0", "t=0 0"),
     "t= line is not allowed in a media section"),
    (sdp("v=0", "o=- 1 IN IP4 h", "s=-", "t=0 0"), "bad o= line"),
    (sdp("v=0", "o=- x 1 IN IP4 h", "s=-", "t=0 0"), "non-numeric sess-id in o= line 'x'"),
    (sdp("v=0", "o=- 1 ² IN IP4 h", "s=-", "t=0 0"), "non-numeric sess-version in o= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"),
     "more than one o= line at session level"),
    (sdp(*HEAD, "c=IN IP4 192.0.2.6"), "more than one c= line at session level"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0"), "bad t= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=now 0"), "non-numeric start time in t= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "r=604800 3600 0", "t=0 0"),
     "r= line before any t= line"),
    (sdp(*HEAD, "b=AS"), "bad b= line"),
    (sdp(*HEAD, "b=AS:lots"), "non-numeric bandwidth in b= line"),
    (sdp(*HEAD, "hello"), "bad SDP line 'hello'"),
    (sdp(*HEAD, " a=sendrecv"), "bad SDP line"),
    (sdp(*HEAD, "1=x"), "bad SDP line"),
    (sdp(*HEAD, "a=:value"), "empty attribute name"),
    (sdp(*HEAD, "m=audio"), "bad m= line"),
    (sdp(*HEAD, "m=audio 4000"), "bad m= line"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP"), "m= line without formats"),
    (sdp(*HEAD, "m=audio port RTP/AVP 0"), "non-numeric port in m= line 'port'"),
    (sdp(*HEAD, "m=audio -1 RTP/AVP 0"), "non-numeric port in m= line"),
    (sdp(*HEAD, "m=audio 70000 RTP/AVP 0"), "port in m= line 70000 out of range"),
    (sdp(*HEAD, "m=audio 4000/x RTP/AVP 0"), "non-numeric port count in m= line"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP PCMU"), "non-numeric payload type in m=audio line"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 128"), "payload type in m=audio line 128 out of range"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4", "t=0 0"), "bad c= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 1.2.3.4 x", "t=0 0"), "bad c= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP5 1.2.3.4", "t=0 0"),
     "unknown address type 'IP5'"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 ::1", "t=0 0"), "'::1' is not an IP4 address"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP6 192.0.2.1", "t=0 0"),
     "'192.0.2.1' is not an IP6 address"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 256.1.1.1", "t=0 0"), "not an IP4 address"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 bad_host!", "t=0 0"), "not an IP4 address"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 224.2.1.1/ttl", "t=0 0"),
     "non-numeric number in c= address"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP6 ff15::1/3/4", "t=0 0"),
     "too many '/' parts"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "c=IN IP4 192.0.2.6", "c=IN IP4 192.0.2.7"),
     "more than one c= line in m=audio"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "o=- 1 1 IN IP4 h"),
     "o= line is not allowed in a media section"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus"), "bad a=rtpmap '96 opus'"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/fast/2"),
     "non-numeric clock rate in a=rtpmap"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/48000/two"),
     "non-numeric channels in a=rtpmap"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 96", "a=rtpmap:opus 96/48000"),
     "non-numeric payload type in a=rtpmap"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/0/2"),
     "clock rate in a=rtpmap 0 out of range"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 101", "a=fmtp:te 0-15"),
     "non-numeric payload type in a=fmtp"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=ptime:short"), "bad a=ptime value 'short'"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=ptime:0"), "a=ptime '0' out of range"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=ptime:nan"), "out of range"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=sendonly", "a=recvonly"),
     "conflicting direction attributes ['recvonly', 'sendonly'] in m=audio"),
    (sdp(*HEAD, "a=sendrecv", "a=inactive"), "conflicting direction attributes"),
    (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\xff\r\nt=0 0\r\n", "SDP is not UTF-8 (byte 25)"),
]


@pytest.mark.parametrize(("data", "reason"), ERRORS, ids=[reason for _, reason in ERRORS])
def test_bad_sdp_is_answered_488_with_a_precise_reason(data, reason):
    with pytest.raises(RemoteProtocolError) as caught:
        SessionDescription.parse(data)
    assert reason in caught.value.reason
    assert caught.value.status_code == 488


def test_a_repeated_direction_is_not_a_conflict():
    session = audio("m=audio 4000 RTP/AVP 0", "a=sendonly", "a=sendonly")
    assert session.media[0].direction == "sendonly"


def _mutations():
    data = st.sampled_from([fixture(name) for name in FIXTURE_NAMES])
    position = st.integers(min_value=0, max_value=1300)
    junk = st.binary(max_size=12) | st.sampled_from(
        [b"\r\n", b" ", b"=", b":", b"/", b"0", b"m=", b"c=IN IP4 ", b"a=rtpmap:", b"\xff"]
    )
    return st.tuples(data, position, position, junk)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mangled_sdp_parses_or_raises_remote_protocol_error_only(mutation):
    data, start, length, junk = mutation
    mangled = data[:start] + junk + data[start + length % 40:]
    try:
        session = SessionDescription.parse(mangled)
    except RemoteProtocolError as exc:
        assert exc.status_code == 488
        return
    # What parses serializes, and parses again to the same objects.
    assert SessionDescription.parse(bytes(session)) == session
