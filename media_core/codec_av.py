"""Wideband codecs through PyAV: G.722 and Opus, to and from the tick's 8 kHz PCM.

The media tick works on 20 ms frames of 8 kHz int16 PCM. A wideband leg gets
one ``AvDecoder`` per received stream and one ``AvEncoder`` per sent stream.
Receiving, FFmpeg decodes at the codec's rate (16 kHz for G.722; 48 kHz for
Opus, the only rate FFmpeg's libopus decoder gives) and a streaming
``Resampler`` brings it to 8 kHz. Sending, G.722 gets 16 kHz from a streaming
``Resampler``; libopus takes the 8 kHz PCM as it is, since its encoder codes 8,
16 or 48 kHz input itself (RFC 6716 §2) and upsampling first would only add
3 ms of delay and 40 µs of work per frame. Codec and filter state carry across
frames, so frame edges do not click.

Exactly one frame per call: one packet time is a whole number of the
resampler's ``M``-sample cycles at every rate pair used here (8, 16, 48 kHz),
so it always converts to exactly one packet time; the resampler's delay shows
as latency (its first outputs are its start-up from silence), never as a short
frame, so no output FIFO is needed. The g722 and libopus encoders, given one
packet time per frame, return one packet per frame from the first call on:
their algorithmic delay is inside the audio too. Round trip (8 kHz in and out,
20 ms): G.722 about 7.6 ms (3.1 ms per resampler plus 1.4 ms of QMF), Opus
about 9.6 ms (6.5 ms of lookahead plus 3.1 ms for the one resampler).

Loss: for Opus, ``conceal`` runs libopus's own concealment (RFC 6716 §4.4),
which also keeps the decoder in step. PyAV cannot be given "no packet" (an
empty packet makes FFmpeg drain the decoder for good), so it is given a packet
of zero-length frames instead (RFC 6716 §3.2.1 allows them), which libopus
conceals as lost, in the mode of the last good packet. FFmpeg's G.722 decoder
has no concealment, so its 8 kHz output goes through the pitch-repeating,
fading concealer that serves G.711 (``plc``), much as G.722 Appendix IV does
in the codec's own domain.

PyAV is used only for the codecs: each stream's ``CodecContext`` and, for the
encoder, its ``AudioFrame`` are made once. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from numpy.typing import NDArray

from media_core.plc import G711Concealer
from media_core.resample import Resampler

__all__ = [
    "PCM_RATES_HZ",
    "WIDEBAND_CODECS",
    "AvDecoder",
    "AvEncoder",
    "WidebandCodec",
    "decoder_for",
    "encoder_for",
    "opus_packet_samples",
]

Payload = bytes | bytearray | memoryview

#: The PCM rates the tick side may run at.
PCM_RATES_HZ: tuple[int, ...] = (8000, 16000, 48000)

# RFC 7587 §3.1.1 recommends 8-12 kbit/s for narrowband and 16-20 kbit/s for
# wideband speech; 24 kbit/s leaves room for music on hold. In VBR, libopus
# spends only what the 8 kHz PCM we feed it needs (about 10-15 kbit/s).
_OPUS_BITRATE_BPS = 24000


@dataclass(frozen=True, slots=True)
class WidebandCodec:
    """One wideband codec: its SDP description and how PyAV runs it.

    Attributes:
        encoding_name: the SDP/RTP encoding name, as registered.
        clock_rate_hz: the RTP clock rate (``a=rtpmap``), which steps the timestamp.
        sample_rate_hz: the rate the audio is actually coded at.
        sdp_channels: the channel count written in ``a=rtpmap``, or None if omitted.
        av_codec: the FFmpeg codec name for both directions.
        ptimes_ms: the packet times this module supports for it.
        encoder_rates_hz: the input rates the encoder codes itself; from any
            other rate the PCM is resampled to ``sample_rate_hz`` first.
    """

    encoding_name: str
    clock_rate_hz: int
    sample_rate_hz: int
    sdp_channels: int | None
    av_codec: str
    ptimes_ms: tuple[int, ...]
    encoder_rates_hz: tuple[int, ...]

    @property
    def rtpmap(self) -> str:
        """The ``a=rtpmap`` value after the payload type, e.g. ``opus/48000/2``."""
        base = f"{self.encoding_name}/{self.clock_rate_hz}"
        return base if self.sdp_channels is None else f"{base}/{self.sdp_channels}"

    def timestamp_step(self, ptime_ms: int = 20) -> int:
        """How far the RTP timestamp advances per packet of ``ptime_ms``."""
        return self.clock_rate_hz * ptime_ms // 1000

    def samples_per_packet(self, ptime_ms: int = 20) -> int:
        """Samples at ``sample_rate_hz`` in one packet of ``ptime_ms``."""
        return self.sample_rate_hz * ptime_ms // 1000


WIDEBAND_CODECS: dict[str, WidebandCodec] = {
    # RFC 3551 §4.5.2: G.722 is sampled at 16 kHz, yet its RTP clock rate is
    # 8000 Hz (an error in RFC 1890 kept for compatibility), so 20 ms steps the
    # timestamp by 160 and, at 64 kbit/s, carries 160 octets.
    "G722": WidebandCodec("G722", 8000, 16000, None, "g722", (10, 20, 30, 40, 50, 60), (16000,)),
    # RFC 7587 §4.1: the RTP clock is 48 kHz whatever the coded bandwidth; §7:
    # the rtpmap is always opus/48000/2, though we send mono. libopus's frame
    # durations from 10 ms up to one packet of 60 ms. Its encoder takes 8, 12,
    # 16, 24 or 48 kHz input (RFC 6716 §2); FFmpeg's decoder always gives 48 kHz.
    "OPUS": WidebandCodec(
        "opus", 48000, 48000, 2, "libopus", (10, 20, 40, 60), (8000, 16000, 48000)
    ),
}


def _codec(name: str) -> WidebandCodec:
    codec = WIDEBAND_CODECS.get(name.upper()) if isinstance(name, str) else None
    if codec is None:
        known = ", ".join(c.encoding_name for c in WIDEBAND_CODECS.values())
        raise ValueError(f"codec {name!r} is not a wideband codec (known: {known})")
    return codec


def _check_timing(codec: WidebandCodec, pcm_rate_hz: int, ptime_ms: int) -> None:
    if pcm_rate_hz not in PCM_RATES_HZ:
        raise ValueError(f"pcm_rate_hz must be one of {PCM_RATES_HZ}, not {pcm_rate_hz!r}")
    if ptime_ms not in codec.ptimes_ms:
        raise ValueError(
            f"{codec.encoding_name} supports ptime_ms {codec.ptimes_ms}, not {ptime_ms!r}"
        )


# RFC 6716 §3.1, Table 2: TOC configs 0-11 are SILK (10/20/40/60 ms), 12-15
# Hybrid (10/20 ms), 16-31 CELT (2.5/5/10/20 ms); in 48 kHz samples.
_OPUS_FRAME_SAMPLES: tuple[int, ...] = (
    (480, 960, 1920, 2880) * 3 + (480, 960) * 2 + (120, 240, 480, 960) * 4
)
_OPUS_MAX_PACKET_SAMPLES = 5760  # RFC 6716 §3.2.5: at most 120 ms per packet


def opus_packet_samples(payload: Payload) -> int:
    """The duration of an Opus packet, in 48 kHz samples, from its TOC byte.

    Args:
        payload: one Opus packet (an RTP payload).

    Returns:
        Samples per frame times frames in the packet.

    Raises:
        ValueError: the packet is empty or its frame count is malformed.
    """
    if len(payload) == 0:
        raise ValueError("empty Opus payload")
    toc = payload[0]
    code = toc & 0x03  # RFC 6716 §3.2: frames in the packet
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        # §3.2.5: code 3 carries the frame count M in the next byte's low 6 bits.
        if len(payload) < 2:
            raise ValueError("Opus code 3 packet without its frame count byte")
        frames = payload[1] & 0x3F
        if frames == 0:
            raise ValueError("Opus code 3 packet with zero frames")
    samples = _OPUS_FRAME_SAMPLES[toc >> 3] * frames
    if samples > _OPUS_MAX_PACKET_SAMPLES:
        raise ValueError(f"Opus packet of {samples / 48:g} ms is longer than 120 ms")
    return samples


def _opus_loss_packet(last_toc: int | None, ptime_ms: int) -> bytes:
    """A packet of zero-length frames lasting ``ptime_ms``: libopus conceals each.

    The frames keep the last good packet's mode and stereo flag; only their
    duration is chosen (10 ms, or 20 ms for longer packets), since libopus
    conceals at most one frame's duration per zero-length frame.
    """
    config = (last_toc if last_toc is not None else 0xF8) >> 3  # default: CELT fullband
    frame_ms = 10 if ptime_ms == 10 else 20
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        config = config - config % 4 + (0 if frame_ms == 10 else 1)
    elif config < 16:  # Hybrid: 10, 20 ms
        config = config - config % 2 + (0 if frame_ms == 10 else 1)
    else:  # CELT: 2.5, 5, 10, 20 ms
        config = config - config % 4 + (2 if frame_ms == 10 else 3)
    stereo = (last_toc or 0) & 0x04
    # RFC 6716 §3.2.5: code 3, CBR, no padding: the frames share the N - 2 = 0
    # bytes after the frame count, so each is empty.
    return bytes(((config << 3) | stereo | 0x03, ptime_ms // frame_ms))


def _open_context(codec: WidebandCodec, mode: Literal["r", "w"], rate_hz: int) -> AudioCodecContext:
    try:
        context = av.CodecContext.create(codec.av_codec, mode)
    except av.error.FFmpegError as exc:  # an FFmpeg build without the codec
        raise RuntimeError(f"PyAV has no {codec.av_codec!r} codec: {exc}") from exc
    assert isinstance(context, AudioCodecContext)
    context.sample_rate = rate_hz
    context.layout = "mono"
    return context


def _samples(frames: list[AudioFrame], expected: int, codec: WidebandCodec) -> NDArray[np.int16]:
    """The decoded samples as one mono int16 array, without a copy when possible."""
    got = sum(frame.samples for frame in frames)
    if got != expected:
        raise ValueError(
            f"{codec.encoding_name} payload decoded to {got} samples, expected {expected}"
        )
    for frame in frames:
        if frame.format.name != "s16":  # g722 and libopus decode to s16
            raise RuntimeError(f"{codec.av_codec} decoded to {frame.format.name}, not s16")
    # Views on FFmpeg's buffers: the resampler copies them straight away.
    views = [
        np.frombuffer(memoryview(f.planes[0]), dtype=np.int16, count=f.samples) for f in frames
    ]
    return views[0] if len(views) == 1 else np.concatenate(views)


class AvDecoder:
    """Decodes one received stream's payloads to frames of tick PCM.

    Attributes:
        codec: what the stream carries.
        pcm_rate_hz: the rate of the frames returned.
        ptime_ms: the duration of every payload and of every frame returned.
        frame_samples: samples per returned frame (160 for 20 ms at 8 kHz).
    """

    __slots__ = (
        "_check_payload",
        "_concealer",
        "_context",
        "_last_toc",
        "_packet_samples",
        "_resampler",
        "codec",
        "frame_samples",
        "pcm_rate_hz",
        "ptime_ms",
    )

    def __init__(
        self, codec: WidebandCodec, *, pcm_rate_hz: int = 8000, ptime_ms: int = 20
    ) -> None:
        """Open the FFmpeg decoder and the resampler to ``pcm_rate_hz``.

        Raises:
            ValueError: an unsupported ``pcm_rate_hz`` or ``ptime_ms``.
            RuntimeError: this FFmpeg build lacks the codec.
        """
        _check_timing(codec, pcm_rate_hz, ptime_ms)
        self.codec = codec
        self.pcm_rate_hz = pcm_rate_hz
        self.ptime_ms = ptime_ms
        self.frame_samples = pcm_rate_hz * ptime_ms // 1000
        self._packet_samples = codec.samples_per_packet(ptime_ms)
        # libopus decodes any Opus stream, stereo included, straight to mono.
        self._context = _open_context(codec, "r", codec.sample_rate_hz)
        self._context.open()
        self._resampler = Resampler(codec.sample_rate_hz, pcm_rate_hz)
        self._last_toc: int | None = None
        is_opus = codec.av_codec == "libopus"
        self._check_payload: Callable[[Payload], None] = (
            self._check_opus if is_opus else self._check_g722
        )
        # Opus conceals in the decoder; G.722 on the decoded PCM.
        self._concealer = None if is_opus else G711Concealer(self.frame_samples, pcm_rate_hz)

    def decode(self, payload: Payload) -> NDArray[np.int16]:
        """Decode one RTP payload of ``ptime_ms`` into one frame of PCM.

        Args:
            payload: the RTP payload, exactly one packet time of audio.

        Returns:
            A new array of ``frame_samples`` int16 samples at ``pcm_rate_hz``.

        Raises:
            ValueError: the payload is empty, of the wrong duration, or FFmpeg
                rejects it. The decoder stays usable for the next payload.
        """
        self._check_payload(payload)
        pcm = self._resampler.process(self._decode_native(payload))
        if self._concealer is None:
            self._last_toc = payload[0]  # the mode to conceal in (Opus)
            return pcm
        # Feeds the concealer's history; after a loss, cross-fades into pcm.
        return self._concealer.good(pcm)

    def conceal(self) -> NDArray[np.int16]:
        """Make up the frame of a lost packet.

        Opus: libopus's own concealment (see the module notes), which also
        keeps its decoder in step for the next packet. G.722: the pitch-
        repeating concealer of ``plc``, fading to silence after 60 ms.

        Returns:
            A new array of ``frame_samples`` int16 samples at ``pcm_rate_hz``.
        """
        if self._concealer is not None:
            return self._concealer.conceal()
        loss = _opus_loss_packet(self._last_toc, self.ptime_ms)
        return self._resampler.process(self._decode_native(loss))

    def _decode_native(self, payload: Payload) -> NDArray[np.int16]:
        try:
            # PyAV copies any buffer; its stubs only admit bytes.
            frames = self._context.decode(av.Packet(cast(bytes, payload)))
        except av.error.FFmpegError as exc:
            raise ValueError(
                f"{self.codec.encoding_name} payload of {len(payload)} bytes is corrupt"
                f" (FFmpeg: {exc.strerror})"
            ) from exc
        return _samples(frames, self._packet_samples, self.codec)

    def _check_g722(self, payload: Payload) -> None:
        # Every octet string is valid G.722 at 64 kbit/s: only the length can be wrong.
        expected = self._packet_samples // 2  # one octet per two 16 kHz samples
        if len(payload) != expected:
            raise ValueError(
                f"G722 payload of {len(payload)} bytes, expected {expected} for {self.ptime_ms} ms"
            )

    def _check_opus(self, payload: Payload) -> None:
        # Checked before FFmpeg sees it: an empty packet would drain the decoder,
        # and a packet of another duration would not fit the frame.
        samples = opus_packet_samples(payload)
        if samples != self._packet_samples:
            raise ValueError(
                f"{self.codec.encoding_name} payload of {samples / 48:g} ms,"
                f" expected {self.ptime_ms} ms"
            )


class AvEncoder:
    """Encodes one sent stream's frames of tick PCM into RTP payloads.

    Attributes:
        codec: what the stream carries.
        pcm_rate_hz: the rate of the frames taken.
        ptime_ms: the duration of every frame and of every payload returned.
        frame_samples: samples per frame taken (160 for 20 ms at 8 kHz).
    """

    __slots__ = (
        "_context",
        "_frame",
        "_plane",
        "_pts",
        "_resampler",
        "codec",
        "frame_samples",
        "pcm_rate_hz",
        "ptime_ms",
    )

    def __init__(
        self, codec: WidebandCodec, *, pcm_rate_hz: int = 8000, ptime_ms: int = 20
    ) -> None:
        """Open the FFmpeg encoder (Opus: VoIP mode, 24 kbit/s) and the resampler.

        Raises:
            ValueError: an unsupported ``pcm_rate_hz`` or ``ptime_ms``.
            RuntimeError: this FFmpeg build lacks the codec, or its encoder
                would not take one packet time per frame.
        """
        _check_timing(codec, pcm_rate_hz, ptime_ms)
        self.codec = codec
        self.pcm_rate_hz = pcm_rate_hz
        self.ptime_ms = ptime_ms
        self.frame_samples = pcm_rate_hz * ptime_ms // 1000
        # Resampling to a rate the encoder could take itself would only add
        # delay and work: libopus is given the tick's PCM as it is.
        coded_hz = pcm_rate_hz if pcm_rate_hz in codec.encoder_rates_hz else codec.sample_rate_hz
        samples = coded_hz * ptime_ms // 1000
        context = _open_context(codec, "w", coded_hz)
        context.format = "s16"
        if codec.av_codec == "libopus":
            context.bit_rate = _OPUS_BITRATE_BPS
            context.options = {"application": "voip", "frame_duration": str(ptime_ms)}
        else:
            # G.722's encoder takes frames of any even length (320 unless told):
            # one frame must be one packet, or PyAV would hold samples back.
            context.options = {"frame_size": str(samples)}
        context.open()
        if context.frame_size not in (0, samples):
            raise RuntimeError(
                f"{codec.av_codec} encodes {context.frame_size}-sample frames, not {samples}"
            )
        self._context = context
        self._resampler = Resampler(pcm_rate_hz, coded_hz) if coded_hz != pcm_rate_hz else None
        # One frame, refilled every call: FFmpeg has consumed it when encode returns.
        self._frame = AudioFrame(format="s16", layout="mono", samples=samples)
        self._frame.sample_rate = coded_hz
        self._plane = np.frombuffer(
            memoryview(self._frame.planes[0]), dtype=np.int16, count=samples
        )
        self._pts = 0

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """Encode one frame of PCM into one RTP payload.

        Args:
            pcm: 1-D int16, ``frame_samples`` long, at ``pcm_rate_hz``.

        Returns:
            The payload of one packet of ``ptime_ms`` (G.722: 8 octets per ms).

        Raises:
            ValueError: ``pcm`` is not a 1-D int16 array of ``frame_samples``.
            RuntimeError: the encoder did not yield exactly one packet.
        """
        if (
            not isinstance(pcm, np.ndarray)
            or pcm.dtype != np.int16
            or pcm.shape != (self.frame_samples,)
        ):
            shape = (
                f"{pcm.dtype} {pcm.shape}" if isinstance(pcm, np.ndarray) else type(pcm).__name__
            )
            raise ValueError(f"expected 1-D int16 of {self.frame_samples} samples, not {shape}")
        self._plane[:] = pcm if self._resampler is None else self._resampler.process(pcm)
        frame = self._frame
        frame.pts = self._pts
        self._pts += len(self._plane)
        packets = self._context.encode(frame)
        if len(packets) != 1:
            # Neither g722 nor libopus delays or splits packets; this would be a
            # new FFmpeg behaviour, and a wrong RTP stream if let through.
            raise RuntimeError(
                f"{self.codec.av_codec} returned {len(packets)} packets for one frame"
            )
        return bytes(packets[0])


def decoder_for(codec: str, *, pcm_rate_hz: int = 8000, ptime_ms: int = 20) -> AvDecoder:
    """A decoder for the SDP encoding name ``codec`` (case-insensitive: ``G722``, ``opus``).

    Raises:
        ValueError: not a wideband codec, or an unsupported rate or packet time.
    """
    return AvDecoder(_codec(codec), pcm_rate_hz=pcm_rate_hz, ptime_ms=ptime_ms)


def encoder_for(codec: str, *, pcm_rate_hz: int = 8000, ptime_ms: int = 20) -> AvEncoder:
    """An encoder for the SDP encoding name ``codec`` (case-insensitive: ``G722``, ``opus``).

    Raises:
        ValueError: not a wideband codec, or an unsupported rate or packet time.
    """
    return AvEncoder(_codec(codec), pcm_rate_hz=pcm_rate_hz, ptime_ms=ptime_ms)
