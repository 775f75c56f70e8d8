"""The media clock: one 20 ms tick that serves every call (sans-IO).

House rule: there is no timer per call. Each ``tick(now)`` runs the whole media
path once for all streams, with the per-sample work done by one kernel call
over a 2-D ``(streams, samples)`` array wherever it can be:

1. receive: each stream's jitter buffer yields this slot's frame; the payloads
   of all G.711 streams of a codec are decoded by one kernel call (G.722 and
   Opus legs by their own PyAV decoder, resampled to the tick's rate); lost
   frames are concealed (PLC);
2. listen: RFC 4733 key timeouts, in-band DTMF (one Goertzel pass over every
   listening stream) and voice activity (for IVR legs, with what each leg was
   last sent as the echo reference) turn audio into events; the frames of legs
   whose audio goes to a recognizer are gathered with one copy (``take_audio``);
3. speak: prompt players and looped sources fill the output rows, then the
   mixer (bridges, conferences with mix-minus, whisper) writes the rows of
   every leg in a room with one kernel call;
4. record: each recorded leg's input (left) and what it heard (right) go to
   its recording tap;
5. send: all output rows of a G.711 codec are encoded by one kernel call
   (wideband legs by their PyAV encoder) and packed as RTP, or an RFC 4733
   event packet goes out instead while a key is being sent;
6. hand out: the output rows of PCM legs (legs without RTP, such as a
   browser's over WebRTC, ``pcm_leg``) go to the shell with one copy
   (``take_pcm``), and their input rows were filled in step 1 from their
   playout buffers with one gather;
7. report: every few ticks, the legs whose RTCP report is due (RFC 3550
   §6.2, one float compare each) build their SR or RR; the shell sends them
   from the RTCP ports (``take_rtcp``).

Rows ("slots") are stable per stream, so the mixer's plan only changes when a
room does. The shell (``transport_rtp``) owns sockets and the writer thread.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from typing import Literal, TypeAlias, cast

import numpy as np
from numpy.typing import NDArray

from media_core import g711
from media_core.codec_av import WIDEBAND_CODECS, decoder_for, encoder_for
from media_core.dtmf import DtmfEventSender
from media_core.dtmf_inband import InbandDtmfDetector
from media_core.jitter_buffer import FrameKind
from media_core.media_events import (
    DtmfReceived,
    MediaEvent,
    PromptFinished,
    SpeechEnded,
    SpeechStarted,
)
from media_core.mixer import Mixer
from media_core.pcm_leg import PcmLegs, PcmLegStats
from media_core.prompt import PromptPlayer
from media_core.receive import ReceivePath
from media_core.recording import Recorder
from media_core.recording_tap import LazyRecorder, RecordingChunk, RecordingTap
from media_core.rtcp_session import RtcpSession
from media_core.rtp import RtpPacket
from media_core.stream import (
    AV_CODECS,
    CODECS,
    G711_CODECS,
    Address,
    Codec,
    LoopedPcm,
    PcmSource,
    RtpStream,
    StreamStats,
)
from media_core.vad import VoiceActivityDetector, process_many

__all__ = [
    "CODECS",
    "Address",
    "Codec",
    "EncodeInto",
    "LoopedPcm",
    "PCM_CODEC",
    "MediaTick",
    "PcmLegStats",
    "PcmSource",
    "RtpStream",
    "StreamStats",
]

EncodeInto: TypeAlias = Callable[[NDArray[np.int16], NDArray[np.uint8]], None]
DecodeInto: TypeAlias = Callable[[NDArray[np.uint8], NDArray[np.int16]], None]

Datagram: TypeAlias = tuple[int, bytes, Address]

# RTCP reports are due seconds apart (RFC 3550 §6.2: 5 s minimum), so looking
# every 5 ticks (100 ms) is precise enough and costs 1/5 of the compares.
_RTCP_CHECK_TICKS = 5

# RFC 3550 §5.1: V=2, P=0, X=0, CC=0 | M, PT | sequence number | timestamp | SSRC.
_HEADER = struct.Struct("!BBHII")
_VERSION_2_BARE = 0x80
_MARKER = 0x80

#: What ``stats`` says of a PCM leg's codec: linear 16-bit samples, no RTP at all.
PCM_CODEC = cast(Codec, "L16")


class MediaTick:
    """Every RTP stream of the process, advanced together once per ``ptime_ms``."""

    __slots__ = (
        "_audio",
        "_decoders",
        "_encoders",
        "_events",
        "_frames_in",
        "_frames_out",
        "_free_slots",
        "_groups",
        "_inband",
        "_next_id",
        "_now",
        "_pcm",
        "_pcm_legs",
        "_pcm_out",
        "_pending_chunks",
        "_rng",
        "_rtcp_out",
        "_scratch",
        "_streams",
        "mixer",
        "ptime_ms",
        "rate_hz",
        "samples_per_frame",
        "cname",
        "ticks",
        "unix_offset_s",
    )

    def __init__(
        self,
        ptime_ms: int = 20,
        rate_hz: int = 8000,
        *,
        encoders: Mapping[Codec, EncodeInto] | None = None,
        rng: random.Random | None = None,
        cname: str | None = None,
        unix_offset_s: float | None = None,
    ) -> None:
        """Create an empty tick.

        Args:
            ptime_ms: packet time; every packet carries this much audio.
            rate_hz: the RTP clock and sampling rate (8000 for G.711, RFC 3551 §4.5.14).
            encoders: the ``*_into`` kernel per codec; ``media_core.g711``'s by default.
            rng: source of SSRCs and initial sequence numbers and timestamps,
                and of the RTCP intervals' randomisation.
            cname: the RTCP canonical name of our streams; by default a random
                one per tick (RFC 7022 §4.2), which says nothing about the host.
            unix_offset_s: Unix time minus the clock ``tick`` is given, for the
                NTP timestamps of sender reports; by default taken now against
                ``time.monotonic`` (the clock the shell uses).

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
        self._decoders: dict[Codec, DecodeInto] = {
            "PCMU": g711.ulaw_decode_into,
            "PCMA": g711.alaw_decode_into,
        }
        # RFC 3550 §5.1 and §8.1: SSRC and initial values SHOULD be unpredictable.
        self._rng = rng if rng is not None else random.SystemRandom()
        self._streams: dict[int, RtpStream] = {}
        self._groups: dict[Codec, dict[int, RtpStream]] = {codec: {} for codec in CODECS}
        self._frames_in = np.zeros((0, self.samples_per_frame), dtype=np.int16)
        self._frames_out = np.zeros((0, self.samples_per_frame), dtype=np.int16)
        self._scratch: dict[str, NDArray[np.generic]] = {}
        self._free_slots: list[int] = []
        self._next_id = 1
        self._events: list[MediaEvent] = []
        self._pending_chunks: list[RecordingChunk] = []
        self._audio: list[tuple[list[int], NDArray[np.int16]]] = []
        self._inband: InbandDtmfDetector | None = None
        self.mixer = Mixer()
        self.cname = cname if cname is not None else secrets.token_urlsafe(12)
        self.unix_offset_s = (
            unix_offset_s if unix_offset_s is not None else time.time() - time.monotonic()
        )
        self._now = 0.0  # the last tick's time: new streams' RTCP schedules start there
        self._rtcp_out: list[Datagram] = []
        # PCM legs: stream id -> its row in ``_pcm_legs``; their frames out, per tick.
        self._pcm: dict[int, int] = {}
        self._pcm_legs = PcmLegs(self.samples_per_frame)
        self._pcm_out: list[tuple[list[int], NDArray[np.int16]]] = []

    # ----------------------------------------------------------- streams

    def add_stream(
        self,
        codec: str,
        payload_type: int,
        source: PcmSource | NDArray[np.int16] | None = None,
        remote_addr: Address | None = None,
        *,
        ssrc: int | None = None,
        sequence_number: int | None = None,
        timestamp: int | None = None,
        latch_hosts: frozenset[str] = frozenset(),
        telephone_event_pt: int | None = None,
        vad: bool = False,
        inband_dtmf: bool = False,
        rtcp_addr: Address | None = None,
    ) -> int:
        """Start a stream; it sends from the next tick on, once it has an address.

        Args:
            codec: ``PCMU``, ``PCMA``, ``G722`` or ``OPUS`` (case-insensitive, as
                SDP encoding names are). Wideband legs are decoded to, and
                encoded from, the tick's rate; their RTP clock is the codec's.
            payload_type: the negotiated RTP payload type, 0..127.
            source: what the leg hears when no prompt plays and it is in no room:
                a ``PcmSource``, an int16 array played in a loop, or None (silence).
            remote_addr: where the SDP says to send; None until media arrives.
            ssrc: our SSRC; random when None.
            sequence_number: of the first packet; random when None.
            timestamp: of the first packet; random when None.
            latch_hosts: source IPs whose packets may latch the stream (symmetric
                RTP); empty lets any source latch it.
            telephone_event_pt: the negotiated RFC 4733 payload type, if any.
            vad: report the caller's speech starts and ends (IVR legs).
            inband_dtmf: detect key tones in the received audio (trunks without
                RFC 4733).
            rtcp_addr: where the SDP's ``a=rtcp`` says reports go; by default the
                RTP address's port + 1 (RFC 3550 §11).

        Returns:
            The new stream's id.

        Raises:
            ValueError: unknown codec, or a value out of its field's range.
        """
        name = codec.upper()
        if name not in CODECS:
            raise ValueError(f"codec {codec!r} is not one of {', '.join(CODECS)}")
        for what, value, bits in (
            ("payload type", payload_type, 7),
            ("SSRC", ssrc, 32),
            ("sequence number", sequence_number, 16),
            ("timestamp", timestamp, 32),
        ):
            if value is not None and not 0 <= value < (1 << bits):
                raise ValueError(f"{what} {value} is not a {bits}-bit value")
        if isinstance(source, np.ndarray):
            source = LoopedPcm(source)
        wideband = WIDEBAND_CODECS.get(name)
        clock_rate_hz = wideband.clock_rate_hz if wideband is not None else self.rate_hz
        stream_id = self._next_id
        self._next_id += 1
        stream = RtpStream(
            stream_id=stream_id,
            codec=name,  # checked against CODECS above
            payload_type=payload_type,
            ssrc=ssrc if ssrc is not None else self._unused_ssrc(),
            sequence_number=(
                sequence_number if sequence_number is not None else self._rng.getrandbits(16)
            ),
            timestamp=timestamp if timestamp is not None else self._rng.getrandbits(32),
            source=source,
            remote_addr=remote_addr,
            latch_hosts=latch_hosts,
        )
        stream.clock_rate_hz = clock_rate_hz
        stream.timestamp_step = clock_rate_hz * self.ptime_ms // 1000
        if wideband is not None:
            stream.av_decoder = decoder_for(name, pcm_rate_hz=self.rate_hz, ptime_ms=self.ptime_ms)
            stream.av_encoder = encoder_for(name, pcm_rate_hz=self.rate_hz, ptime_ms=self.ptime_ms)
        stream.slot = self._take_slot()
        stream.telephone_event_pt = telephone_event_pt
        stream.rtcp = RtcpSession(
            stream.ssrc,
            self.cname,
            now_s=self._now,
            rng=self._rng,
            unix_offset_s=self.unix_offset_s,
            clock_rate_hz=clock_rate_hz,
        )
        stream.rtcp_addr = rtcp_addr
        stream.rx = ReceivePath(
            name,
            payload_type,
            telephone_event_pt,
            clock_rate_hz=clock_rate_hz,
            ptime_ms=self.ptime_ms,
            pcm_rate_hz=self.rate_hz,
        )
        if vad:
            stream.vad = VoiceActivityDetector(self.rate_hz, self.ptime_ms)
        if inband_dtmf:
            if self._inband is None:
                self._inband = InbandDtmfDetector(rate_hz=self.rate_hz)
            stream.inband = self._inband.new_state()
        self._streams[stream_id] = stream
        self._groups[stream.codec][stream_id] = stream
        return stream_id

    def add_pcm_stream(
        self,
        source: PcmSource | NDArray[np.int16] | None = None,
        *,
        vad: bool = False,
        inband_dtmf: bool = False,
    ) -> int:
        """Start a leg without RTP: the application pushes its audio and takes what it hears.

        The leg is a stream like the others for ``bridge``, ``conference_add``,
        ``set_source``, ``play``, ``record``, ``stream_audio`` and
        ``remove_stream``, at the tick's rate. What it receives comes from
        ``push_pcm`` through a small playout buffer (``pcm_leg``); what it
        hears each tick comes out of ``take_pcm`` instead of going out as RTP.
        It is never paused for want of a peer address, and it has no RTCP.

        Args:
            source: what the leg hears when no prompt plays and it is in no room.
            vad: report the leg's speech starts and ends.
            inband_dtmf: detect key tones in the pushed audio.

        Returns:
            The new stream's id.
        """
        if isinstance(source, np.ndarray):
            source = LoopedPcm(source)
        stream_id = self._next_id
        self._next_id += 1
        # Latched with no address: a datagram fed to it by mistake is only counted as ignored.
        stream = RtpStream(
            stream_id=stream_id,
            codec=PCM_CODEC,
            payload_type=0,
            ssrc=0,
            sequence_number=0,
            timestamp=0,
            source=source,
            latched=True,
        )
        stream.clock_rate_hz = self.rate_hz
        stream.timestamp_step = self.samples_per_frame
        stream.slot = self._take_slot()
        if vad:
            stream.vad = VoiceActivityDetector(self.rate_hz, self.ptime_ms)
        if inband_dtmf:
            if self._inband is None:
                self._inband = InbandDtmfDetector(rate_hz=self.rate_hz)
            stream.inband = self._inband.new_state()
        self._streams[stream_id] = stream
        self._pcm[stream_id] = self._pcm_legs.add()
        return stream_id

    def push_pcm(self, stream_id: int, pcm: NDArray[np.int16]) -> None:
        """Give a PCM leg audio it received (any length, at the tick's rate).

        Raises:
            KeyError: no such PCM leg.
            ValueError: ``pcm`` is not a 1-D int16 array.
        """
        self._pcm_legs.push(self._pcm_row(stream_id), pcm)

    def pcm_stats(self, stream_id: int) -> PcmLegStats:
        """A PCM leg's playout buffer counters (pushed, dropped, underruns).

        Raises:
            KeyError: no such PCM leg.
        """
        return self._pcm_legs.stats(self._pcm_row(stream_id))

    def is_pcm(self, stream_id: int) -> bool:
        """Whether the stream is a PCM leg (``add_pcm_stream``)."""
        return stream_id in self._pcm

    def take_pcm(self) -> list[tuple[list[int], NDArray[np.int16]]]:
        """What the PCM legs heard since the last call, one pair per tick.

        ``(stream_ids, frames)``: one row per leg, one frame long, a copy the
        caller may keep (rows are views of it).
        """
        out, self._pcm_out = self._pcm_out, []
        return out

    def remove_stream(self, stream_id: int) -> None:
        """Stop a stream; it sends nothing more, and its recording is closed.

        Raises:
            KeyError: no such stream.
        """
        stream = self.stream(stream_id)
        self._rtcp_bye(stream)
        del self._streams[stream_id]
        pcm_row = self._pcm.pop(stream_id, None)
        if pcm_row is None:
            del self._groups[stream.codec][stream_id]
        else:
            self._pcm_legs.remove(pcm_row)
        self.mixer.remove(stream.slot)
        if stream.tap is not None:
            self._pending_chunks.append(stream.tap.close())
            stream.tap = None
        if stream.inband is not None:
            digit = stream.inband.flush()
            if digit is not None:
                self._events.append(DtmfReceived(stream_id, digit, "inband"))
        if stream.vad is not None:
            self._vad_events(stream_id, stream.vad.finish())
        self._frames_in[stream.slot] = 0
        self._frames_out[stream.slot] = 0
        self._free_slots.append(stream.slot)

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
        stats = StreamStats(
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
        rtcp = s.rtcp
        if rtcp is None:  # a PCM leg: no RTCP, the defaults stand
            return stats
        return dataclasses.replace(
            stats,
            rtcp_sent=rtcp.reports_sent,
            rtcp_received=rtcp.reports_received,
            round_trip_s=rtcp.round_trip_s,
            remote_fraction_lost=rtcp.remote_fraction_lost,
            remote_jitter_ms=rtcp.remote_jitter_ms,
        )

    # ------------------------------------------------ what a leg hears / does

    def play(self, stream_id: int, prompt_pcm: NDArray[np.int16]) -> None:
        """Play a prompt to the leg, over its looped source, until it ends or ``stop_prompt``."""
        stream = self.stream(stream_id)
        if stream.player is None:
            stream.player = PromptPlayer(self.rate_hz)
        stream.player.start(prompt_pcm)

    def set_source(self, stream_id: int, source: PcmSource | NDArray[np.int16] | None) -> None:
        """Change what the leg hears under its prompts (hold music, a tone, silence).

        An array is looped from its start.

        Raises:
            KeyError: no such stream.
        """
        if isinstance(source, np.ndarray):
            source = LoopedPcm(source)
        self.stream(stream_id).source = source

    def stop_prompt(self, stream_id: int) -> None:
        """Barge-in: the very next frame the leg hears is no longer the prompt."""
        player = self.stream(stream_id).player
        if player is not None:
            player.stop()

    def tune_vad(
        self, stream_id: int, *, start_ms: int | None = None, hangover_ms: int | None = None
    ) -> None:
        """Set a leg's speech start smoothing and end hangover (a flow's endpointing).

        Raises:
            KeyError: no such stream.
            ValueError: the leg has no VAD, or a negative duration.
        """
        vad = self.stream(stream_id).vad
        if vad is None:
            raise ValueError(f"stream {stream_id} was added without vad=True")
        vad.tune(start_ms=start_ms, hangover_ms=hangover_ms)

    def enable_vad(self, stream_id: int, on: bool = True) -> None:
        """Start (or stop) reporting a leg's speech after it was added (``vad=`` of ``add_stream``).

        Turning it on again keeps a leg's detector; a new one starts silent.

        Raises:
            KeyError: no such stream.
        """
        stream = self.stream(stream_id)
        if not on:
            stream.vad = None
        elif stream.vad is None:
            stream.vad = VoiceActivityDetector(self.rate_hz, self.ptime_ms)

    def stream_audio(self, stream_id: int, on: bool = True) -> None:
        """Start (or stop) handing the leg's received audio out through ``take_audio``.

        Raises:
            KeyError: no such stream.
        """
        self.stream(stream_id).audio_out = on

    def take_audio(self) -> list[tuple[list[int], NDArray[np.int16]]]:
        """The received frames of ``stream_audio`` legs since the last call.

        One ``(stream_ids, frames)`` pair per tick: ``frames`` has one row per id,
        one frame long, a copy the caller may keep.
        """
        audio, self._audio = self._audio, []
        return audio

    def send_dtmf(self, stream_id: int, digit: str, duration_ms: int = 100) -> None:
        """Send a key as RFC 4733 events, replacing the audio while it lasts.

        Raises:
            ValueError: the leg negotiated no telephone-event, or a bad digit.
        """
        stream = self.stream(stream_id)
        if stream.telephone_event_pt is None:
            raise ValueError(f"stream {stream_id} negotiated no telephone-event")
        DtmfEventSender(digit, duration_ms, 0)  # validates now, not at send time
        stream.dtmf_queue.append((digit, duration_ms))

    def bridge(self, stream_a: int, stream_b: int) -> str:
        """Join two legs: each hears the other (a two-party room)."""
        return self.mixer.bridge(self.stream(stream_a).slot, self.stream(stream_b).slot)

    def conference_add(
        self,
        room: str,
        stream_id: int,
        role: Literal["member", "whisper"] = "member",
        whisper_to: tuple[int, ...] = (),
    ) -> None:
        """Put a leg in an N-party room; a ``whisper`` leg is heard only by ``whisper_to``."""
        targets = tuple(self.stream(target).slot for target in whisper_to)
        self.mixer.conference_add(room, self.stream(stream_id).slot, role, targets)

    def leave_room(self, stream_id: int) -> None:
        """Take a leg out of its bridge or conference."""
        self.mixer.remove(self.stream(stream_id).slot)

    def record(
        self, stream_id: int, recorder: Recorder | LazyRecorder, chunk_frames: int = 25
    ) -> None:
        """Record the leg: what it sends on the left, what it hears on the right."""
        stream = self.stream(stream_id)
        if stream.tap is not None:
            self._pending_chunks.append(stream.tap.close())
        # Phase by slot: calls that start together still flush on different ticks.
        stream.tap = RecordingTap(recorder, self.samples_per_frame, chunk_frames, phase=stream.slot)

    def take_events(self) -> list[MediaEvent]:
        """The events since the last call (DTMF, speech, prompt ends)."""
        events, self._events = self._events, []
        return events

    def take_rtcp(self) -> list[Datagram]:
        """The RTCP datagrams to send from the streams' RTCP ports, since the last call."""
        out, self._rtcp_out = self._rtcp_out, []
        return out

    def take_recording_chunks(self) -> list[RecordingChunk]:
        """The recording chunks to write, in order, off the tick's thread."""
        chunks, self._pending_chunks = self._pending_chunks, []
        return chunks

    # ------------------------------------------------------------- input

    def on_rtp_received(self, stream_id: int, data: bytes, addr: Address, now: float) -> bool:
        """Take a datagram that arrived on a stream's port.

        The first valid RTP packet from an allowed address latches the stream
        to its source; later packets from elsewhere are counted as ignored.

        Returns:
            True when the packet was taken; False when it is not valid RTP,
            comes from another address than the latched one, or the stream is
            gone (a datagram racing ``remove_stream``).
        """
        stream = self._streams.get(stream_id)
        if stream is None:
            return False
        if len(data) >= 12 and data[0] == _VERSION_2_BARE:
            # RFC 3550 §5.1: V=2 without padding, extension or CSRCs, nearly every
            # packet: unpacked here, ~2 us cheaper than building an RtpPacket.
            _, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
            marker, payload_type, payload = second >= _MARKER, second & 0x7F, data[12:]
            if marker and 72 <= payload_type <= 76:  # RFC 5761 §4: RTCP on the RTP port
                stream.packets_invalid += 1
                return False
        else:
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                stream.packets_invalid += 1
                return False
            marker, payload_type, payload = packet.marker, packet.payload_type, packet.payload
            sequence, timestamp, ssrc = packet.sequence_number, packet.timestamp, packet.ssrc
        if not stream.latched:
            if stream.latch_hosts and addr[0] not in stream.latch_hosts:
                # An address signalling did not vouch for may not redirect the audio.
                stream.packets_ignored += 1
                return False
            if addr[1] != 0:  # port 0 cannot be answered (a raw-socket replay)
                self.latch(stream_id, addr)
        elif addr != stream.remote_addr:
            stream.packets_ignored += 1
            return False
        stream.packets_received += 1
        stream.octets_received += len(payload)
        stream.remote_ssrc = ssrc
        stream.last_payload_type = payload_type
        stream.last_received_at = now
        if stream.rx is not None:
            digits = stream.rx.on_packet(
                sequence, timestamp, ssrc, payload_type, marker, payload, now
            )
            for digit in digits:
                self._events.append(DtmfReceived(stream_id, digit, "rfc4733"))
        return True

    def on_rtcp_received(self, stream_id: int, data: bytes, addr: Address, now: float) -> bool:
        """Take a datagram that arrived on a stream's RTCP port.

        Reports from an address signalling did not vouch for are ignored, as
        for RTP; the first accepted one latches where our reports go (RFC 4961).

        Returns:
            True when it was a valid RTCP compound packet from an allowed source.
        """
        stream = self._streams.get(stream_id)
        if stream is None or stream.rtcp is None:
            return False
        if not stream.rtcp_latched:
            if stream.latch_hosts and addr[0] not in stream.latch_hosts:
                stream.packets_ignored += 1
                return False
        elif addr != stream.rtcp_addr:
            stream.packets_ignored += 1
            return False
        stats = stream.rx.stats if stream.rx is not None else None
        if stream.rtcp.on_rtcp(data, now, stats) is None:
            return False
        if not stream.rtcp_latched and addr[1] != 0:
            stream.rtcp_addr, stream.rtcp_latched = addr, True
        return True

    def record_send_error(self, stream_id: int) -> None:
        """Count a datagram the transport failed to send (ICMP errors and the like)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.send_errors += 1

    # -------------------------------------------------------------- tick

    def tick(self, now: float) -> list[Datagram]:
        """Run the media path once for every stream.

        Streams without a remote address are paused: they neither send nor
        advance their prompt, sequence number or timestamp.

        Args:
            now: the clock, in seconds.

        Returns:
            ``(stream_id, datagram, destination)`` for each stream that sends.
        """
        self.ticks += 1
        self._now = now
        self._receive(now)
        if self._pcm:
            self._receive_pcm()
        self._listen(now)
        self._speak()
        self._record()
        datagrams = self._send(now)
        if self._pcm:
            self._hand_out_pcm()
        if self.ticks % _RTCP_CHECK_TICKS == 0:
            self._report(now)
        return datagrams

    def _receive(self, now: float) -> None:
        samples = self.samples_per_frame
        frames_in = self._frames_in
        for codec in G711_CODECS:
            group = self._groups[codec]
            audio: list[tuple[RtpStream, bytes]] = []
            for stream in group.values():
                rx = stream.rx
                if rx is None or stream.packets_received == 0:
                    continue
                frame = rx.next_frame(now)
                if frame.kind is FrameKind.AUDIO and len(frame.payload) == samples:
                    audio.append((stream, frame.payload))
                elif frame.kind is FrameKind.LOST:
                    frames_in[stream.slot] = rx.conceal()
                else:
                    frames_in[stream.slot] = 0
            if not audio:
                continue
            # One kernel call decodes this codec's payloads for every stream.
            codes = np.frombuffer(b"".join(payload for _, payload in audio), dtype=np.uint8)
            pcm = self._buffer("pcm_in", len(codes), np.int16)
            self._decoders[codec](codes, pcm)
            decoded = pcm.reshape(len(audio), samples)
            for row, (stream, _) in enumerate(audio):
                frames_in[stream.slot] = stream.rx.played(decoded[row])  # type: ignore[union-attr]
        for codec in AV_CODECS:
            for stream in self._groups[codec].values():
                if stream.rx is not None and stream.packets_received:
                    frames_in[stream.slot] = self._decode_wideband(stream, now)

    def _receive_pcm(self) -> None:
        # One gather from the playout ring for every PCM leg, one scatter into the rows.
        ids = list(self._pcm)
        rows = np.fromiter(self._pcm.values(), dtype=np.intp, count=len(ids))
        slots = np.fromiter((self._streams[i].slot for i in ids), dtype=np.intp, count=len(ids))
        frames = self._buffer("pcm_frames", len(ids) * self.samples_per_frame, np.int16)
        frames = frames.reshape(len(ids), self.samples_per_frame)
        self._pcm_legs.pull_into(rows, frames)
        self._frames_in[slots] = frames

    def _hand_out_pcm(self) -> None:
        ids = list(self._pcm)
        slots = np.fromiter((self._streams[i].slot for i in ids), dtype=np.intp, count=len(ids))
        self._pcm_out.append((ids, self._frames_out[slots]))  # fancy indexing copies

    def _pcm_row(self, stream_id: int) -> int:
        try:
            return self._pcm[stream_id]
        except KeyError:
            raise KeyError(f"no PCM leg {stream_id}") from None

    @staticmethod
    def _decode_wideband(stream: RtpStream, now: float) -> NDArray[np.int16]:
        frame = stream.rx.next_frame(now)  # type: ignore[union-attr]
        decoder = stream.av_decoder
        assert decoder is not None  # every wideband stream has one
        if frame.kind is FrameKind.AUDIO:
            try:
                return decoder.decode(frame.payload)
            except ValueError:
                stream.packets_invalid += 1  # a corrupt payload: conceal it like a loss
        elif frame.kind is not FrameKind.LOST:
            return np.zeros(decoder.frame_samples, dtype=np.int16)
        # The codec's own concealment keeps its decoder in step (Opus PLC).
        return decoder.conceal()

    def _listen(self, now: float) -> None:
        frame_start_s = now - self.ptime_ms / 1000
        inband: list[RtpStream] = []
        vad: list[RtpStream] = []
        audio: list[RtpStream] = []
        for stream in self._streams.values():
            if stream.audio_out:
                audio.append(stream)
            if stream.rx is not None and stream.rx.dtmf is not None:
                for digit in stream.rx.dtmf_timeouts(now):
                    self._events.append(DtmfReceived(stream.stream_id, digit, "rfc4733"))
            if stream.inband is not None:
                inband.append(stream)
            if stream.vad is not None:
                vad.append(stream)
        if inband and self._inband is not None:
            rows = np.fromiter((s.slot for s in inband), dtype=np.intp, count=len(inband))
            found = self._inband.detect_many(
                self._frames_in[rows],
                [s.inband for s in inband],  # type: ignore[misc]
                frame_start_s,
            )
            for row, digit in found:
                self._events.append(DtmfReceived(inband[row].stream_id, digit, "inband"))
        if vad:
            rows = np.fromiter((s.slot for s in vad), dtype=np.intp, count=len(vad))
            # Before ``_speak``, the out rows still hold what each leg was last sent.
            events = process_many(
                [s.vad for s in vad],  # type: ignore[misc]
                self._frames_in[rows],
                frame_start_s,
                reference=self._frames_out[rows],
            )
            for row, event in events:
                self._vad_events(vad[row].stream_id, [event])
        if audio:
            rows = np.fromiter((s.slot for s in audio), dtype=np.intp, count=len(audio))
            self._audio.append(([s.stream_id for s in audio], self._frames_in[rows]))

    def _speak(self) -> None:
        frames_out = self._frames_out
        for stream in self._streams.values():
            if stream.remote_addr is None and stream.stream_id not in self._pcm:
                continue  # paused: its prompt waits for the peer (PCM legs have none)
            out = frames_out[stream.slot]
            player = stream.player
            if player is not None and player.playing:
                player.read_into(out)
                if player.completed:
                    self._events.append(PromptFinished(stream.stream_id))
            elif stream.source is not None:
                stream.source.read_into(out)
            else:
                out[:] = 0
        if self.mixer.rooms:
            # One kernel call: every bridge and conference, mix-minus and whisper.
            self.mixer.mix(self._frames_in, frames_out)

    def _record(self) -> None:
        for stream in self._streams.values():
            if stream.tap is not None:
                slot = stream.slot
                chunk = stream.tap.add(self._frames_in[slot], self._frames_out[slot])
                if chunk is not None:
                    self._pending_chunks.append(chunk)

    def _send(self, now: float) -> list[tuple[int, bytes, Address]]:
        samples = self.samples_per_frame
        datagrams: list[tuple[int, bytes, Address]] = []
        for codec in AV_CODECS:
            for stream in self._groups[codec].values():
                if stream.remote_addr is not None:
                    datagrams += self._send_wideband(stream, now)
        for codec in G711_CODECS:
            group = self._groups[codec]
            sending = [s for s in group.values() if s.remote_addr is not None]
            if not sending:
                continue
            rows = np.fromiter((s.slot for s in sending), dtype=np.intp, count=len(sending))
            pcm = np.ascontiguousarray(self._frames_out[rows]).reshape(-1)
            codes = self._buffer("codes_out", len(pcm), np.uint8)
            # One kernel call for all of this codec's streams.
            self._encoders[codec](pcm, codes)
            payloads = codes.data  # a memoryview: slicing it copies nothing
            for index, stream in enumerate(sending):
                if stream.dtmf_sender is not None or stream.dtmf_queue:
                    datagrams += self._dtmf_packets(stream, now)
                    continue
                start = index * samples
                datagrams.append(
                    (
                        stream.stream_id,
                        self._header(
                            stream, stream.payload_type, stream.marker_next, stream.timestamp
                        )
                        + payloads[start : start + samples],
                        stream.remote_addr,  # type: ignore[arg-type]
                    )
                )
                stream.marker_next = False
                stream.octets_sent += samples
                self._advance(stream, now)
        return datagrams

    def _send_wideband(self, stream: RtpStream, now: float) -> list[tuple[int, bytes, Address]]:
        encoder = stream.av_encoder
        assert encoder is not None  # every wideband stream has one
        # The encoder sees every frame, even under a key press: its state stays continuous.
        payload = encoder.encode(self._frames_out[stream.slot])
        if stream.dtmf_sender is not None or stream.dtmf_queue:
            return self._dtmf_packets(stream, now)
        header = self._header(stream, stream.payload_type, stream.marker_next, stream.timestamp)
        stream.marker_next = False
        stream.octets_sent += len(payload)
        self._advance(stream, now)
        return [(stream.stream_id, header + payload, stream.remote_addr)]  # type: ignore[list-item]

    def _dtmf_packets(self, stream: RtpStream, now: float) -> list[tuple[int, bytes, Address]]:
        sender = stream.dtmf_sender
        if sender is None:
            digit, duration_ms = stream.dtmf_queue.pop(0)
            # RFC 4733 §2.5.1.1: an event's timestamp is the audio time it starts at.
            sender = stream.dtmf_sender = DtmfEventSender(
                digit,
                duration_ms,
                stream.timestamp,
                rate_hz=stream.clock_rate_hz,  # RFC 4733 §2.3: the audio's RTP clock
                ptime_ms=self.ptime_ms,
            )
        packets = []
        for packet in sender.next_tick():
            header = self._header(
                stream, stream.telephone_event_pt or 0, packet.marker, packet.timestamp
            )
            packets.append((stream.stream_id, header + packet.payload, stream.remote_addr))
            stream.octets_sent += len(packet.payload)
        if sender.done:
            stream.dtmf_sender = None
        self._advance(stream, now, sent=len(packets))
        return packets  # type: ignore[return-value]

    def _header(self, stream: RtpStream, payload_type: int, marker: bool, timestamp: int) -> bytes:
        sequence = stream.sequence_number
        stream.sequence_number = (sequence + 1) & 0xFFFF  # RFC 3550 §5.1: +1, wrapping
        return _HEADER.pack(
            _VERSION_2_BARE,
            (_MARKER if marker else 0) | payload_type,
            sequence,
            timestamp,
            stream.ssrc,
        )

    def _advance(self, stream: RtpStream, now: float, sent: int = 1) -> None:
        # RFC 3550 §5.1: the timestamp advances by the samples of each packet time.
        stream.timestamp = (stream.timestamp + stream.timestamp_step) & 0xFFFFFFFF
        stream.packets_sent += sent
        stream.last_sent_at = now

    # -------------------------------------------------------------- RTCP

    def _report(self, now: float) -> None:
        for stream in self._streams.values():
            session = stream.rtcp
            if session is None or now < session.next_due_s:
                continue
            destination = self._rtcp_destination(stream)
            data = session.build(
                now,
                packets_sent=stream.packets_sent,
                octets_sent=stream.octets_sent,
                rtp_timestamp_now=self._rtp_now(stream),
                receiver_stats=stream.rx.stats if stream.rx is not None else None,
            )
            if destination is not None:  # no peer address yet: the report is skipped
                self._rtcp_out.append((stream.stream_id, data, destination))

    def _rtcp_bye(self, stream: RtpStream) -> None:
        session = stream.rtcp
        destination = self._rtcp_destination(stream)
        if session is None or session.closed or destination is None:
            return
        # RFC 3550 §6.6: a leg that ends says BYE, with its final counts.
        data = session.bye(
            self._now,
            packets_sent=stream.packets_sent,
            octets_sent=stream.octets_sent,
            rtp_timestamp_now=self._rtp_now(stream),
            receiver_stats=stream.rx.stats if stream.rx is not None else None,
        )
        if data is not None:
            self._rtcp_out.append((stream.stream_id, data, destination))

    @staticmethod
    def _rtp_now(stream: RtpStream) -> int:
        # RFC 3550 §6.4.1: the RTP time of this instant: that of the packet just sent.
        return (stream.timestamp - stream.timestamp_step) & 0xFFFFFFFF

    @staticmethod
    def _rtcp_destination(stream: RtpStream) -> Address | None:
        if stream.rtcp_addr is not None:
            return stream.rtcp_addr
        if stream.remote_addr is None:
            return None
        host, port = stream.remote_addr
        return (host, port + 1)  # RFC 3550 §11: RTCP on the next port up

    # ----------------------------------------------------------- helpers

    def _vad_events(self, stream_id: int, events: list) -> None:  # type: ignore[type-arg]
        for event in events:
            kind = SpeechStarted if event.kind == "speech_start" else SpeechEnded
            self._events.append(kind(stream_id, event.timestamp_s))

    def _take_slot(self) -> int:
        if self._free_slots:
            return self._free_slots.pop()
        slot = len(self._streams)
        if slot >= len(self._frames_in):
            # Grow by doubling; rows keep their contents (and streams their slots).
            size = max(16, 2 * len(self._frames_in))
            for name in ("_frames_in", "_frames_out"):
                grown = np.zeros((size, self.samples_per_frame), dtype=np.int16)
                old = getattr(self, name)
                grown[: len(old)] = old
                setattr(self, name, grown)
        return slot

    def _buffer(self, name: str, size: int, dtype: type) -> NDArray:  # type: ignore[type-arg]
        buffer = self._scratch.get(name)
        if buffer is None or len(buffer) < size:
            buffer = np.zeros(
                max(size, 2 * (len(buffer) if buffer is not None else 0)), dtype=dtype
            )
            self._scratch[name] = buffer
        return buffer[:size]

    def _unused_ssrc(self) -> int:
        # RFC 3550 §8.1: our own streams must not collide with one another.
        taken = {s.ssrc for s in self._streams.values()}
        while (ssrc := self._rng.getrandbits(32)) in taken:
            pass
        return ssrc
