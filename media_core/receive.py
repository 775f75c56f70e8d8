"""One stream's receive path: statistics, jitter buffer, PLC and RFC 4733 DTMF.

Packets go in as they arrive (``on_packet``); the tick takes one frame per
packet time (``next_frame``). Audio payloads stay encoded here: the tick
decodes every stream's payload of one codec in one kernel call, then hands each
decoded frame back through ``played`` so the concealer keeps its history.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from media_core.dtmf import DtmfDigit, DtmfReceiver
from media_core.jitter_buffer import QUIET_DETECTORS, AdaptiveJitterBuffer, Frame, FrameKind
from media_core.plc import G711Concealer
from media_core.rtp_stats import ReceiverStats, SeqVerdict

__all__ = ["FrameKind", "ReceivePath"]


class ReceivePath:
    """What one stream does with the RTP it receives."""

    __slots__ = (
        "concealer",
        "dtmf",
        "jitter",
        "packets_other_payload",
        "payload_type",
        "stats",
        "telephone_event_pt",
    )

    def __init__(
        self,
        codec: str,
        payload_type: int,
        telephone_event_pt: int | None = None,
        *,
        clock_rate_hz: int = 8000,
        ptime_ms: int = 20,
        pcm_rate_hz: int = 8000,
    ) -> None:
        """Set up for one negotiated codec and, optionally, telephone-event.

        ``clock_rate_hz`` is the codec's RTP clock (timestamps, jitter, DTMF
        durations); ``pcm_rate_hz`` the rate of the decoded frames the
        concealer sees (the tick's).
        """
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.stats = ReceiverStats(clock_rate_hz)
        self.jitter = AdaptiveJitterBuffer(
            clock_rate_hz, ptime_ms, quiet_frame=QUIET_DETECTORS.get(codec)
        )
        self.concealer = G711Concealer(pcm_rate_hz * ptime_ms // 1000, pcm_rate_hz)
        self.dtmf = DtmfReceiver(clock_rate_hz) if telephone_event_pt is not None else None
        self.packets_other_payload = 0

    def on_packet(
        self,
        sequence: int,
        timestamp: int,
        ssrc: int,
        payload_type: int,
        marker: bool,
        payload: bytes,
        arrival_s: float,
    ) -> list[DtmfDigit]:
        """Take one packet's fields; return the key presses it completed."""
        verdict = self.stats.on_packet(sequence, timestamp, arrival_s, len(payload), ssrc=ssrc)
        if verdict is SeqVerdict.NEW_SOURCE:
            # RFC 3550 §8.2: a new SSRC is a new source; start its audio afresh.
            self.jitter.reset()
            self.concealer.reset()
            if self.dtmf is not None:
                self.dtmf.flush()
        if payload_type == self.telephone_event_pt and self.dtmf is not None:
            return self.dtmf.feed(timestamp, marker, payload, arrival_s)
        if payload_type != self.payload_type:
            # Comfort noise or a codec we did not negotiate: not audio we can play.
            self.packets_other_payload += 1
            return []
        self.jitter.put(sequence, timestamp, payload, marker, arrival_s)
        return []

    def next_frame(self, now_s: float) -> Frame:
        """The frame for this packet time (audio still encoded)."""
        return self.jitter.get(now_s)

    def played(self, pcm: NDArray[np.int16]) -> NDArray[np.int16]:
        """A decoded audio frame goes out: keep concealment history, smooth after loss."""
        return self.concealer.good(pcm)

    def conceal(self) -> NDArray[np.int16]:
        """A frame for a lost packet (G.711 PLC)."""
        return self.concealer.conceal()

    def dtmf_timeouts(self, now_s: float) -> list[DtmfDigit]:
        """Key presses whose end packets never came (§2.5.1.4 redundancy all lost)."""
        return self.dtmf.on_tick(now_s) if self.dtmf is not None else []
