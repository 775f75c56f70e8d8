"""The media side of a browser call: ICE host restriction, the tick's track, the receive pump.

aiortc terminates WebRTC; the media tick stays the only clock. Audio to the
browser is ``TickTrack``: the PCM leg's frames, handed out once per tick, wait
in a short queue and ``recv()`` returns the next one, so aiortc sends at the
tick's pace (its encoders resample the tick's rate to Opus's 48 kHz or keep
8 kHz for PCMU). Audio from the browser is ``pump_received``: each decoded
frame (48 kHz stereo for Opus) is resampled to the tick's rate, mono, and
pushed into the PCM leg, whose playout buffer absorbs the arrival jitter.

ICE: aioice gathers host candidates on every interface it finds (never on
loopback), and aiortc has no setting to choose them. ``restrict_ice_hosts``
gathers on exactly the configured addresses instead, for the peer
connections whose candidates are gathered within it (a context variable read
by aioice's one host address lookup, so other code is unaffected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from fractions import Fraction

import aioice.ice
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from numpy.typing import NDArray

__all__ = ["TickTrack", "pump_received", "restrict_ice_hosts"]

log = logging.getLogger("hotline.webrtc")

# Frames waiting for aiortc's sender: enough for a late recv(), little delay.
_QUEUED_FRAMES = 3

_ICE_HOSTS: ContextVar[tuple[str, ...] | None] = ContextVar("hotline_ice_hosts", default=None)
_DISCOVER_HOSTS = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    hosts = _ICE_HOSTS.get()
    if hosts is None:
        return _DISCOVER_HOSTS(use_ipv4, use_ipv6)
    return [host for host in hosts if (use_ipv6 if ":" in host else use_ipv4)]


@contextlib.contextmanager
def restrict_ice_hosts(hosts: tuple[str, ...]) -> Iterator[None]:
    """Gather ICE host candidates only on ``hosts`` within this block (and its tasks).

    aiortc gathers in ``setLocalDescription``; await it inside the block.

    Raises:
        ValueError: no host given.
    """
    if not hosts:
        raise ValueError("ICE needs at least one host address")
    aioice.ice.get_host_addresses = _host_addresses  # once is enough; idempotent
    token = _ICE_HOSTS.set(tuple(hosts))
    try:
        yield
    finally:
        _ICE_HOSTS.reset(token)


class TickTrack(MediaStreamTrack):
    """Audio to the browser: the PCM leg's frames, one per media tick."""

    kind = "audio"

    def __init__(self, rate_hz: int) -> None:
        """A track of mono int16 frames at ``rate_hz`` (the tick's rate)."""
        super().__init__()
        self.rate_hz = rate_hz
        self._time_base = Fraction(1, rate_hz)
        self._frames: deque[NDArray[np.int16]] = deque(maxlen=_QUEUED_FRAMES)
        self._ready = asyncio.Event()
        self._pts = 0
        #: Frames dropped because aiortc's sender had not taken them in time.
        self.frames_dropped = 0

    def feed(self, pcm: NDArray[np.int16]) -> None:
        """Queue one tick's frame (called by the media tick: returns at once)."""
        if len(self._frames) == self._frames.maxlen:
            self.frames_dropped += 1  # the oldest goes: the delay stays bounded
        self._frames.append(pcm)
        self._ready.set()

    async def recv(self) -> av.AudioFrame:
        """The next frame, when the tick has produced it.

        Raises:
            MediaStreamError: the track was stopped.
        """
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        pcm = self._frames.popleft()
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate_hz
        frame.time_base = self._time_base
        frame.pts = self._pts
        self._pts += len(pcm)
        return frame

    def stop(self) -> None:
        """End the track; a pending ``recv()`` raises ``MediaStreamError``."""
        super().stop()
        self._ready.set()


async def pump_received(
    track: MediaStreamTrack, rate_hz: int, push: Callable[[NDArray[np.int16]], None]
) -> None:
    """Resample the browser's audio to ``rate_hz`` mono and ``push`` it, until the track ends."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_hz)
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if not isinstance(frame, av.AudioFrame):
            continue  # an audio track yields audio frames; anything else is not ours to play
        for out in resampler.resample(frame):
            push(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
