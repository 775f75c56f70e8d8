"""One call leg's RTP stream as the media tick keeps it: send state and counters.

A stream sends to the address the SDP gave until media arrives; from the first
valid RTP packet on (from an address signalling vouched for), it sends to that
packet's source instead (symmetric RTP, RFC 4961), which gets audio through NATs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from media_core.codec_av import AvDecoder, AvEncoder
from media_core.dtmf import DtmfEventSender
from media_core.dtmf_inband import InbandDtmfState
from media_core.prompt import PromptPlayer
from media_core.receive import ReceivePath
from media_core.recording_tap import RecordingTap
from media_core.rtcp_session import RtcpSession
from media_core.vad import VoiceActivityDetector

__all__ = [
    "AV_CODECS",
    "CODECS",
    "G711_CODECS",
    "Address",
    "Codec",
    "LoopedPcm",
    "PcmSource",
    "RtpStream",
    "StreamStats",
]

Codec: TypeAlias = Literal["PCMU", "PCMA", "G722", "OPUS"]
#: G.711 legs are decoded and encoded for all streams at once by one kernel
#: call; the wideband ones go through PyAV stream by stream (``codec_av``).
G711_CODECS: tuple[Codec, ...] = ("PCMU", "PCMA")
AV_CODECS: tuple[Codec, ...] = ("G722", "OPUS")
CODECS: tuple[Codec, ...] = ("PCMU", "PCMA", "G722", "OPUS")
Address: TypeAlias = tuple[str, int]


class PcmSource(Protocol):
    """Where a stream's audio comes from: fills one frame per tick."""

    def read_into(self, out: NDArray[np.int16]) -> None:
        """Fill ``out`` (a 1-D int16 view) with the next samples."""


class LoopedPcm:
    """A prompt played in a loop; the array is shared, never copied or written."""

    __slots__ = ("pcm", "position")

    def __init__(self, pcm: NDArray[np.int16]) -> None:
        """Play ``pcm`` from its start.

        Raises:
            ValueError: ``pcm`` is not a non-empty 1-D int16 array.
        """
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("a looped prompt must be a 1-D int16 array")
        if len(pcm) == 0:
            raise ValueError("a looped prompt cannot be empty")
        self.pcm = pcm
        self.position = 0

    def read_into(self, out: NDArray[np.int16]) -> None:
        """Copy the next ``len(out)`` samples, wrapping to the start as often as needed."""
        pcm = self.pcm
        size = len(pcm)
        position = self.position
        filled = 0
        wanted = len(out)
        while filled < wanted:
            count = min(wanted - filled, size - position)
            out[filled : filled + count] = pcm[position : position + count]
            filled += count
            position += count
            if position == size:
                position = 0
        self.position = position


@dataclass(slots=True, eq=False)
class RtpStream:
    """One call leg's RTP session, as the tick sees it.

    ``sequence_number`` and ``timestamp`` are those of the next packet to send.
    """

    stream_id: int
    codec: Codec
    payload_type: int
    ssrc: int
    sequence_number: int
    timestamp: int
    source: PcmSource | None
    remote_addr: Address | None = None
    latched: bool = False
    # Source IPs allowed to latch the stream (the SDP's and the signalling peer's);
    # empty: any. Stops a stranger's first packet from stealing the call's audio.
    latch_hosts: frozenset[str] = frozenset()
    # RFC 3551 §4.1: the first packet after silence (here: the first) carries M.
    marker_next: bool = True
    packets_sent: int = 0
    octets_sent: int = 0
    send_errors: int = 0
    packets_received: int = 0
    octets_received: int = 0
    packets_invalid: int = 0
    packets_ignored: int = 0
    remote_ssrc: int | None = None
    last_payload_type: int | None = None
    last_received_at: float | None = None
    last_sent_at: float | None = None
    # RFC 3550 §5.1: the timestamp advances by this per packet; it is the
    # samples per packet at the codec's RTP clock (960 for Opus, RFC 7587 §4.1).
    timestamp_step: int = 160
    clock_rate_hz: int = 8000
    # The media features of this leg; None where the leg does not use one.
    slot: int = -1  # its row in the tick's frame arrays
    av_decoder: AvDecoder | None = None  # wideband codecs only
    av_encoder: AvEncoder | None = None
    rtcp: RtcpSession | None = None
    # Where our reports go: the SDP's a=rtcp, else the RTP address's port + 1
    # (RFC 3550 §11); latched to where the peer's reports come from (RFC 4961).
    rtcp_addr: Address | None = None
    rtcp_latched: bool = False
    rx: ReceivePath | None = None
    player: PromptPlayer | None = None  # a prompt overriding ``source`` (IVR, barge-in)
    dtmf_queue: list[tuple[str, int]] = field(default_factory=list)  # (digit, duration_ms)
    dtmf_sender: DtmfEventSender | None = None  # the key being sent now
    telephone_event_pt: int | None = None
    vad: VoiceActivityDetector | None = None
    audio_out: bool = False  # received frames go to ``take_audio`` (a recognizer)
    inband: InbandDtmfState | None = None
    tap: RecordingTap | None = None


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A snapshot of one stream's counters.

    ``octets_*`` count payload octets, as RTCP sender reports do (RFC 3550 §6.4.1).
    ``packets_ignored`` are valid RTP packets from another address than the
    latched one; ``packets_invalid`` are datagrams that are not RTP.
    """

    stream_id: int
    codec: Codec
    payload_type: int
    ssrc: int
    remote_addr: Address | None
    latched: bool
    packets_sent: int
    octets_sent: int
    send_errors: int
    packets_received: int
    octets_received: int
    packets_invalid: int
    packets_ignored: int
    remote_ssrc: int | None
    last_payload_type: int | None
    # From RTCP (RFC 3550 §6.4): reports exchanged, and what the peer said of our audio.
    rtcp_sent: int = 0
    rtcp_received: int = 0
    round_trip_s: float | None = None
    remote_fraction_lost: float | None = None
    remote_jitter_ms: float | None = None
