"""The SDP offer/answer model (RFC 3264) for one audio stream per call.

``build_offer`` writes our offer. ``negotiate_answer`` answers a peer's offer
(the UAS side, and every re-INVITE, including hold and unhold).
``process_answer`` reads the answer to our offer (the UAC side). Each returns a
``NegotiatedMedia``: where to send RTP, with which codec and payload type, the
telephone-event payload type (RFC 4733) and who may send.

We carry one audio stream. The first audio m= line we can use is accepted. Every
other m= line (video, a second audio stream, SRTP) is rejected with port 0 and
keeps its place (RFC 3264 §6). When no audio stream can be used, the error is a
``RemoteProtocolError`` with status 488 and a reason saying why.

Directions are worked out as two flags per side: we send only if we want to and
the peer receives, and the same for receiving. Mirroring the offer (sendonly ->
recvonly, recvonly -> sendonly, inactive -> inactive, RFC 3264 §6.1) then falls
out of that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.sdp import (
    DIRECTIONS,
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)
from sip.sdp_media import bad_sdp

TELEPHONE_EVENT: Final = "telephone-event"
# RTP profiles we answer. RTP/AVPF (RFC 4585) is RTP/AVP plus feedback messages that
# are sent only when there is something to report, so we can answer it in kind.
# SAVP/SAVPF need SRTP, which we do not have.
_PLAIN_RTP_PROFILES: Final = ("RTP/AVP", "RTP/AVPF")
_SESSION_NAME: Final = "hotline"


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP audio codec as negotiated: encoding, RTP clock, channels, payload type.

    ``clock_rate_hz`` is the RTP timestamp clock from the rtpmap; ``sample_rate_hz``
    is the rate the audio is coded at. They differ only for G.722 (RFC 3551 §4.5.2).
    ``fmtp`` holds the format parameters of whoever receives with this codec.
    """

    name: str
    clock_rate_hz: int
    channels: int
    payload_type: int
    fmtp: str | None = None

    @property
    def rtpmap(self) -> RtpMap:
        """The ``a=rtpmap`` value for this codec."""
        return RtpMap(self.name, self.clock_rate_hz, self.channels)

    @property
    def sample_rate_hz(self) -> int:
        """The audio sampling rate (16000 for G.722, whose RTP clock says 8000)."""
        return 16000 if self.name.upper() == "G722" else self.clock_rate_hz

    def matches(self, rtpmap: RtpMap) -> bool:
        """True when ``rtpmap`` names this codec, whatever payload type carries it."""
        return self.rtpmap.same_codec(rtpmap)


PCMU: Final = Codec("PCMU", 8000, 1, 0)
PCMA: Final = Codec("PCMA", 8000, 1, 8)
G722: Final = Codec("G722", 8000, 1, 9)
# RFC 7587 §7: opus is always "opus/48000/2", whatever is actually sent.
OPUS: Final = Codec("opus", 48000, 2, 96, "useinbandfec=1")
KNOWN_CODECS: Final = {codec.name.casefold(): codec for codec in (PCMU, PCMA, G722, OPUS)}


@dataclass(frozen=True, slots=True)
class MediaCapabilities:
    """What we can do, in our order of preference.

    Attributes:
        codecs: supported codecs, preferred first, with the payload types we offer.
        telephone_event: whether we take RFC 4733 DTMF events.
        telephone_event_payload_type: the payload type we offer telephone-event with.
        telephone_event_fmtp: the events we offer (RFC 4733: 0-15 are the DTMF
            digits, 16 is flash).
    """

    codecs: tuple[Codec, ...]
    telephone_event: bool = True
    telephone_event_payload_type: int = 101
    telephone_event_fmtp: str = "0-16"

    def __post_init__(self) -> None:
        if not self.codecs:
            raise LocalProtocolError("MediaCapabilities needs at least one codec")
        payload_types = [codec.payload_type for codec in self.codecs]
        if self.telephone_event:
            payload_types.append(self.telephone_event_payload_type)
        if len(set(payload_types)) != len(payload_types):
            raise LocalProtocolError(f"duplicate payload types in {payload_types}")
        if not all(0 <= pt <= 127 for pt in payload_types):
            raise LocalProtocolError(f"payload types must be 0..127, got {payload_types}")

    @classmethod
    def default(cls) -> MediaCapabilities:
        """PCMU, PCMA, G.722 and opus, with telephone-event 0-16 on payload type 101."""
        return cls((PCMU, PCMA, G722, OPUS))

    @classmethod
    def from_names(cls, names: Iterable[str], telephone_event: bool = True) -> MediaCapabilities:
        """Capabilities with the named codecs of ``KNOWN_CODECS``, in the given order.

        For a media engine (or a config file) that handles fewer codecs than the
        default: ``MediaCapabilities.from_names(["PCMU", "PCMA"])``.

        Raises:
            LocalProtocolError: on a name we have no codec for.
        """
        codecs = []
        for name in names:
            codec = KNOWN_CODECS.get(name.casefold())
            if codec is None:
                raise LocalProtocolError(f"unknown codec {name!r}, known: {sorted(KNOWN_CODECS)}")
            codecs.append(codec)
        return cls(tuple(codecs), telephone_event)

    def find(self, rtpmap: RtpMap) -> Codec | None:
        """Our codec named by ``rtpmap``, or None."""
        return next((codec for codec in self.codecs if codec.matches(rtpmap)), None)


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The outcome of one offer/answer exchange, for the media engine.

    Attributes:
        remote_address: where to send RTP, ``(host, port)`` from the effective c= and
            the m= port; None when the peer gave 0.0.0.0 (hold) or port 0. The host
            may be a name when the peer wrote an FQDN in c=.
        codec: the codec in use, with the payload type on the wire and the fmtp of
            the peer (how it wants to receive).
        telephone_event: the RFC 4733 event payload (type, clock, fmtp), or None.
        ptime_ms: the packet duration to send: the peer's a=ptime, else ours.
        direction: our direction: sendrecv, sendonly, recvonly or inactive.
        remote_on_hold: the peer asked not to receive media (sendonly, inactive or
            c=0.0.0.0, RFC 3264 §8.4).
        answer: the answer SDP: ours from ``negotiate_answer``, the peer's from
            ``process_answer``.
    """

    remote_address: tuple[str, int] | None
    codec: Codec
    telephone_event: Codec | None
    ptime_ms: int
    direction: str
    remote_on_hold: bool
    answer: SessionDescription

    @property
    def telephone_event_payload_type(self) -> int | None:
        """The payload type of RFC 4733 events, or None when none was agreed."""
        return None if self.telephone_event is None else self.telephone_event.payload_type

    @property
    def answer_sdp(self) -> bytes:
        """The answer as the bytes of a message body."""
        return bytes(self.answer)

    @property
    def sending(self) -> bool:
        """True when we should send RTP."""
        return self.direction in ("sendrecv", "sendonly") and self.remote_address is not None

    @property
    def receiving(self) -> bool:
        """True when we should expect RTP."""
        return self.direction in ("sendrecv", "recvonly")


def build_offer(
    local_ip: str,
    rtp_port: int,
    capabilities: MediaCapabilities,
    session_id: int,
    ptime_ms: int = 20,
    direction: str = "sendrecv",
    *,
    session_version: int | None = None,
) -> SessionDescription:
    """Build our offer: one audio stream with every codec we have, preferred first.

    To hold the peer, offer again with ``direction="sendonly"`` (RFC 3264 §8.4) and
    the same ``session_id`` with ``session_version`` one higher (§8); offer
    ``"sendrecv"`` with the next version to take it off hold.

    Args:
        local_ip: our address for c= and o= (IPv4 or IPv6 literal, or a name).
        rtp_port: the local RTP port (RTCP goes on the next one, RFC 3550 §11).
        capabilities: our codecs and telephone-event support.
        session_id: the o= sess-id, the same for every offer of this session.
        ptime_ms: the packet duration we want to receive.
        direction: our direction attribute.
        session_version: the o= sess-version; ``session_id`` when not given.

    Raises:
        LocalProtocolError: on a port, ptime or direction we cannot offer.
    """
    _check_local(rtp_port, ptime_ms, direction)
    codecs = list(capabilities.codecs)
    if capabilities.telephone_event:
        codecs.append(_our_telephone_event(capabilities))
    media = MediaDescription("audio", rtp_port, "RTP/AVP", [str(c.payload_type) for c in codecs])
    for codec in codecs:
        media.attributes.extend(_codec_attributes(codec))
    media.attributes += [Attribute("ptime", str(ptime_ms)), Attribute(direction)]
    return _session(local_ip, session_id, session_version, [media])


def negotiate_answer(
    offer: SessionDescription,
    local_ip: str,
    rtp_port: int,
    capabilities: MediaCapabilities,
    session_id: int,
    *,
    session_version: int | None = None,
    ptime_ms: int = 20,
    direction: str = "sendrecv",
) -> NegotiatedMedia:
    """Answer ``offer`` (RFC 3264 §6): accept its first usable audio stream.

    The codec is the first one in the *offerer's* order that we support (§6.1), on
    the offerer's payload type. telephone-event is kept when offered, with the
    offerer's payload type and fmtp. Other m= lines are answered with port 0.

    Args:
        offer: the peer's offer.
        local_ip: our address for c= and o=.
        rtp_port: our RTP port for the accepted stream.
        capabilities: our codecs and telephone-event support.
        session_id: the o= sess-id of our SDP in this dialog.
        session_version: the o= sess-version; ``session_id`` when not given. In a
            re-INVITE, pass the previous version plus one (RFC 3264 §8).
        ptime_ms: the packet duration we want to receive.
        direction: what we want; the answer is this limited by the offer (a held
            peer that re-INVITEs with sendrecv gets sendonly if we say so).

    Raises:
        RemoteProtocolError: (488) when no audio stream of the offer is usable.
        LocalProtocolError: on a port, ptime or direction we cannot use.
    """
    _check_local(rtp_port, ptime_ms, direction)
    answer_media: list[MediaDescription] = []
    accepted: _Accepted | None = None
    refusals: list[str] = []
    for offered in offer.media:
        if accepted is None and offered.media == "audio" and offered.port != 0:
            try:
                accepted = _accept(offer, offered, capabilities, direction)
            except RemoteProtocolError as exc:
                refusals.append(exc.reason)
            else:
                answer_media.append(_answer_stream(accepted, offered, rtp_port, ptime_ms))
                continue
        answer_media.append(_rejected(offered))
    if accepted is None:
        raise bad_sdp(refusals[0] if refusals else "offer has no audio stream")
    answer = _session(local_ip, session_id, session_version, answer_media)
    return NegotiatedMedia(
        remote_address=accepted.remote_address,
        codec=accepted.codec,
        telephone_event=accepted.telephone_event,
        ptime_ms=accepted.remote_ptime_ms or ptime_ms,
        direction=accepted.direction,
        remote_on_hold=accepted.remote_on_hold,
        answer=answer,
    )


def process_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """Read the peer's answer to our ``offer`` (the UAC side).

    The codec is the first one in the answer that we offered; we send it on the
    answer's payload type, which is what the peer receives with (RFC 3264 §6.1
    only says it SHOULD reuse ours).

    Raises:
        RemoteProtocolError: (488) when the answer does not fit the offer (other m=
            count or media types, §6), rejects our audio stream, or picks a codec
            we did not offer. The INVITE has succeeded by then, so the caller
            ACKs and then sends BYE, as RFC 3261 §13.2.2.4 does for a 2xx whose
            SDP it cannot accept.
        LocalProtocolError: ``offer`` has no active audio stream (not ours).
    """
    if len(answer.media) != len(offer.media):
        # RFC 3264 §6: "the answer MUST contain exactly the same number of m= lines".
        raise bad_sdp(f"answer has {len(answer.media)} m= lines, offer had {len(offer.media)}")
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if ours.media != theirs.media:
            raise bad_sdp(f"answer m= line {index + 1} is {theirs.media}, offer's is {ours.media}")
    for ours, theirs in zip(offer.media, answer.media, strict=True):
        if ours.media == "audio" and ours.port != 0:
            return _read_answer(offer, ours, answer, theirs)
    raise LocalProtocolError("our offer has no active audio stream")


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True, slots=True)
class _Flags:
    """One side's direction as two flags (RFC 3264 §6.1)."""

    send: bool
    receive: bool

    @classmethod
    def of(cls, direction: str, null_address: bool) -> _Flags:
        # RFC 3264 §8.4: c=0.0.0.0 is the old way to say "do not send to me".
        return cls(
            send=direction in ("sendrecv", "sendonly"),
            receive=direction in ("sendrecv", "recvonly") and not null_address,
        )

    def limited_by(self, peer: _Flags) -> _Flags:
        """Our flags after the peer's: we send only to a receiver, and so on."""
        return _Flags(send=self.send and peer.receive, receive=self.receive and peer.send)

    @property
    def direction(self) -> str:
        """The direction attribute these flags make."""
        if self.send:
            return "sendrecv" if self.receive else "sendonly"
        return "recvonly" if self.receive else "inactive"


@dataclass(frozen=True, slots=True)
class _Peer:
    """The peer's side of one stream: its flags and where its RTP goes."""

    flags: _Flags
    remote_address: tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class _Accepted:
    """The stream of an offer we accept, and what we agreed on."""

    codec: Codec
    telephone_event: Codec | None
    remote_address: tuple[str, int] | None
    remote_ptime_ms: int | None
    direction: str
    remote_on_hold: bool
    our_fmtp: str | None


def _peer(session: SessionDescription, media: MediaDescription) -> _Peer:
    """The peer's flags and RTP address for ``media``; 488 when it has no usable c=."""
    connection = media.effective_connection(session)
    if connection is None:
        # RFC 8866 §5.7: c= at session level or in every m= section.
        raise bad_sdp(f"no c= line for m={media.media}")
    if connection.nettype != "IN":
        raise bad_sdp(f"unsupported network type {connection.nettype[:20]!r} in c=")
    flags = _Flags.of(media.effective_direction(session), connection.is_null)
    address = None if connection.is_null or media.port == 0 else (connection.address, media.port)
    return _Peer(flags, address)


def _accept(
    offer: SessionDescription,
    offered: MediaDescription,
    capabilities: MediaCapabilities,
    wanted_direction: str,
) -> _Accepted:
    """Accept one offered audio stream, or raise 488 saying why we cannot."""
    if offered.proto.upper() not in _PLAIN_RTP_PROFILES:
        raise bad_sdp(f"audio over {offered.proto[:30]} is not supported (plain RTP/AVP only)")
    peer = _peer(offer, offered)
    rtpmaps = offered.rtpmaps
    fmtp = offered.fmtp
    # RFC 3264 §6.1: the first codec in the offerer's preference order that we have.
    choice = next(
        (
            (pt, ours)
            for pt in offered.payload_types
            if (rtpmap := rtpmaps.get(pt)) is not None
            and rtpmap.encoding.casefold() != TELEPHONE_EVENT
            and (ours := capabilities.find(rtpmap)) is not None
        ),
        None,
    )
    if choice is None:
        offered_names = ", ".join(str(rtpmaps[pt]) for pt in offered.payload_types if pt in rtpmaps)
        raise bad_sdp(f"no common audio codec (offered: {offered_names[:80] or 'none known'})")
    pt, ours = choice
    # §6.1: answer with the offerer's payload type, dynamic ones included.
    codec = Codec(ours.name, ours.clock_rate_hz, ours.channels, pt, fmtp.get(pt))
    events = None
    if capabilities.telephone_event:
        events = _telephone_event(list(rtpmaps.items()), fmtp, codec)
    flags = _Flags.of(wanted_direction, null_address=False).limited_by(peer.flags)
    return _Accepted(
        codec=codec,
        telephone_event=events,
        remote_address=peer.remote_address,
        remote_ptime_ms=offered.ptime_ms,
        direction=flags.direction,
        remote_on_hold=not peer.flags.receive,
        our_fmtp=ours.fmtp,
    )


def _read_answer(
    offer: SessionDescription,
    ours: MediaDescription,
    answer: SessionDescription,
    theirs: MediaDescription,
) -> NegotiatedMedia:
    """What the peer's answer ``theirs`` to our audio stream ``ours`` agrees on."""
    if theirs.port == 0:
        raise bad_sdp("the answer rejected the audio stream")
    offered_maps = ours.rtpmaps
    answered_maps = theirs.rtpmaps
    # An answer may leave out the rtpmap of a type we offered: our mapping holds.
    candidates = [
        (pt, rtpmap)
        for pt in theirs.payload_types
        if (rtpmap := answered_maps.get(pt) or offered_maps.get(pt)) is not None
    ]
    codec = next(
        (
            Codec(mine.encoding, mine.clock_rate_hz, mine.channels, pt, theirs.fmtp.get(pt))
            for pt, rtpmap in candidates
            if rtpmap.encoding.casefold() != TELEPHONE_EVENT
            for mine in offered_maps.values()
            if mine.same_codec(rtpmap)
        ),
        None,
    )
    if codec is None:
        raise bad_sdp("the answer chose no codec we offered")
    we_offered_events = any(m.encoding.casefold() == TELEPHONE_EVENT for m in offered_maps.values())
    events = _telephone_event(candidates, theirs.fmtp, codec) if we_offered_events else None
    peer = _peer(answer, theirs)
    flags = _Flags.of(ours.effective_direction(offer), null_address=False)
    return NegotiatedMedia(
        remote_address=peer.remote_address,
        codec=codec,
        telephone_event=events,
        ptime_ms=theirs.ptime_ms or ours.ptime_ms or 20,
        direction=flags.limited_by(peer.flags).direction,
        remote_on_hold=not peer.flags.receive,
        answer=answer,
    )


def _telephone_event(
    rtpmaps: list[tuple[int, RtpMap]], fmtp: dict[int, str], codec: Codec
) -> Codec | None:
    """Pick the telephone-event payload: the one on the codec's clock, else the first.

    RFC 4733 events run on the clock of their own rtpmap. Peers such as pjsua offer
    one per clock rate, and the one matching the audio keeps timestamps simple.
    """
    offered = [(pt, m) for pt, m in rtpmaps if m.encoding.casefold() == TELEPHONE_EVENT]
    if not offered:
        return None
    pt, rtpmap = next(
        ((pt, m) for pt, m in offered if m.clock_rate_hz == codec.clock_rate_hz), offered[0]
    )
    return Codec(TELEPHONE_EVENT, rtpmap.clock_rate_hz, 1, pt, fmtp.get(pt))


def _answer_stream(
    accepted: _Accepted, offered: MediaDescription, rtp_port: int, ptime_ms: int
) -> MediaDescription:
    """Our m= section for the accepted stream: the codec, then telephone-event."""
    codec = replace(accepted.codec, fmtp=accepted.our_fmtp)  # our fmtp: how we receive
    codecs = [codec]
    if accepted.telephone_event is not None:
        codecs.append(accepted.telephone_event)  # with the offerer's fmtp (event list)
    media = MediaDescription(
        "audio", rtp_port, offered.proto, [str(c.payload_type) for c in codecs]
    )
    for each in codecs:
        media.attributes.extend(_codec_attributes(each))
    media.attributes += [Attribute("ptime", str(ptime_ms)), Attribute(accepted.direction)]
    return media


def _rejected(offered: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a refused stream stays in place with port 0 and the same media."""
    return MediaDescription(offered.media, 0, offered.proto, list(offered.formats))


def _codec_attributes(codec: Codec) -> list[Attribute]:
    attributes = [Attribute("rtpmap", f"{codec.payload_type} {codec.rtpmap}")]
    if codec.fmtp:
        attributes.append(Attribute("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    return attributes


def _our_telephone_event(capabilities: MediaCapabilities) -> Codec:
    # 8000 Hz is RFC 4733's default event clock, and the RTP clock of G.711 and G.722.
    pt = capabilities.telephone_event_payload_type
    return Codec(TELEPHONE_EVENT, 8000, 1, pt, capabilities.telephone_event_fmtp)


def _session(
    local_ip: str, session_id: int, session_version: int | None, media: list[MediaDescription]
) -> SessionDescription:
    connection = Connection.for_address(local_ip)
    version = session_id if session_version is None else session_version
    return SessionDescription(
        origin=Origin("hotline", session_id, version, "IN", connection.addrtype, local_ip),
        session_name=_SESSION_NAME,
        connection=connection,
        media=media,
    )


def _check_local(rtp_port: int, ptime_ms: int, direction: str) -> None:
    if not 0 < rtp_port <= 65535:
        raise LocalProtocolError(f"RTP port {rtp_port} out of range")
    if not 0 < ptime_ms <= 1000:
        raise LocalProtocolError(f"ptime {ptime_ms} ms out of range")
    if direction not in DIRECTIONS:
        raise LocalProtocolError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
