"""Offer/answer (RFC 3264): our offers, our answers to peers' offers, and their answers to ours."""

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.offer_answer import (
    G722,
    OPUS,
    PCMA,
    PCMU,
    Codec,
    MediaCapabilities,
    NegotiatedMedia,
    build_offer,
    negotiate_answer,
    process_answer,
)
from sip.sdp import Connection, SessionDescription

FIXTURES = Path(__file__).parents[2] / "data" / "sdp"
LOCAL_IP = "192.0.2.1"
RTP_PORT = 20000
CAPS = MediaCapabilities.default()


def fixture(name: str) -> SessionDescription:
    return SessionDescription.parse((FIXTURES / name).read_bytes())


def sdp(*lines: str) -> SessionDescription:
    return SessionDescription.parse("".join(line + "\r\n" for line in lines))


def offer(*media_lines: str, connection: str = "c=IN IP4 198.51.100.7") -> SessionDescription:
    return sdp("v=0", "o=peer 5 5 IN IP4 198.51.100.7", "s=-", connection, "t=0 0", *media_lines)


def answer_to(remote_offer: SessionDescription, caps: MediaCapabilities = CAPS,
              **kwargs: object) -> NegotiatedMedia:
    return negotiate_answer(remote_offer, LOCAL_IP, RTP_PORT, caps, session_id=42, **kwargs)


def answer_lines(media: NegotiatedMedia) -> list[str]:
    return media.answer.lines()


# ------------------------------------------------------------------ codecs and capabilities


def test_codec_rtpmap_and_sample_rate():
    assert str(G722.rtpmap) == "G722/8000"
    assert G722.sample_rate_hz == 16000  # RFC 3551 §4.5.2: the RTP clock says 8000
    assert PCMU.sample_rate_hz == 8000
    assert str(OPUS.rtpmap) == "opus/48000/2"
    assert OPUS.sample_rate_hz == 48000


def test_default_capabilities_prefer_g711_then_g722_then_opus():
    assert [codec.name for codec in CAPS.codecs] == ["PCMU", "PCMA", "G722", "opus"]
    assert CAPS.telephone_event and CAPS.telephone_event_payload_type == 101


def test_capabilities_from_codec_names_keep_the_given_order():
    caps = MediaCapabilities.from_names(["pcma", "PCMU"], telephone_event=False)
    assert caps.codecs == (PCMA, PCMU)
    assert not caps.telephone_event


def test_capabilities_from_an_unknown_codec_name_is_our_bug():
    with pytest.raises(LocalProtocolError, match="unknown codec 'G729'"):
        MediaCapabilities.from_names(["PCMU", "G729"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codecs": ()}, "at least one codec"),
        ({"codecs": (PCMU, replace(PCMA, payload_type=0))}, "duplicate payload types"),
        ({"codecs": (OPUS,), "telephone_event_payload_type": 96}, "duplicate payload types"),
        ({"codecs": (replace(OPUS, payload_type=128),)}, "0..127"),
    ],
)
def test_inconsistent_capabilities_are_our_bug(kwargs, message):
    with pytest.raises(LocalProtocolError, match=message):
        MediaCapabilities(**kwargs)


# ------------------------------------------------------------------ build_offer


def test_offer_lists_every_codec_in_our_order_with_telephone_event():
    assert bytes(build_offer(LOCAL_IP, RTP_PORT, CAPS, session_id=42)) == (
        b"v=0\r\n"
        b"o=hotline 42 42 IN IP4 192.0.2.1\r\n"
        b"s=hotline\r\n"
        b"c=IN IP4 192.0.2.1\r\n"
        b"t=0 0\r\n"
        b"m=audio 20000 RTP/AVP 0 8 9 96 101\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:9 G722/8000\r\n"
        b"a=rtpmap:96 opus/48000/2\r\n"
        b"a=fmtp:96 useinbandfec=1\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\n"
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
    )


def test_offer_parses_back_to_itself():
    ours = build_offer(LOCAL_IP, RTP_PORT, CAPS, session_id=42)
    assert SessionDescription.parse(bytes(ours)) == ours


def test_offer_on_ipv6():
    ours = build_offer("2001:db8::5", RTP_PORT, CAPS, session_id=42)
    assert ours.connection == Connection("IN", "IP6", "2001:db8::5")
    assert str(ours.origin) == "hotline 42 42 IN IP6 2001:db8::5"


def test_hold_offer_is_sendonly_with_the_next_session_version():
    held = build_offer(LOCAL_IP, RTP_PORT, CAPS, session_id=42, direction="sendonly",
                       session_version=43, ptime_ms=30)
    assert (held.origin.sess_id, held.origin.sess_version) == (42, 43)
    assert held.media[0].direction == "sendonly"
    assert held.media[0].ptime_ms == 30


def test_offer_without_telephone_event():
    caps = MediaCapabilities((PCMA,), telephone_event=False)
    ours = build_offer(LOCAL_IP, RTP_PORT, caps, session_id=1)
    assert ours.media[0].formats == ["8"]
    assert ours.media[0].fmtp == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rtp_port": 0}, "RTP port 0"),
        ({"rtp_port": 65536}, "RTP port 65536"),
        ({"ptime_ms": 0}, "ptime 0 ms"),
        ({"direction": "hold"}, "direction must be one of"),
    ],
)
def test_offer_arguments_we_cannot_use_are_our_bug(kwargs, message):
    args = {"local_ip": LOCAL_IP, "rtp_port": RTP_PORT, "capabilities": CAPS, "session_id": 1}
    with pytest.raises(LocalProtocolError, match=message):
        build_offer(**(args | kwargs))


# ------------------------------------------------------------------ negotiate_answer: codecs


def test_answer_takes_the_offerers_first_codec_we_support():
    # RFC 3264 §6.1: the offerer's order wins; G.729 is first but we lack it.
    media = answer_to(fixture("trunk_session_c.sdp"))
    assert media.codec == Codec("PCMU", 8000, 1, 0)
    assert "m=audio 20000 RTP/AVP 0 101" in answer_lines(media)


def test_offerers_order_beats_ours():
    media = answer_to(offer("m=audio 4000 RTP/AVP 8 0", "a=rtpmap:8 PCMA/8000"))
    assert media.codec.name == "PCMA" and media.codec.payload_type == 8


def test_static_payload_type_without_rtpmap_is_understood():
    assert answer_to(offer("m=audio 4000 RTP/AVP 9")).codec == Codec("G722", 8000, 1, 9)


def test_g722_is_answered_with_its_8000_hz_rtp_clock():
    media = answer_to(offer("m=audio 4000 RTP/AVP 9 0", "a=rtpmap:9 G722/8000"))
    assert media.codec.clock_rate_hz == 8000 and media.codec.sample_rate_hz == 16000
    assert "a=rtpmap:9 G722/8000" in answer_lines(media)


def test_dynamic_payload_type_of_the_offerer_is_kept():
    media = answer_to(offer(
        "m=audio 4000 RTP/AVP 111 0",
        "a=rtpmap:111 OPUS/48000/2",
        "a=fmtp:111 maxplaybackrate=16000",
    ))
    # Our name for the codec, the offerer's number, the offerer's fmtp (how it receives).
    assert media.codec == Codec("opus", 48000, 2, 111, "maxplaybackrate=16000")
    lines = answer_lines(media)
    assert "m=audio 20000 RTP/AVP 111" in lines
    assert "a=rtpmap:111 opus/48000/2" in lines
    assert "a=fmtp:111 useinbandfec=1" in lines  # ours: how we want to receive


def test_opus_must_say_two_channels():
    # RFC 7587 §7: "opus/48000/2" always; a mono rtpmap is another (unknown) codec.
    media = answer_to(offer("m=audio 4000 RTP/AVP 96 8", "a=rtpmap:96 opus/48000"))
    assert media.codec.name == "PCMA"


def test_captured_baresip_offer_gets_opus_and_telephone_event():
    media = answer_to(fixture("baresip_offer.sdp"))
    assert media.codec == Codec("opus", 48000, 2, 96, "stereo=1;sprop-stereo=1")
    assert media.telephone_event == Codec("telephone-event", 8000, 1, 101, "0-15")
    assert media.remote_address == ("192.0.2.2", 9884)
    assert media.ptime_ms == 20


def test_no_common_codec_is_488_naming_what_was_offered():
    with pytest.raises(RemoteProtocolError) as caught:
        answer_to(offer("m=audio 4000 RTP/AVP 18 3", "a=rtpmap:18 G729/8000"))
    assert caught.value.status_code == 488
    assert caught.value.reason == "no common audio codec (offered: G729/8000, GSM/8000)"


def test_telephone_event_alone_is_no_common_codec():
    with pytest.raises(RemoteProtocolError, match="no common audio codec"):
        answer_to(offer("m=audio 4000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"))


def test_unknown_dynamic_payload_type_is_skipped():
    media = answer_to(offer("m=audio 4000 RTP/AVP 97 0"))
    assert media.codec.name == "PCMU"


# ------------------------------------------------------------------ telephone-event


def test_telephone_event_keeps_the_offerers_payload_type_and_fmtp():
    media = answer_to(fixture("sipp_uac_pcap.sdp"))
    assert media.telephone_event_payload_type == 101
    lines = answer_lines(media)
    assert "m=audio 20000 RTP/AVP 8 101" in lines
    assert "a=rtpmap:101 telephone-event/8000" in lines
    assert "a=fmtp:101 0-11,16" in lines


def test_telephone_event_on_another_number():
    media = answer_to(offer(
        "m=audio 4000 RTP/AVP 0 100", "a=rtpmap:100 telephone-event/8000", "a=fmtp:100 0-16"
    ))
    assert media.telephone_event == Codec("telephone-event", 8000, 1, 100, "0-16")
    assert "a=fmtp:100 0-16" in answer_lines(media)


def test_telephone_event_on_the_codecs_clock_is_preferred():
    # pjsua offers one per clock: 120 @16k, 121 @8k, 122 @32k. PCMU runs at 8 kHz.
    media = answer_to(fixture("pjsua2_offer.sdp"))
    assert media.codec.name == "PCMU"
    assert media.telephone_event == Codec("telephone-event", 8000, 1, 121, "0-16")
    assert media.answer.media[0].formats == ["0", "121"]


def test_telephone_event_at_48k_goes_with_opus():
    media = answer_to(fixture("linphone_offer.sdp"))
    assert media.codec.name == "opus"
    assert media.telephone_event == Codec("telephone-event", 48000, 1, 101, None)
    assert "a=rtpmap:101 telephone-event/48000" in answer_lines(media)


def test_telephone_event_on_another_clock_is_taken_when_it_is_the_only_one():
    media = answer_to(fixture("baresip_offer.sdp"))  # opus at 48k, events at 8k
    assert media.telephone_event is not None
    assert media.telephone_event.clock_rate_hz == 8000


def test_no_telephone_event_when_not_offered():
    media = answer_to(fixture("sipp_uac.sdp"))
    assert media.telephone_event is None and media.telephone_event_payload_type is None
    assert media.answer.media[0].formats == ["0"]


def test_no_telephone_event_when_we_do_not_take_it():
    caps = MediaCapabilities(CAPS.codecs, telephone_event=False)
    media = answer_to(fixture("sipp_uac_pcap.sdp"), caps)
    assert media.telephone_event is None
    assert media.answer.media[0].formats == ["8"]


# ------------------------------------------------------------------ negotiate_answer: streams


def test_answer_is_a_whole_session_description():
    media = answer_to(fixture("sipp_uac.sdp"))
    assert answer_lines(media) == [
        "v=0", "o=hotline 42 42 IN IP4 192.0.2.1", "s=hotline", "c=IN IP4 192.0.2.1", "t=0 0",
        "m=audio 20000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=ptime:20", "a=sendrecv",
    ]
    assert media.answer_sdp == bytes(media.answer)
    assert SessionDescription.parse(media.answer_sdp) == media.answer


def test_video_is_rejected_with_port_zero_in_its_place():
    media = answer_to(fixture("linphone_offer.sdp"))
    assert [(m.media, m.port, m.formats) for m in media.answer.media] == [
        ("audio", RTP_PORT, ["96", "101"]),
        ("video", 0, ["96", "97"]),
    ]
    assert media.answer.media[1].attributes == []


def test_rejected_streams_keep_their_order_before_the_audio():
    media = answer_to(offer(
        "m=video 5000 RTP/AVP 31", "m=image 6000 udptl t38", "m=audio 4000 RTP/AVP 0"
    ))
    assert [(m.media, m.port, m.proto) for m in media.answer.media] == [
        ("video", 0, "RTP/AVP"), ("image", 0, "udptl"), ("audio", RTP_PORT, "RTP/AVP"),
    ]


def test_only_the_first_audio_stream_is_accepted():
    media = answer_to(offer("m=audio 4000 RTP/AVP 0", "m=audio 4002 RTP/AVP 8"))
    assert [(m.port, m.formats) for m in media.answer.media] == [(RTP_PORT, ["0"]), (0, ["8"])]
    assert media.remote_address == ("198.51.100.7", 4000)


def test_an_audio_stream_offered_with_port_zero_stays_off():
    media = answer_to(offer("m=audio 0 RTP/AVP 8", "m=audio 4002 RTP/AVP 0"))
    assert [m.port for m in media.answer.media] == [0, RTP_PORT]
    assert media.codec.name == "PCMU"


def test_srtp_audio_is_refused_with_the_reason():
    with pytest.raises(RemoteProtocolError) as caught:
        answer_to(fixture("chrome_webrtc_offer.sdp"))
    assert caught.value.status_code == 488
    assert "UDP/TLS/RTP/SAVPF is not supported" in caught.value.reason


def test_plain_audio_after_a_refused_srtp_stream_is_taken():
    media = answer_to(offer("m=audio 4000 RTP/SAVP 0", "m=audio 4002 RTP/AVP 0"))
    ports = [(m.port, m.proto) for m in media.answer.media]
    assert ports == [(0, "RTP/SAVP"), (RTP_PORT, "RTP/AVP")]
    assert media.remote_address == ("198.51.100.7", 4002)


def test_avpf_is_answered_in_kind():
    media = answer_to(offer("m=audio 4000 RTP/AVPF 0"))
    assert media.answer.media[0].proto == "RTP/AVPF"


def test_offer_without_audio_is_488():
    with pytest.raises(RemoteProtocolError) as caught:
        answer_to(offer("m=video 5000 RTP/AVP 31"))
    assert (caught.value.status_code, caught.value.reason) == (488, "offer has no audio stream")


def test_offer_without_any_media_is_488():
    with pytest.raises(RemoteProtocolError, match="offer has no audio stream"):
        answer_to(offer())


def test_audio_without_a_connection_line_is_488():
    no_c = sdp("v=0", "o=peer 5 5 IN IP4 h", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0")
    with pytest.raises(RemoteProtocolError, match="no c= line for m=audio"):
        answer_to(no_c)


def test_foreign_network_type_is_488():
    with pytest.raises(RemoteProtocolError, match="unsupported network type 'ATM'"):
        answer_to(offer("m=audio 4000 RTP/AVP 0", connection="c=ATM NSAP 47.0091"))


# ------------------------------------------------------------------ remote address


def test_remote_address_from_the_session_level_connection():
    assert answer_to(fixture("trunk_session_c.sdp")).remote_address == ("203.0.113.20", 41950)


def test_remote_address_from_the_media_level_connection():
    assert answer_to(fixture("pjsua2_offer.sdp")).remote_address == ("127.0.0.1", 4000)


def test_ipv6_offer_and_ipv6_answer_address():
    media = negotiate_answer(fixture("baresip_offer_ipv6.sdp"), "2001:db8::1", RTP_PORT, CAPS, 9)
    assert media.remote_address == ("fd00::2", 38354)
    assert "c=IN IP6 2001:db8::1" in answer_lines(media)
    assert "o=hotline 9 9 IN IP6 2001:db8::1" in answer_lines(media)


# ------------------------------------------------------------------ directions and hold


@pytest.mark.parametrize(
    ("offered", "answered", "remote_on_hold"),
    [
        ("sendrecv", "sendrecv", False),
        ("sendonly", "recvonly", True),
        ("recvonly", "sendonly", False),
        ("inactive", "inactive", True),
    ],
)
def test_answer_mirrors_the_offered_direction(offered, answered, remote_on_hold):
    media = answer_to(offer("m=audio 4000 RTP/AVP 0", f"a={offered}"))
    assert media.direction == answered
    assert media.remote_on_hold is remote_on_hold
    assert answer_lines(media)[-1] == f"a={answered}"


def test_session_level_direction_of_the_offer_is_mirrored():
    held = sdp("v=0", "o=p 5 6 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0",
               "a=sendonly", "m=audio 4000 RTP/AVP 0")
    assert answer_to(held).direction == "recvonly"


def test_captured_pjsua_hold_reinvite_gets_recvonly():
    media = answer_to(fixture("pjsua2_hold.sdp"), session_version=43)
    assert media.direction == "recvonly"
    assert media.remote_on_hold
    assert media.remote_address == ("127.0.0.1", 4000)  # it still sends us music on hold
    assert (media.sending, media.receiving) == (False, True)
    assert "a=recvonly" in answer_lines(media)
    assert "o=hotline 42 43 IN IP4 192.0.2.1" in answer_lines(media)


def test_old_style_hold_with_null_connection_gets_recvonly_and_no_address():
    media = answer_to(offer("m=audio 4000 RTP/AVP 0", connection="c=IN IP4 0.0.0.0"))
    assert media.direction == "recvonly"
    assert media.remote_on_hold
    assert media.remote_address is None
    assert not media.sending


def test_unhold_after_hold_is_sendrecv_again():
    held = answer_to(fixture("pjsua2_hold.sdp"), session_version=43)
    resumed = answer_to(fixture("pjsua2_offer.sdp"), session_version=44)
    assert (held.direction, resumed.direction) == ("recvonly", "sendrecv")
    assert not resumed.remote_on_hold
    assert (resumed.sending, resumed.receiving) == (True, True)


def test_we_can_answer_sendonly_while_we_hold_the_peer():
    media = answer_to(offer("m=audio 4000 RTP/AVP 0"), direction="sendonly")
    assert media.direction == "sendonly"
    assert not media.remote_on_hold


def test_our_wish_is_limited_by_a_sendonly_offer():
    media = answer_to(offer("m=audio 4000 RTP/AVP 0", "a=sendonly"), direction="recvonly")
    assert media.direction == "recvonly"
    media = answer_to(offer("m=audio 4000 RTP/AVP 0", "a=sendonly"), direction="sendonly")
    assert media.direction == "inactive"


# ------------------------------------------------------------------ ptime


def test_the_offerers_ptime_is_what_we_send():
    media = answer_to(offer("m=audio 4000 RTP/AVP 0", "a=ptime:30"))
    assert media.ptime_ms == 30
    assert "a=ptime:20" in answer_lines(media)  # what we want to receive


def test_without_offered_ptime_we_send_ours():
    assert answer_to(offer("m=audio 4000 RTP/AVP 0"), ptime_ms=40).ptime_ms == 40


# ------------------------------------------------------------------ process_answer (UAC)


OUR_OFFER = build_offer(LOCAL_IP, RTP_PORT, CAPS, session_id=42)


def peer_answer(*media_lines: str, connection: str = "c=IN IP4 198.51.100.9") -> SessionDescription:
    return sdp("v=0", "o=agent 77 77 IN IP4 198.51.100.9", "s=-", connection, "t=0 0", *media_lines)


def test_answer_to_our_offer_gives_codec_events_and_address():
    media = process_answer(OUR_OFFER, peer_answer(
        "m=audio 7078 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15",
    ))
    assert media.codec == Codec("PCMA", 8000, 1, 8)
    assert media.telephone_event == Codec("telephone-event", 8000, 1, 101, "0-15")
    assert media.remote_address == ("198.51.100.9", 7078)
    assert (media.direction, media.remote_on_hold, media.ptime_ms) == ("sendrecv", False, 20)
    assert media.answer.origin.username == "agent"


def test_we_send_with_the_answerers_payload_type():
    # RFC 3264 §6.1 only says the answerer SHOULD reuse our numbers.
    media = process_answer(OUR_OFFER, peer_answer(
        "m=audio 7078 RTP/AVP 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 stereo=0"
    ))
    assert media.codec == Codec("opus", 48000, 2, 111, "stereo=0")


def test_the_first_codec_of_the_answer_that_we_offered_is_used():
    media = process_answer(OUR_OFFER, peer_answer(
        "m=audio 7078 RTP/AVP 18 9 0", "a=rtpmap:18 G729/8000"
    ))
    assert media.codec == Codec("G722", 8000, 1, 9)


def test_answer_without_rtpmap_for_our_dynamic_type_reuses_our_mapping():
    media = process_answer(OUR_OFFER, peer_answer("m=audio 7078 RTP/AVP 96"))
    assert media.codec.name == "opus" and media.codec.payload_type == 96


def test_answer_without_telephone_event_means_none():
    media = process_answer(OUR_OFFER, peer_answer("m=audio 7078 RTP/AVP 0"))
    assert media.telephone_event is None


def test_telephone_event_in_an_answer_to_an_offer_without_it_is_ignored():
    caps = MediaCapabilities((PCMU,), telephone_event=False)
    ours = build_offer(LOCAL_IP, RTP_PORT, caps, session_id=1)
    media = process_answer(ours, peer_answer(
        "m=audio 7078 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"
    ))
    assert media.telephone_event is None


def test_answers_ptime_is_what_we_send():
    media = process_answer(OUR_OFFER, peer_answer("m=audio 7078 RTP/AVP 0", "a=ptime:30"))
    assert media.ptime_ms == 30


@pytest.mark.parametrize(
    ("our_direction", "their_direction", "ours_after", "remote_on_hold"),
    [
        ("sendrecv", "sendrecv", "sendrecv", False),
        ("sendrecv", "sendonly", "recvonly", True),
        ("sendrecv", "recvonly", "sendonly", False),
        ("sendrecv", "inactive", "inactive", True),
        ("sendonly", "recvonly", "sendonly", False),  # we hold them, they accept
        ("sendonly", "inactive", "inactive", True),
        ("sendonly", "sendrecv", "sendonly", False),  # a sloppy answer cannot make us receive
    ],
)
def test_our_direction_after_the_answer(our_direction, their_direction, ours_after, remote_on_hold):
    ours = build_offer(LOCAL_IP, RTP_PORT, CAPS, session_id=42, direction=our_direction)
    media = process_answer(ours, peer_answer("m=audio 7078 RTP/AVP 0", f"a={their_direction}"))
    assert media.direction == ours_after
    assert media.remote_on_hold is remote_on_hold


def test_answer_with_null_connection_leaves_no_address():
    media = process_answer(OUR_OFFER, peer_answer("m=audio 7078 RTP/AVP 0",
                                                  connection="c=IN IP4 0.0.0.0"))
    assert media.remote_address is None
    assert media.direction == "recvonly" and media.remote_on_hold


@pytest.mark.parametrize(
    ("media_lines", "reason"),
    [
        (("m=audio 0 RTP/AVP 0",), "the answer rejected the audio stream"),
        (("m=audio 7078 RTP/AVP 18", "a=rtpmap:18 G729/8000"),
         "the answer chose no codec we offered"),
        (("m=audio 7078 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"),
         "the answer chose no codec we offered"),
        (("m=audio 7078 RTP/AVP 0", "m=video 0 RTP/AVP 31"), "answer has 2 m= lines, offer had 1"),
        ((), "answer has 0 m= lines, offer had 1"),
        (("m=video 7078 RTP/AVP 31",), "answer m= line 1 is video, offer's is audio"),
    ],
)
def test_answers_that_do_not_fit_the_offer_are_488(media_lines, reason):
    with pytest.raises(RemoteProtocolError) as caught:
        process_answer(OUR_OFFER, peer_answer(*media_lines))
    assert (caught.value.status_code, caught.value.reason) == (488, reason)


def test_answer_without_connection_is_488():
    no_c = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 7078 RTP/AVP 0")
    with pytest.raises(RemoteProtocolError, match="no c= line for m=audio"):
        process_answer(OUR_OFFER, no_c)



def test_reading_an_answer_to_an_offer_without_audio_is_our_bug():
    video_only = sdp("v=0", "o=h 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                     "m=video 20000 RTP/AVP 31")
    with pytest.raises(LocalProtocolError, match="our offer has no active audio stream"):
        process_answer(video_only, peer_answer("m=video 7078 RTP/AVP 31"))

# ------------------------------------------------------------------ both ends are us


@pytest.mark.parametrize(
    "callee_codecs",
    [(PCMU, PCMA), (PCMA,), (G722, PCMU), (replace(OPUS, payload_type=111),)],
)
def test_offer_answer_round_trip_agrees_on_codec_and_addresses(callee_codecs):
    caller_offer = build_offer("192.0.2.1", 20000, CAPS, session_id=1)
    callee = negotiate_answer(
        SessionDescription.parse(bytes(caller_offer)), "192.0.2.2", 30000,
        MediaCapabilities(callee_codecs), session_id=2,
    )
    caller = process_answer(caller_offer, SessionDescription.parse(callee.answer_sdp))
    # The callee follows the caller's preference among what it has.
    expected = next(c for c in CAPS.codecs if any(c.matches(o.rtpmap) for o in callee_codecs))
    assert callee.codec.name == caller.codec.name == expected.name
    assert callee.codec.payload_type == caller.codec.payload_type == expected.payload_type
    assert callee.remote_address == ("192.0.2.1", 20000)
    assert caller.remote_address == ("192.0.2.2", 30000)
    assert callee.telephone_event_payload_type == caller.telephone_event_payload_type == 101


# ------------------------------------------------------------------ robustness

FIXTURE_OFFERS = [(FIXTURES / name).read_bytes() for name in sorted(
    path.name for path in FIXTURES.glob("*.sdp"))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIXTURE_OFFERS), st.integers(0, 1300), st.integers(0, 40),
       st.sampled_from([b"", b" ", b"0", b"a=sendonly\r\n", b"c=IN IP4 0.0.0.0\r\n", b"m=",
                        b"/", b":", b"telephone-event", b"\r\n"]))
def test_any_offer_that_parses_is_answered_or_refused_with_488(data, start, length, junk):
    try:
        remote = SessionDescription.parse(data[:start] + junk + data[start + length:])
    except RemoteProtocolError:
        return
    try:
        media = answer_to(remote)
    except RemoteProtocolError as exc:
        assert exc.status_code == 488
        return
    assert len(media.answer.media) == len(remote.media)  # RFC 3264 §6
    assert SessionDescription.parse(media.answer_sdp) == media.answer
