"""The media clock: one 20 ms tick that serves every call (sans-IO).

House rule: there is no timer per call. Each ``tick(now)`` produces one RTP
packet for every stream that has somewhere to send to, and encodes all frames of
one codec with a single kernel call over a contiguous buffer, so the cost per
call is a slice copy, a header pack and a datagram.

A stream sends to the address the SDP gave until media arrives; from the first
valid RTP packet on, it sends to that packet's source instead (symmetric RTP,
RFC 4961), which is what gets audio through NATs.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from media_core import g711
from media_core.rtp import RtpPacket

__all__ = [
    "CODECS",
    "Address",
    "Codec",
    "EncodeInto",
    "LoopedPcm",
    "MediaTick",
    "PcmSource",
    "RtpStream",
    "StreamStats",
]

Codec: TypeAlias = Literal["PCMU", "PCMA"]
CODECS: tuple[Codec, ...] = ("PCMU", "PCMA")
Address: TypeAlias = tuple[str, int]
EncodeInto: TypeAlias = Callable[[NDArray[np.int16], NDArray[np.uint8]], None]

# RFC 3550 §5.1: V=2, P=0, X=0, CC=0 | M, PT | sequence number | timestamp | SSRC.
_HEADER = struct.Struct("!BBHII")
_VERSION_2_BARE = 0x80
_MARKER = 0x80


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
    source: PcmSource
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
    last_payload: bytes = b""
    last_received_at: float | None = None
    last_sent_at: float | None = None


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


class _FrameBuffers:
    """A codec's contiguous PCM and code buffers, grown by doubling, never shrunk."""

    __slots__ = ("codes", "pcm")

    def __init__(self) -> None:
        self.pcm: NDArray[np.int16] = np.empty(0, dtype=np.int16)
        self.codes: NDArray[np.uint8] = np.empty(0, dtype=np.uint8)

    def take(self, samples: int) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
        if len(self.pcm) < samples:
            size = max(samples, 2 * len(self.pcm))
            self.pcm = np.zeros(size, dtype=np.int16)
            self.codes = np.zeros(size, dtype=np.uint8)
        return self.pcm[:samples], self.codes[:samples]


class MediaTick:
    """Every RTP stream of the process, advanced together once per ``ptime_ms``."""

    __slots__ = (
        "_buffers",
        "_encoders",
        "_groups",
        "_next_id",
        "_rng",
        "_streams",
        "ptime_ms",
        "rate_hz",
        "samples_per_frame",
        "ticks",
    )

    def __init__(
        self,
        ptime_ms: int = 20,
        rate_hz: int = 8000,
        *,
        encoders: Mapping[Codec, EncodeInto] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Create an empty tick.

        Args:
            ptime_ms: packet time; every packet carries this much audio.
            rate_hz: the RTP clock and sampling rate (8000 for G.711, RFC 3551 §4.5.14).
            encoders: the ``*_into`` kernel per codec; ``media_core.g711``'s by default.
            rng: source of SSRCs and initial sequence numbers and timestamps.

        Raises:
            ValueError: ``ptime_ms`` is not a whole number of samples.
        """
        if ptime_ms <= 0 or rate_hz <= 0 or (ptime_ms * rate_hz) % 1000:
            raise ValueError(f"{ptime_ms} ms at {rate_hz} Hz is not a whole number of samples")
        self.ptime_ms = ptime_ms
        self.rate_hz = rate_hz
        self.samples_per_frame = ptime_ms * rate_hz // 1000
        self.ticks = 0
        self._encoders: dict[Codec, EncodeInto] = dict(
            encoders
            if encoders is not None
            else {"PCMU": g711.ulaw_encode_into, "PCMA": g711.alaw_encode_into}
        )
        # RFC 3550 §5.1 and §8.1: SSRC and initial values SHOULD be unpredictable.
        self._rng = rng if rng is not None else random.SystemRandom()
        self._streams: dict[int, RtpStream] = {}
        self._groups: dict[Codec, dict[int, RtpStream]] = {codec: {} for codec in CODECS}
        self._buffers: dict[Codec, _FrameBuffers] = {codec: _FrameBuffers() for codec in CODECS}
        self._next_id = 1

    # ----------------------------------------------------------- streams

    def add_stream(
        self,
        codec: str,
        payload_type: int,
        source: PcmSource | NDArray[np.int16],
        remote_addr: Address | None = None,
        *,
        ssrc: int | None = None,
        sequence_number: int | None = None,
        timestamp: int | None = None,
        latch_hosts: frozenset[str] = frozenset(),
    ) -> int:
        """Start a stream; it sends from the next tick on, once it has an address.

        Args:
            codec: ``PCMU`` or ``PCMA`` (case-insensitive, as SDP encoding names are).
            payload_type: the negotiated RTP payload type, 0..127.
            source: a ``PcmSource``, or an int16 array to play in a loop.
            remote_addr: where the SDP says to send; None until media arrives.
            ssrc: our SSRC; random when None.
            sequence_number: of the first packet; random when None.
            timestamp: of the first packet; random when None.
            latch_hosts: source IPs whose packets may latch the stream (symmetric
                RTP); empty lets any source latch it.

        Returns:
            The new stream's id.

        Raises:
            ValueError: unknown codec, or a value out of its field's range.
        """
        name = codec.upper()
        if name not in CODECS:
            raise ValueError(f"codec {codec!r} is not one of {', '.join(CODECS)}")
        if not 0 <= payload_type <= 0x7F:
            raise ValueError(f"payload type {payload_type} is not a 7-bit value")
        if ssrc is None:
            ssrc = self._unused_ssrc()
        elif not 0 <= ssrc <= 0xFFFFFFFF:
            raise ValueError(f"SSRC {ssrc} is not a 32-bit value")
        if sequence_number is None:
            sequence_number = self._rng.getrandbits(16)
        elif not 0 <= sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number {sequence_number} is not a 16-bit value")
        if timestamp is None:
            timestamp = self._rng.getrandbits(32)
        elif not 0 <= timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp {timestamp} is not a 32-bit value")
        if isinstance(source, np.ndarray):
            source = LoopedPcm(source)
        stream_id = self._next_id
        self._next_id += 1
        stream = RtpStream(
            stream_id=stream_id,
            codec=name,  # checked against CODECS above
            payload_type=payload_type,
            ssrc=ssrc,
            sequence_number=sequence_number,
            timestamp=timestamp,
            source=source,
            remote_addr=remote_addr,
            latch_hosts=latch_hosts,
        )
        self._streams[stream_id] = stream
        self._groups[stream.codec][stream_id] = stream
        return stream_id

    def remove_stream(self, stream_id: int) -> None:
        """Stop a stream; it sends nothing more.

        Raises:
            KeyError: no such stream.
        """
        stream = self.stream(stream_id)
        del self._streams[stream_id]
        del self._groups[stream.codec][stream_id]

    def stream(self, stream_id: int) -> RtpStream:
        """The live state of one stream.

        Raises:
            KeyError: no such stream.
        """
        try:
            return self._streams[stream_id]
        except KeyError:
            raise KeyError(f"no RTP stream {stream_id}") from None

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def latch(self, stream_id: int, addr: Address) -> None:
        """Send to ``addr`` from now on, and stop looking for another source.

        Raises:
            KeyError: no such stream.
        """
        stream = self.stream(stream_id)
        stream.remote_addr = addr
        stream.latched = True

    def stats(self, stream_id: int) -> StreamStats:
        """A snapshot of a stream's counters.

        Raises:
            KeyError: no such stream.
        """
        s = self.stream(stream_id)
        return StreamStats(
            stream_id=s.stream_id,
            codec=s.codec,
            payload_type=s.payload_type,
            ssrc=s.ssrc,
            remote_addr=s.remote_addr,
            latched=s.latched,
            packets_sent=s.packets_sent,
            octets_sent=s.octets_sent,
            send_errors=s.send_errors,
            packets_received=s.packets_received,
            octets_received=s.octets_received,
            packets_invalid=s.packets_invalid,
            packets_ignored=s.packets_ignored,
            remote_ssrc=s.remote_ssrc,
            last_payload_type=s.last_payload_type,
        )

    # ------------------------------------------------------------- input

    def on_rtp_received(
        self, stream_id: int, data: bytes, addr: Address, now: float
    ) -> RtpPacket | None:
        """Account for a datagram that arrived on a stream's port.

        The first valid RTP packet latches the stream to its source address.
        Later packets from elsewhere are counted as ignored, not received.

        Args:
            stream_id: the stream whose port received it.
            data: the datagram.
            addr: its source.
            now: the clock, in seconds.

        Returns:
            The packet, or None when it is not valid RTP, comes from another
            address than the latched one, or the stream is gone (a datagram
            racing ``remove_stream``).
        """
        stream = self._streams.get(stream_id)
        if stream is None:
            return None
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            stream.packets_invalid += 1
            return None
        if not stream.latched:
            if stream.latch_hosts and addr[0] not in stream.latch_hosts:
                # An address signalling did not vouch for may not redirect the audio.
                stream.packets_ignored += 1
                return None
            if addr[1] != 0:  # port 0 cannot be answered (a raw-socket replay)
                self.latch(stream_id, addr)
        elif addr != stream.remote_addr:
            stream.packets_ignored += 1
            return None
        stream.packets_received += 1
        stream.octets_received += len(packet.payload)
        stream.remote_ssrc = packet.ssrc
        stream.last_payload_type = packet.payload_type
        stream.last_payload = packet.payload
        stream.last_received_at = now
        return packet

    def record_send_error(self, stream_id: int) -> None:
        """Count a datagram the transport failed to send (ICMP errors and the like)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.send_errors += 1

    # ------------------------------------------------------------ output

    def tick(self, now: float) -> list[tuple[int, bytes, Address]]:
        """Advance every stream by one packet time.

        Streams without a remote address are paused: they neither send nor
        advance their prompt, sequence number or timestamp.

        Args:
            now: the clock, in seconds (recorded as the send time).

        Returns:
            ``(stream_id, datagram, destination)`` for each stream that sends.
        """
        self.ticks += 1
        samples = self.samples_per_frame
        datagrams: list[tuple[int, bytes, Address]] = []
        for codec, group in self._groups.items():
            sending = [(s, s.remote_addr) for s in group.values() if s.remote_addr is not None]
            if not sending:
                continue
            pcm, codes = self._buffers[codec].take(len(sending) * samples)
            frames = pcm.reshape(len(sending), samples)
            for row, (stream, _) in enumerate(sending):
                stream.source.read_into(frames[row])
            # One kernel call for all of this codec's streams.
            self._encoders[codec](pcm, codes)
            payloads = codes.data  # a memoryview: slicing it copies nothing
            start = 0
            for stream, destination in sending:
                header = _HEADER.pack(
                    _VERSION_2_BARE,
                    (_MARKER if stream.marker_next else 0) | stream.payload_type,
                    stream.sequence_number,
                    stream.timestamp,
                    stream.ssrc,
                )
                datagrams.append(
                    (stream.stream_id, header + payloads[start : start + samples], destination)
                )
                start += samples
                stream.marker_next = False
                # RFC 3550 §5.1: sequence +1 per packet, timestamp +1 per sample, both wrapping.
                stream.sequence_number = (stream.sequence_number + 1) & 0xFFFF
                stream.timestamp = (stream.timestamp + samples) & 0xFFFFFFFF
                stream.packets_sent += 1
                stream.octets_sent += samples
                stream.last_sent_at = now
        return datagrams

    def _unused_ssrc(self) -> int:
        # RFC 3550 §8.1: our own streams must not collide with one another.
        taken = {s.ssrc for s in self._streams.values()}
        while (ssrc := self._rng.getrandbits(32)) in taken:
            pass
        return ssrc
