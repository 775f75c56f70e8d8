"""A userspace rtpengine on loopback, owned by the benchmark, driven over its ng protocol.

rtpengine (Debian package ``rtpengine-daemon``, binary ``rtpengine``) is the
reference media relay hotline is compared with. ``RtpEngine`` runs it in the
foreground as a child process:

- userspace only: ``--table=-1`` (no in-kernel forwarding; the kernel module is
  not loaded here, and it would measure the kernel, not the relay);
- ``--config-file=none`` so the system config (which asks for the kernel table
  and ``interface=any``) is never read;
- bound to loopback: ``--interface=127.0.0.1``, ``--listen-ng=127.0.0.1:PORT``,
  a private media port range below the kernel's ephemeral range;
- ``--num-threads=1`` (one worker thread polls and relays every socket; the
  default is one per core, at least four) and ``--media-num-threads=0`` (no
  playback threads); after start-up every thread of the process is pinned to
  one CPU when asked (``cpu=``), so the relay gets one core, like hotline's one
  asyncio process;
- ``--log-stderr`` into a file in its own temporary directory (with the pidfile);
- killed at the end: SIGTERM, then SIGKILL after 5 s, also when the caller fails.

``NgClient`` speaks the ng control protocol: a UDP datagram holding a cookie,
a space and a bencoded dictionary, answered by the same cookie and a bencoded
dictionary (``{"result": "ok", ...}`` or ``{"result": "error",
"error-reason": ...}``). Commands used here: ``ping``, ``offer``, ``answer``,
``delete``.

CPU: ``RtpEngine.cpu_seconds()`` is utime + stime from ``/proc/<pid>/stat``,
which sums every thread of the process, in clock ticks (10 ms on Linux).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
Bencodable = bytes | str | int | list["Bencodable"] | dict[str, "Bencodable"]


class NgError(RuntimeError):
    """rtpengine answered a command with an error, or not at all."""


class RtpEngineMissing(RuntimeError):
    """The rtpengine binary is not installed."""


# ------------------------------------------------------------------ bencode


def bencode(value: Bencodable) -> bytes:
    """Encode a value as bencode (strings are UTF-8; dict keys sorted, as the format wants)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    if isinstance(value, dict):
        items = sorted((key.encode(), item) for key, item in value.items())
        return b"d" + b"".join(bencode(key) + bencode(item) for key, item in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value; strings come back as ``str`` (UTF-8, errors replaced).

    Raises:
        ValueError: ``data`` is not exactly one well-formed value.
    """
    value, end = _bdecode(data, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the bencoded value")
    return value


def _bdecode(data: bytes, at: int) -> tuple[Any, int]:
    if at >= len(data):
        raise ValueError("bencode value cut short")
    lead = data[at : at + 1]
    if lead == b"i":
        end = data.find(b"e", at)
        if end < 0:
            raise ValueError("unterminated bencode integer")
        return int(data[at + 1 : end]), end + 1
    if lead == b"l":
        items, at = [], at + 1
        while data[at : at + 1] != b"e":
            item, at = _bdecode(data, at)
            items.append(item)
        return items, at + 1
    if lead == b"d":
        result, at = {}, at + 1
        while data[at : at + 1] != b"e":
            key, at = _bdecode(data, at)
            result[key], at = _bdecode(data, at)
        return result, at + 1
    if lead.isdigit():
        colon = data.find(b":", at)
        if colon < 0:
            raise ValueError("bencode string without a length")
        start = colon + 1
        end = start + int(data[at:colon])
        if end > len(data):
            raise ValueError("bencode string cut short")
        return data[start:end].decode(errors="replace"), end
    raise ValueError(f"bad bencode at byte {at}: {lead!r}")


# ------------------------------------------------------------------ SDP


def audio_sdp(port: int, host: str = LOOPBACK, session_id: int | None = None) -> str:
    """A minimal PCMU/8000 offer or answer for one audio stream (RFC 4566)."""
    session = session_id if session_id is not None else secrets.randbits(31)
    return (
        "v=0\r\n"
        f"o=- {session} 1 IN IP4 {host}\r\n"
        "s=hotline-bench\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


def media_address(sdp: str) -> tuple[str, int]:
    """The (address, port) of the first audio stream of an SDP body.

    Raises:
        NgError: the SDP has no audio stream or no connection address.
    """
    session_host: str | None = None
    section: str | None = None  # "session", or the media type of the current m= section
    audio: tuple[str | None, int] | None = None  # (its own c= address, port)
    for line in sdp.splitlines():
        if line.startswith("m="):
            if audio is not None:
                break  # only the first audio section counts
            parts = line[2:].split()
            section = parts[0] if parts else ""
            if section == "audio" and len(parts) > 1 and parts[1].isdigit():
                audio = (None, int(parts[1]))
        elif line.startswith("c=IN IP"):
            if section is None:
                session_host = line.split()[-1]
            elif section == "audio" and audio is not None:
                audio = (line.split()[-1], audio[1])
    host = None if audio is None else audio[0] or session_host
    if audio is None or host is None:
        raise NgError(f"no audio address in SDP: {sdp!r}")
    port = audio[1]
    return host, port


# ------------------------------------------------------------------ ng client


class NgClient:
    """Requests and answers over rtpengine's ng protocol (UDP, cookie + bencode)."""

    def __init__(self, address: tuple[str, int], timeout_s: float = 2.0, attempts: int = 3) -> None:
        """Talk to rtpengine's ``--listen-ng`` address; each request is tried ``attempts`` times."""
        if address[0] not in (LOOPBACK, "localhost", "::1"):
            raise ValueError(f"refusing to talk to {address[0]}: loopback only")
        self.address = address
        self.timeout_s = timeout_s
        self.attempts = attempts
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((LOOPBACK, 0))
        self._prefix = secrets.token_hex(4)
        self._counter = 0

    def close(self) -> None:
        """Close the client's socket."""
        self._sock.close()

    def __enter__(self) -> NgClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, command: dict[str, Bencodable]) -> dict[str, Any]:
        """Send one command and return rtpengine's answer.

        Raises:
            NgError: no answer after every attempt, or ``result`` is not ``ok``/``pong``.
        """
        self._counter += 1
        cookie = f"{self._prefix}_{self._counter}".encode()
        datagram = cookie + b" " + bencode(command)
        for _ in range(self.attempts):
            self._sock.sendto(datagram, self.address)
            deadline = time.monotonic() + self.timeout_s
            while (left := deadline - time.monotonic()) > 0:
                self._sock.settimeout(left)
                try:
                    reply = self._sock.recv(65535)
                except TimeoutError:
                    break
                head, _, body = reply.partition(b" ")
                if head != cookie:
                    continue  # a late answer to an earlier attempt
                answer = bdecode(body)
                if not isinstance(answer, dict):
                    raise NgError(f"ng answer is not a dictionary: {answer!r}")
                if answer.get("result") not in ("ok", "pong"):
                    reason = answer.get("error-reason", answer.get("result"))
                    raise NgError(f"{command.get('command')!s} failed: {reason}")
                return answer
        raise NgError(f"no answer from rtpengine at {self.address} to {command.get('command')!s}")

    def ping(self) -> None:
        """``ping``; rtpengine answers ``pong``."""
        if self.request({"command": "ping"}).get("result") != "pong":
            raise NgError("ping was not answered with pong")

    def offer(self, call_id: str, from_tag: str, sdp: str) -> str:
        """``offer`` leg A's SDP; returns the SDP to give leg B (rtpengine's B-side port)."""
        answer = self.request(
            {"command": "offer", "call-id": call_id, "from-tag": from_tag, "sdp": sdp}
        )
        return str(answer["sdp"])

    def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str) -> str:
        """``answer`` with leg B's SDP; returns the SDP to give leg A (rtpengine's A-side port)."""
        reply = self.request(
            {
                "command": "answer",
                "call-id": call_id,
                "from-tag": from_tag,
                "to-tag": to_tag,
                "sdp": sdp,
            }
        )
        return str(reply["sdp"])

    def delete(self, call_id: str, from_tag: str) -> dict[str, Any]:
        """``delete`` the call; returns the answer (rtpengine answers ``ok`` with a
        ``warning`` for a call it does not know)."""
        return self.request({"command": "delete", "call-id": call_id, "from-tag": from_tag})

    def query(self, call_id: str) -> dict[str, Any]:
        """``query`` a call: its legs, ports and packet counters (``totals``).

        Raises:
            NgError: the call is unknown.
        """
        return self.request({"command": "query", "call-id": call_id})


# ------------------------------------------------------------------ the daemon


def find_binary() -> str:
    """The rtpengine binary.

    Raises:
        RtpEngineMissing: it is not installed.
    """
    for candidate in (shutil.which("rtpengine"), "/usr/bin/rtpengine", "/usr/sbin/rtpengine"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RtpEngineMissing(
        "rtpengine is not installed (Debian package rtpengine-daemon; "
        "tools/install-system-deps.sh installs it)"
    )


def ephemeral_low() -> int:
    """The lowest port the kernel hands out for port 0 (our sockets get theirs above it)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_udp_port() -> int:
    """A UDP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # fields 14, 15 of proc(5)


@dataclass(frozen=True, slots=True)
class RelayedCall:
    """One call through rtpengine: where each leg sends to reach the other."""

    call_id: str
    from_tag: str
    to_tag: str
    a_target: tuple[str, int]  # leg A sends here; rtpengine forwards to leg B
    b_target: tuple[str, int]  # leg B sends here; rtpengine forwards to leg A


class RtpEngine:
    """An rtpengine child process on loopback; use as a context manager."""

    def __init__(
        self,
        *,
        port_min: int | None = None,
        port_max: int | None = None,
        num_threads: int = 1,
        cpu: int | None = None,
        log_level: int = 4,
        start_timeout_s: float = 15.0,
    ) -> None:
        """Configure; ``start`` (or ``with``) runs it.

        Args:
            port_min: lowest media port; by default a 6,000-port window below the
                ephemeral range, chosen per process to keep clear of parallel runs.
            port_max: highest media port.
            num_threads: rtpengine worker threads (``--num-threads``).
            cpu: pin every thread of rtpengine to this CPU after start-up.
            log_level: syslog level for its stderr log (4: warnings).
            start_timeout_s: how long to wait for the first ``pong``.
        """
        if port_min is None or port_max is None:
            top = min(ephemeral_low(), 32768) - 1
            window = 6000
            slot = os.getpid() % max(1, (top - 10000) // window)
            port_min = 10000 + slot * window
            port_max = port_min + window - 1
        if not 1024 <= port_min < port_max <= 65535:
            raise ValueError(f"bad media port range {port_min}-{port_max}")
        self.port_min, self.port_max = port_min, port_max
        self.num_threads = num_threads
        self.cpu = cpu
        self.log_level = log_level
        self.start_timeout_s = start_timeout_s
        self.ng_address = (LOOPBACK, free_udp_port())
        self.process: subprocess.Popen[bytes] | None = None
        self.version = ""
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None
        self.client: NgClient | None = None

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        if self.process is None:
            raise RuntimeError("rtpengine is not running")
        return self.process.pid

    @property
    def log_path(self) -> Path:
        """Its stderr log."""
        if self._dir is None:
            raise RuntimeError("rtpengine was not started")
        return Path(self._dir.name) / "rtpengine.log"

    def command(self, binary: str, workdir: Path) -> list[str]:
        """The command line (documented in the module docstring)."""
        return [
            binary,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            f"--log-level={self.log_level}",
            "--table=-1",
            f"--interface={LOOPBACK}",
            f"--listen-ng={self.ng_address[0]}:{self.ng_address[1]}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            f"--num-threads={self.num_threads}",
            "--media-num-threads=0",
            "--delete-delay=0",
            "--timeout=120",
            f"--pidfile={workdir / 'rtpengine.pid'}",
        ]

    def start(self) -> RtpEngine:
        """Start the daemon and wait until it answers ``ping``.

        Raises:
            RtpEngineMissing: rtpengine is not installed.
            NgError: it did not answer in time (its log tail is in the message).
        """
        binary = find_binary()
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        self.version = (version.stdout + version.stderr).strip().removeprefix("Version: ")
        self._dir = tempfile.TemporaryDirectory(prefix="hotline-rtpengine-")
        workdir = Path(self._dir.name)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(binary, workdir),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,  # a Ctrl-C to the benchmark is handled by us, not it
        )
        try:
            self.client = NgClient(self.ng_address, timeout_s=0.2, attempts=1)
            deadline = time.monotonic() + self.start_timeout_s
            while True:
                if self.process.poll() is not None:
                    raise NgError(
                        f"rtpengine exited with {self.process.returncode}: {self.log_tail()}"
                    )
                try:
                    self.client.ping()
                    break
                except NgError:
                    if time.monotonic() > deadline:
                        raise NgError(f"rtpengine did not answer ping: {self.log_tail()}") from None
            self.client.timeout_s, self.client.attempts = 2.0, 3
            if self.cpu is not None:
                self.pin(self.cpu)
        except BaseException:
            self.stop()
            raise
        return self

    def pin(self, cpu: int) -> None:
        """Pin every thread of the daemon to one CPU."""
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                os.sched_setaffinity(int(task.name), {cpu})

    def threads(self) -> int:
        """How many threads the daemon runs."""
        return len(list(Path(f"/proc/{self.pid}/task").iterdir()))

    def cpu_seconds(self) -> float:
        """CPU time the daemon has used so far (user + system, all threads)."""
        return process_cpu_seconds(self.pid)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of its log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except (OSError, RuntimeError):
            return ""

    def relay_call(self, index: int, a_port: int, b_port: int) -> RelayedCall:
        """Set up one call between loopback ports ``a_port`` (caller) and ``b_port`` (callee)."""
        if self.client is None:
            raise RuntimeError("rtpengine is not running")
        call_id = f"bench-{os.getpid()}-{index}@hotline"
        from_tag, to_tag = f"a{index}", f"b{index}"
        offer_for_b = self.client.offer(call_id, from_tag, audio_sdp(a_port))
        answer_for_a = self.client.answer(call_id, from_tag, to_tag, audio_sdp(b_port))
        b_target = media_address(offer_for_b)  # what leg B was told: rtpengine's B side
        a_target = media_address(answer_for_a)  # what leg A was told: rtpengine's A side
        for host, _ in (a_target, b_target):
            if host != LOOPBACK:
                raise NgError(f"rtpengine offered {host}, not loopback")
        return RelayedCall(call_id, from_tag, to_tag, a_target, b_target)

    def delete_call(self, call: RelayedCall) -> None:
        """Tear one call down."""
        if self.client is None:
            raise RuntimeError("rtpengine is not running")
        self.client.delete(call.call_id, call.from_tag)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s; returns the exit status. Safe to call twice."""
        status = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            status = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def cleanup(self) -> None:
        """Stop, and remove the temporary directory with the log."""
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RtpEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@contextlib.contextmanager
def running(**options: Any) -> Iterator[RtpEngine]:
    """``with running(cpu=1) as engine:`` — an ``RtpEngine`` started and always cleaned up."""
    engine = RtpEngine(**options)
    try:
        yield engine.start()
    finally:
        engine.cleanup()
