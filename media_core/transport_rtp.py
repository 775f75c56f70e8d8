"""RTP over UDP: the shell around the media tick (works on uvloop too).

One socket per stream, bound to an even port from the configured range, with
its RTCP socket on the odd port above it (RFC 3550 §11), and ONE task for the
whole process that runs the tick every ``ptime_ms`` on the loop's monotonic
clock. RTCP is a few datagrams per leg per five seconds, so its sockets are
plain asyncio endpoints; the tick decides when reports are due.
IPv4 sockets are not watched by the loop at all: each tick drains them in one
sweep and sends its packets in another (``transport_batch``); IPv6 sockets use
ordinary asyncio datagram endpoints. Tick k is due at ``start + k * ptime``,
never "last tick + ptime", so timer jitter does not accumulate; a tick that runs
late is followed at once by the ones it delayed, and a stall of more than
``max_late_ticks`` is counted as an overrun and skipped instead of bursting
seconds of audio at the peer. Recordings are written by one worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from media_core.media_events import MediaEvent
from media_core.recording_tap import LazyRecorder, RecordingChunk, write_chunks
from media_core.tick import Address, MediaTick, StreamStats
from media_core.transport_batch import BatchSockets

__all__ = ["MediaEngine", "NoFreePortError", "RtpPortAllocator"]

log = logging.getLogger("hotline.media.rtp")

# Binding a port another process holds: try this many others before giving up.
_BIND_ATTEMPTS = 16


class NoFreePortError(RuntimeError):
    """Every RTP port of the range is in use."""


class RtpPortAllocator:
    """Hands out even RTP ports of ``[low, high]``, each with its RTCP port (+1) reserved.

    Released ports go to the back of the queue: a port is reused as late as
    possible, so stray packets of an ended call do not reach a new one.
    """

    __slots__ = ("_free", "_in_use", "high", "low")

    def __init__(self, low: int, high: int) -> None:
        """Cover ``[low, high]``.

        Raises:
            ValueError: the range is outside 1..65535 or holds no even port with its +1.
        """
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"RTP port range {low}-{high} is not within 1-65535")
        first = low + (low % 2)
        if first + 1 > high:
            raise ValueError(f"RTP port range {low}-{high} holds no even port with its RTCP port")
        self.low = low
        self.high = high
        # RFC 3550 §11: RTP on an even port, RTCP on the next (odd) one.
        self._free: deque[int] = deque(range(first, high, 2))
        self._in_use: set[int] = set()

    @property
    def available(self) -> int:
        """How many ports can still be allocated."""
        return len(self._free)

    @property
    def in_use(self) -> int:
        """How many ports are allocated."""
        return len(self._in_use)

    def is_allocated(self, port: int) -> bool:
        """Whether ``port`` is currently handed out."""
        return port in self._in_use

    def allocate(self) -> int:
        """The next free even port.

        Raises:
            NoFreePortError: all are in use.
        """
        if not self._free:
            raise NoFreePortError(
                f"all {len(self._in_use)} RTP ports of {self.low}-{self.high} are in use"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give ``port`` back.

        Raises:
            ValueError: it is not allocated (a double release is a bug).
        """
        if port not in self._in_use:
            raise ValueError(f"RTP port {port} is not allocated")
        self._in_use.remove(port)
        self._free.append(port)


class _StreamProtocol(asyncio.DatagramProtocol):
    """Feeds one stream's datagrams to the engine."""

    def __init__(self, engine: MediaEngine, stream_id: int) -> None:
        self._engine = engine
        self._stream_id = stream_id

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:  # noqa: D102
        self._engine._received(self._stream_id, data, addr)

    def error_received(self, exc: Exception) -> None:  # noqa: D102
        # ICMP port unreachable after a send, and the like: the peer is not there yet.
        self._engine.media_tick.record_send_error(self._stream_id)
        log.debug("RTP stream %d: %s", self._stream_id, exc)


class _RtcpProtocol(asyncio.DatagramProtocol):
    """Feeds one stream's RTCP datagrams to the tick."""

    def __init__(self, engine: MediaEngine, stream_id: int) -> None:
        self._engine = engine
        self._stream_id = stream_id

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:  # noqa: D102
        now = asyncio.get_running_loop().time()
        self._engine.media_tick.on_rtcp_received(
            self._stream_id, data, (str(addr[0]), int(addr[1])), now
        )

    def error_received(self, exc: Exception) -> None:  # noqa: D102
        log.debug("RTCP of stream %d: %s", self._stream_id, exc)


class MediaEngine:
    """The process's RTP streams: sockets, ports and the one media clock task."""

    def __init__(
        self,
        rtp_port_low: int = 20000,
        rtp_port_high: int = 29999,
        *,
        ptime_ms: int = 20,
        rate_hz: int = 8000,
        max_late_ticks: int = 5,
        media_tick: MediaTick | None = None,
        on_event: Callable[[MediaEvent], None] | None = None,
        on_audio: Callable[[list[int], NDArray[np.int16]], None] | None = None,
    ) -> None:
        """Prepare; nothing is bound or scheduled until ``start``/``open_stream``.

        Args:
            rtp_port_low: first port of the RTP range.
            rtp_port_high: last port of the RTP range.
            ptime_ms: packet time of the tick (when ``media_tick`` is not given).
            rate_hz: sampling rate of the tick (when ``media_tick`` is not given).
            max_late_ticks: how many overdue ticks are caught up; beyond, skip.
            media_tick: a ready ``MediaTick`` (tests inject one).
            on_event: receives the tick's DTMF, speech and prompt events.
            on_audio: receives, once per tick, the received frames of the legs
                marked with ``media_tick.stream_audio`` (stream ids, one row each).
        """
        self.ports = RtpPortAllocator(rtp_port_low, rtp_port_high)
        self.media_tick = media_tick if media_tick is not None else MediaTick(ptime_ms, rate_hz)
        self.max_late_ticks = max_late_ticks
        #: Stalls longer than ``max_late_ticks`` periods, and the ticks they skipped.
        self.overruns = 0
        #: Ticks run, and those that started a whole period or more after they were due.
        self.ticks_run = 0
        self.late_ticks = 0
        self.ticks_skipped = 0
        self.tick_errors = 0
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._rtcp_transports: dict[int, asyncio.DatagramTransport] = {}
        self._local_ports: dict[int, int] = {}
        self._owned_ports: dict[int, int] = {}
        # PCM legs (no socket): where each tick's frame of each goes.
        self._pcm_sinks: dict[int, Callable[[NDArray[np.int16]], None] | None] = {}
        self._task: asyncio.Task[None] | None = None
        self.on_event = on_event
        self.on_audio = on_audio
        self._batch = BatchSockets()
        # One thread writes every recording, in order: disk I/O stays off the tick.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording-writer")
        self.write_errors = 0

    # --------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the media clock task (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="media-tick")

    async def stop(self) -> None:
        """Stop the clock and close every stream."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for stream_id in [*self._local_ports, *self._pcm_sinks]:
            self.close_stream(stream_id)
        self._flush_recordings()
        # The last chunks (and the recorders' closing) must reach the disk.
        await asyncio.get_running_loop().run_in_executor(None, self._writer.shutdown, True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording-writer")

    # ------------------------------------------------------------- ports

    def allocate_port(self) -> int:
        """Reserve an RTP port, e.g. to put in an SDP answer before ``open_stream``.

        Raises:
            NoFreePortError: (a ``RuntimeError``) the range is exhausted.
        """
        return self.ports.allocate()

    def release_port(self, port: int) -> None:
        """Return a port from ``allocate_port`` that no stream was opened on."""
        self.ports.release(port)

    # ----------------------------------------------------------- streams

    async def open_stream(
        self,
        local_ip: str,
        local_port: int | None,
        remote_addr: Address | None,
        codec: str,
        payload_type: int,
        source_pcm: NDArray[np.int16] | None,
        *,
        latch_hosts: frozenset[str] = frozenset(),
        telephone_event_pt: int | None = None,
        vad: bool = False,
        inband_dtmf: bool = False,
        rtcp_addr: Address | None = None,
    ) -> int:
        """Bind a socket and start sending ``source_pcm`` in a loop.

        Args:
            local_ip: address to bind.
            local_port: a port from ``allocate_port`` (the stream then owns it
                and ``close_stream`` releases it); None to allocate one here;
                0 to let the kernel pick one outside the range.
            remote_addr: where the SDP says to send, or None to wait for the
                peer's first packet.
            codec: ``PCMU`` or ``PCMA``.
            payload_type: the negotiated payload type.
            source_pcm: int16 samples at the tick's rate, looped.
            latch_hosts: source IPs allowed to latch the stream (symmetric RTP).
            telephone_event_pt: the negotiated RFC 4733 payload type, if any.
            vad: report speech starts and ends on this leg.
            inband_dtmf: detect key tones in this leg's audio.
            rtcp_addr: the SDP's ``a=rtcp`` address; by default the RTP port + 1.

        Returns:
            The stream id (``local_port(stream_id)`` tells the bound port).

        Raises:
            NoFreePortError: ``local_port`` is None and the range is exhausted.
            OSError: binding failed.
            ValueError: unknown codec or bad parameters.
        """
        loop = asyncio.get_running_loop()
        # SR timestamps: wallclock is the loop's monotonic clock plus this offset.
        self.media_tick.unix_offset_s = time.time() - loop.time()
        sock, port = self._bind(local_ip, local_port)
        try:
            stream_id = self.media_tick.add_stream(
                codec, payload_type, source_pcm, remote_addr, latch_hosts=latch_hosts,
                telephone_event_pt=telephone_event_pt, vad=vad, inband_dtmf=inband_dtmf,
                rtcp_addr=rtcp_addr,
            )
        except Exception:
            sock.close()
            if local_port is None:
                self.ports.release(port)
            raise
        if sock.family == socket.AF_INET:
            # IPv4 sockets are read and written by the tick itself, in sweeps.
            self._batch.add(stream_id, sock)
        else:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _StreamProtocol(self, stream_id), sock=sock
                )
            except BaseException:
                self.media_tick.remove_stream(stream_id)
                sock.close()
                if local_port is None:
                    self.ports.release(port)
                raise
            self._transports[stream_id] = transport
        self._local_ports[stream_id] = port
        if local_port != 0 and port % 2 == 0:  # a kernel-picked port has no RTCP pair
            await self._open_rtcp(stream_id, sock.family, local_ip, port + 1)
        # A kernel-picked port (0) may fall in the range by chance; it is not ours to release.
        if local_port is None or (local_port != 0 and self.ports.is_allocated(port)):
            self._owned_ports[stream_id] = port
        return stream_id

    def open_pcm_stream(
        self,
        on_pcm: Callable[[NDArray[np.int16]], None] | None,
        source_pcm: NDArray[np.int16] | None = None,
        *,
        vad: bool = False,
        inband_dtmf: bool = False,
    ) -> int:
        """Open a leg without a socket (a browser's over WebRTC): ``MediaTick.add_pcm_stream``.

        Args:
            on_pcm: called on the loop, once per tick, with the frame the leg
                hears (int16 at the tick's rate; the caller may keep it). It
                must return at once: it runs inside the media tick.
            source_pcm: looped while the leg is in no room and no prompt plays.
            vad: report speech starts and ends on this leg.
            inband_dtmf: detect key tones in this leg's audio.

        Returns:
            The stream id; ``push_pcm`` feeds it, ``close_stream`` ends it.
        """
        stream_id = self.media_tick.add_pcm_stream(source_pcm, vad=vad, inband_dtmf=inband_dtmf)
        self._pcm_sinks[stream_id] = on_pcm
        return stream_id

    def push_pcm(self, stream_id: int, pcm: NDArray[np.int16]) -> None:
        """Audio a PCM leg received (int16 at the tick's rate, any length).

        Raises:
            KeyError: no such PCM leg.
        """
        self.media_tick.push_pcm(stream_id, pcm)

    def local_port(self, stream_id: int) -> int:
        """The UDP port a stream is bound to.

        Raises:
            KeyError: no such stream.
        """
        try:
            return self._local_ports[stream_id]
        except KeyError:
            raise KeyError(f"no RTP stream {stream_id}") from None

    def close_stream(self, stream_id: int) -> None:
        """Stop sending, say RTCP BYE, close the sockets and release the port.

        Unknown ids are ignored. A PCM leg is simply removed from the tick.
        """
        if stream_id in self._pcm_sinks:
            del self._pcm_sinks[stream_id]
            if stream_id in self.media_tick:
                self.media_tick.remove_stream(stream_id)
            return
        if self._local_ports.pop(stream_id, None) is None:
            return
        transport = self._transports.pop(stream_id, None)
        if transport is not None:
            transport.close()
        self._batch.remove(stream_id)
        if stream_id in self.media_tick:
            # Its last recording chunk goes to the writer with the next tick's batch.
            self.media_tick.remove_stream(stream_id)
            self._send_rtcp()  # the leg's BYE, before its RTCP socket closes
        rtcp = self._rtcp_transports.pop(stream_id, None)
        if rtcp is not None:
            rtcp.close()
        port = self._owned_ports.pop(stream_id, None)
        if port is not None:
            self.ports.release(port)

    def record(self, stream_id: int, path: str | os.PathLike[str], started_at: float) -> None:
        """Record a stream (WAV or Ogg/Opus by the file's suffix) as the call goes.

        The file is created by the writer thread with the first chunk; a file that
        cannot be written is counted in ``write_errors`` and logged.

        Raises:
            KeyError: no such stream.
        """
        recorder = LazyRecorder(path, self.media_tick.rate_hz, started_at)
        self.media_tick.record(stream_id, recorder)

    async def recordings_written(self) -> None:
        """Wait until every recording chunk handed out so far is on disk.

        A stream removed by ``close_stream`` has queued its last chunk, which also
        closes its file; after this returns, that file is complete (the writer
        thread writes chunks in order, so a no-op behind them marks the point).
        """
        self._flush_recordings()
        await asyncio.get_running_loop().run_in_executor(self._writer, _nothing)

    def stats(self, stream_id: int) -> StreamStats:
        """A snapshot of a stream's counters.

        Raises:
            KeyError: no such stream.
        """
        return self.media_tick.stats(stream_id)

    # ---------------------------------------------------------- internals

    def _bind(self, local_ip: str, local_port: int | None) -> tuple[socket.socket, int]:
        family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
        if local_port is not None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((local_ip, local_port))
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            return sock, int(sock.getsockname()[1])
        for _ in range(_BIND_ATTEMPTS):
            port = self.ports.allocate()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((local_ip, port))
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                # Released to the back of the queue: tried again only much later.
                self.ports.release(port)
                if exc.errno != errno.EADDRINUSE:
                    raise
                log.info("RTP port %d is taken by another process; trying the next", port)
                continue
            return sock, port
        raise OSError(errno.EADDRINUSE, f"{_BIND_ATTEMPTS} RTP ports in a row are taken")

    async def _open_rtcp(self, stream_id: int, family: int, local_ip: str, port: int) -> None:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((local_ip, port))
            sock.setblocking(False)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _RtcpProtocol(self, stream_id), sock=sock
            )
        except OSError as exc:
            # The call still has audio; only its reports are lost. The range's odd
            # ports are ours, so this means another process squats on one.
            sock.close()
            log.warning("RTCP port %d for stream %d: %s; no RTCP", port, stream_id, exc)
            return
        self._rtcp_transports[stream_id] = transport

    def _send_rtcp(self) -> None:
        for stream_id, datagram, destination in self.media_tick.take_rtcp():
            transport = self._rtcp_transports.get(stream_id)
            if transport is not None:
                transport.sendto(datagram, destination)

    def _received(self, stream_id: int, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = asyncio.get_running_loop().time()
        self.media_tick.on_rtp_received(stream_id, data, (str(addr[0]), int(addr[1])), now)

    def _send_tick(self, now: float) -> None:
        tick = self.media_tick
        self._batch.receive(tick.on_rtp_received, now)
        for stream_id, datagram, destination in self._batch.send(
            tick.tick(now), tick.record_send_error
        ):
            transport = self._transports.get(stream_id)
            if transport is not None:
                transport.sendto(datagram, destination)
        self._send_rtcp()
        self._hand_out_pcm()
        if self.on_event is not None:
            for event in self.media_tick.take_events():
                self.on_event(event)
        audio = self.media_tick.take_audio()
        if self.on_audio is not None:
            for stream_ids, frames in audio:
                self.on_audio(stream_ids, frames)
        self._flush_recordings()

    def _hand_out_pcm(self) -> None:
        for stream_ids, frames in self.media_tick.take_pcm():
            for row, stream_id in enumerate(stream_ids):
                sink = self._pcm_sinks.get(stream_id)
                if sink is None:
                    continue
                try:
                    sink(frames[row])
                except Exception:
                    # One leg's consumer failing must not cost the other calls their tick.
                    log.exception("PCM leg %d: its consumer failed", stream_id)

    def _flush_recordings(self) -> None:
        chunks = self.media_tick.take_recording_chunks()
        if chunks:
            self._writer.submit(self._write, chunks)

    def _write(self, chunks: list[RecordingChunk]) -> None:
        for chunk in chunks:
            try:
                write_chunks([chunk])
            except (OSError, ValueError):
                # A full disk or a bad path costs that recording, never the calls.
                self.write_errors += 1
                log.exception("recording write to %s failed", getattr(chunk.recorder, "path", "?"))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period_s = self.media_tick.ptime_ms / 1000
        start = loop.time()
        index = 0
        while True:
            index += 1
            due = start + index * period_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            behind = int((now - due) / period_s)  # whole periods overdue
            self.ticks_run += 1
            if behind:
                self.late_ticks += 1
            if behind > self.max_late_ticks:
                self.overruns += 1
                self.ticks_skipped += behind
                index += behind
                log.warning("media tick %.0f ms late: skipped %d ticks", (now - due) * 1000, behind)
            try:
                self._send_tick(now)
            except Exception:
                # A bug here must not silence every call: log (sparingly) and keep time.
                self.tick_errors += 1
                if self.tick_errors == 1 or self.tick_errors % 1000 == 0:
                    log.exception("media tick failed (%d failures so far)", self.tick_errors)


def _nothing() -> None:
    """A no-op for the recording writer: when it runs, everything before it is written."""
