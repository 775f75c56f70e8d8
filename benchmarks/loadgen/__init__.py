"""Run the C load generator: full-duplex G.711 RTP streams on loopback, measured.

``loadgen.c`` beside this file is compiled with the system ``cc -O2`` on first
use into a cache directory (``$HOTLINE_CACHE_DIR`` or ``~/.cache/hotline``),
under a name that carries a hash of the source and flags: an edited source
gets a fresh binary, an unchanged one is never rebuilt.

The caller creates and binds the UDP sockets (so it knows their ports before
it offers them in SDP), describes each stream as a ``Stream`` and calls
``run``: the sockets are inherited by the C process as file descriptors, and
``run`` returns its JSON summary as a dict. Only loopback targets are accepted
(the C program refuses any other). Example, two legs talking to each other
directly, no relay in between::

    a, b = bind_udp(), bind_udp()
    summary = run(
        [Stream(a, "a", b.getsockname(), peer=1), Stream(b, "b", a.getsockname(), peer=0)],
        duration_s=2,
    )
    summary["received"], summary["loss_percent"]

See ``SUMMARY_KEYS`` for what the summary holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SOURCE = Path(__file__).with_name("loadgen.c")
CFLAGS = ("-O2", "-Wall", "-Wextra")
LIBS = ("-lm",)
#: The C program's own caps, repeated here to fail early with a clear message.
MAX_STREAMS = 10000
MAX_DURATION_S = 120.0
MAX_DRAIN_MS = 5000.0
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux

#: Top-level keys of the summary (``directions`` holds ``a_to_b`` and ``b_to_a``,
#: each with sent/received/expected/lost/loss_percent/loss_percent_vs_sent/
#: reordered/jitter_ms_mean/jitter_ms_max/silent_streams/misrouted/...).
SUMMARY_KEYS = (
    "streams",
    "duration_s",
    "send_window_s",
    "wall_s",
    "pps_per_stream",
    "payload_bytes",
    "sent",
    "received",
    "sent_pps",
    "received_pps",
    "loss_percent",
    "loss_percent_vs_sent",
    "unmatched",
    "directions",
    "latency_us",
    "send_late_us",
    "timeline",
    "wakeups",
    "send_syscalls",
    "recv_syscalls",
    "cpu_user_s",
    "cpu_system_s",
    "cpu_s",
    "cpu_percent",
)

Side = Literal["a", "b"]


class LoadgenError(RuntimeError):
    """The load generator could not be built or did not finish cleanly."""


@dataclass(frozen=True, slots=True)
class Stream:
    """One leg: what it sends from which socket to where, and who should receive it.

    Attributes:
        sock: a bound UDP socket; the stream sends from it and counts what arrives on it.
        side: ``"a"`` if it sends in the a_to_b direction, ``"b"`` for b_to_a.
        target: ``(host, port)`` on loopback it sends to (the relay's port for this leg).
        peer: index (in the list given to ``run``) of the stream that should receive
            what this one sends, or -1 when unknown; used to detect misrouting.
    """

    sock: socket.socket
    side: Side
    target: tuple[str, int]
    peer: int = -1


def cache_dir() -> Path:
    """Where compiled binaries are kept."""
    configured = os.environ.get("HOTLINE_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hotline"


def binary() -> Path:
    """The compiled load generator, built now if it is missing or its source changed.

    Raises:
        LoadgenError: there is no C compiler, or the source does not compile.
    """
    compiler = os.environ.get("CC", "cc")
    digest = hashlib.sha256(SOURCE.read_bytes() + repr((compiler, CFLAGS, LIBS)).encode())
    target = cache_dir() / f"loadgen-{digest.hexdigest()[:16]}"
    if target.exists():
        return target
    if shutil.which(compiler) is None:
        raise LoadgenError(f"no C compiler ({compiler!r}) to build {SOURCE.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / "loadgen"
        result = subprocess.run(
            [compiler, *CFLAGS, "-o", str(built), str(SOURCE), *LIBS],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise LoadgenError(f"compiling {SOURCE} failed:\n{result.stderr}")
        os.replace(built, target)  # atomic: a concurrent run sees all of it or nothing
    return target


def bind_udp(
    host: str = "127.0.0.1", port: int = 0, rcvbuf_bytes: int | None = None
) -> socket.socket:
    """A non-blocking UDP socket bound on loopback, for a ``Stream``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if rcvbuf_bytes is not None:
            try:  # root may exceed net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf_bytes)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _streams_file(streams: Sequence[Stream], directory: Path) -> Path:
    lines = ["# fd side host port peer"]
    for index, stream in enumerate(streams):
        host, port = stream.target[0], int(stream.target[1])
        if stream.side not in ("a", "b"):
            raise ValueError(f"stream {index}: side must be 'a' or 'b', not {stream.side!r}")
        if not -1 <= stream.peer < len(streams):
            raise ValueError(f"stream {index}: peer {stream.peer} is not a stream index")
        lines.append(f"{stream.sock.fileno()} {stream.side} {host} {port} {stream.peer}")
    path = directory / "streams.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(
    streams: Sequence[Stream],
    duration_s: float,
    *,
    pps: float = 50.0,
    payload_bytes: int = 160,
    jitter_sd_ms: float = 5.0,
    spike_prob: float = 0.002,
    spike_ms: float = 40.0,
    drain_ms: float = 500.0,
    seed: int = 1,
    tick_us: float = 1000.0,
    cpu: int | None = None,
) -> dict[str, Any]:
    """Run the streams for ``duration_s`` seconds (then ``drain_ms`` of listening) and summarise.

    Args:
        streams: the legs; at most ``MAX_STREAMS``.
        duration_s: how long to send, at most ``MAX_DURATION_S``.
        pps: packets per second per stream (50: 20 ms G.711 frames).
        payload_bytes: RTP payload size (160: 20 ms of PCMU). Payloads of 16 bytes
            or more start with a send stamp, so latency is measured when the relay
            passes payloads through unchanged.
        jitter_sd_ms: standard deviation of each packet's send-time offset.
        spike_prob: probability that a packet is held back a further ``spike_ms``.
        spike_ms: size of those spikes (packets behind a spike leave in a burst).
        drain_ms: how long to keep receiving after the last send, at most ``MAX_DRAIN_MS``.
        seed: for the jitter and the SSRC/sequence/timestamp starting values.
        tick_us: the sender wakes on this grid and sends everything due by then
            (batching); a packet leaves up to one tick after its jittered time.
        cpu: pin the load generator to this CPU, if given.

    Returns:
        The load generator's JSON summary (see ``SUMMARY_KEYS``).

    Raises:
        ValueError: an argument is out of range.
        LoadgenError: the build failed or the process did not exit cleanly.
    """
    if not 0 < len(streams) <= MAX_STREAMS:
        raise ValueError(f"need 1..{MAX_STREAMS} streams, not {len(streams)}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S}], not {duration_s}")
    if not 0 <= drain_ms <= MAX_DRAIN_MS:
        raise ValueError(f"drain_ms must be in [0, {MAX_DRAIN_MS}], not {drain_ms}")
    program = binary()
    with tempfile.TemporaryDirectory(prefix="hotline-loadgen-") as tmp:
        path = _streams_file(streams, Path(tmp))
        argv = [
            str(program),
            "--streams", str(path),
            "--duration-s", repr(float(duration_s)),
            "--pps", repr(float(pps)),
            "--payload-bytes", str(int(payload_bytes)),
            "--jitter-sd-ms", repr(float(jitter_sd_ms)),
            "--spike-prob", repr(float(spike_prob)),
            "--spike-ms", repr(float(spike_ms)),
            "--drain-ms", repr(float(drain_ms)),
            "--seed", str(int(seed)),
            "--tick-us", repr(float(tick_us)),
        ]  # fmt: skip
        fds = sorted({stream.sock.fileno() for stream in streams})
        process = subprocess.Popen(
            argv, pass_fds=fds, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            if cpu is not None:
                os.sched_setaffinity(process.pid, {cpu})
            out, err = process.communicate(timeout=duration_s + drain_ms / 1000 + 30)
        except BaseException:
            process.kill()
            process.wait(timeout=10)
            raise
    if process.returncode != 0:
        raise LoadgenError(f"loadgen exited with {process.returncode}: {err.strip()}")
    try:
        summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise LoadgenError(f"loadgen printed no JSON summary: {out!r} {err!r}") from exc
    return summary


def direct_pairs(n_calls: int, host: str = "127.0.0.1") -> list[Stream]:
    """``n_calls`` pairs of legs that talk to each other directly: no relay, for self-tests.

    The caller owns the sockets (``stream.sock``) and closes them.
    """
    streams: list[Stream] = []
    for call in range(n_calls):
        a, b = bind_udp(host), bind_udp(host)
        streams.append(Stream(a, "a", b.getsockname()[:2], peer=2 * call + 1))
        streams.append(Stream(b, "b", a.getsockname()[:2], peer=2 * call))
    return streams


def close_all(streams: Sequence[Stream]) -> None:
    """Close every stream's socket (once, even if shared)."""
    for sock in {id(s.sock): s.sock for s in streams}.values():
        sock.close()
