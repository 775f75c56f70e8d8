"""Shared tools of the integration tests: ports, the server process, SIPp, raw SIP, audio.

Everything here talks to 127.0.0.1 only, and every wait is bounded in time.
The audio helpers (G.711 decoding, FFT) are written here on purpose rather than
imported from ``media_core``: a test must not judge the code under test with
that same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------- ports


def _bindable(port: int, kinds: Iterable[int]) -> bool:
    for kind in kinds:
        probe = socket.socket(socket.AF_INET, kind)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        finally:
            probe.close()
    return True


_HANDED_OUT: list[range] = []  # ports given to servers that bind them later
_LOW_PORT = 10000


def free_port(*, tcp: bool = True) -> int:
    """A port free on loopback for UDP (and TCP when ``tcp``), as SIP listens on both.

    It lies below the kernel's ephemeral range. A port inside it can be taken
    before the server binds it: by any socket's implicit bind, or by the test's
    own readiness probe, whose connect to the not-yet-listening port can pick that
    very port as its source and connect to itself (a TCP self-connect), so the
    server then fails with EADDRINUSE.
    """
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,)
    high = ephemeral_port_range()[0] - 1
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        port = rng.randrange(_LOW_PORT, high)
        if any(port in taken for taken in _HANDED_OUT):
            continue
        if _bindable(port, kinds):
            _HANDED_OUT.append(range(port, port + 1))
            return port
    raise RuntimeError(f"no free port on loopback in {_LOW_PORT}-{high}")


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for port-0 binds (SIPp's and every implicit bind's ports)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_range(size: int, low: int = _LOW_PORT, high: int | None = None) -> tuple[int, int]:
    """``size`` consecutive UDP ports, starting even, all bindable right now.

    The range lies below the kernel's ephemeral range: the server binds its RTP
    ports one call after another, and a port the kernel handed to SIPp or to
    another test's socket meanwhile would make that call fail.
    """
    high = high if high is not None else ephemeral_port_range()[0] - 1
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        start = rng.randrange(low, high - size) & ~1
        window = range(start, start + size)
        if any(window.start < taken.stop and taken.start < window.stop for taken in _HANDED_OUT):
            continue
        if all(_bindable(p, (socket.SOCK_DGRAM,)) for p in window):
            _HANDED_OUT.append(range(start, start + size))
            return start, start + size - 1
    raise RuntimeError(f"no free range of {size} UDP ports in {low}-{high}")


# ------------------------------------------------------------- the server


def hotline_command() -> list[str]:
    """How to run ``hotline``: the venv's console script, else this interpreter."""
    script = Path(sys.executable).with_name("hotline")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "hotline.cli"]


def http_get_json(url: str, timeout_s: float = 2.0) -> tuple[int, dict[str, object]]:
    """GET ``url``; return (status, JSON body), also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 (loopback)
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"{}")
        except ValueError:
            return exc.code, {"raw": body.decode("latin-1")}


@dataclass
class HotlineProcess:
    """One ``hotline serve`` subprocess on loopback, with its own ports and log file."""

    workdir: Path
    max_calls: int | None = None
    drain_timeout_s: float | None = None
    log_level: str = "info"
    config_yaml: str | None = None
    ivr: bool = False  # the speech IVR; off, a call hears the greeting tone and keys echo
    rtp_range_size: int = 200
    sip_port: int = 0
    http_port: int = 0
    rtp_ports: tuple[int, int] = (0, 0)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "hotline.log"

    @property
    def health_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}/health"

    def command(self) -> list[str]:
        if self.rtp_ports == (0, 0):
            self.rtp_ports = free_port_range(self.rtp_range_size)
        self.sip_port = self.sip_port or free_port()
        self.http_port = self.http_port or free_port()
        args = hotline_command() + [
            "serve",
            "--sip-host",
            LOOPBACK,
            "--sip-port",
            str(self.sip_port),
            "--http-port",
            str(self.http_port),
            "--rtp-ports",
            f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "--data-dir",
            str(self.workdir / "data"),
            "--log-level",
            self.log_level,
        ]
        if self.max_calls is not None:
            args += ["--max-calls", str(self.max_calls)]
        if self.drain_timeout_s is not None:
            args += ["--drain-timeout", str(self.drain_timeout_s)]
        config_yaml = self.config_yaml or ""
        if not self.ivr and "ivr:" not in config_yaml:
            config_yaml += "\nivr:\n  enabled: false\n"
        if config_yaml:
            config = self.workdir / "site.yaml"
            config.write_text(config_yaml)
            args += ["--config", str(config)]
        return args

    def start(self, ready_timeout_s: float = 20.0) -> HotlineProcess:
        """Start the process and wait until ``/health`` answers 200."""
        log = self.log_path.open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"hotline serve exited with {self.proc.returncode} before it was ready:\n"
                    + self.log_text()[-4000:]
                )
            try:
                status, _ = http_get_json(self.health_url, timeout_s=0.5)
                if status == 200:
                    return self
            except (OSError, ValueError, http.client.HTTPException):
                # Before the server listens, a connect to its port (an ephemeral
                # one) can be a TCP self-connect whose "response" is our own request.
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"hotline serve not ready in {ready_timeout_s} s:\n{self.log_text()[-4000:]}"
        )

    def health(self) -> tuple[int, dict[str, object]]:
        return http_get_json(self.health_url)

    def sip_stat(self, name: str) -> int:
        """One counter from /health's ``sip`` section (0 when absent)."""
        _, body = self.health()
        sip = body.get("sip") or {}
        assert isinstance(sip, dict)
        return int(sip.get(name, 0))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, needle: str, timeout_s: float = 5.0, count: int = 1) -> bool:
        """Wait until ``needle`` appears ``count`` times in the log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log_text().count(needle) >= count:
                return True
            time.sleep(0.05)
        return False

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> int | None:
        """The exit code, or ``None`` if still running after ``timeout_s``."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited in ``timeout_s``."""
        if self.proc is None:
            return None
        self.terminate()
        code = self.wait(timeout_s)
        if code is None:
            self.kill()
        return code

    @contextlib.asynccontextmanager
    async def serving(self, ready_timeout_s: float = 120.0) -> AsyncIterator[HotlineProcess]:
        """Start it (off the loop), yield it, stop it; its log must hold no traceback."""
        await asyncio.to_thread(self.start, ready_timeout_s)
        try:
            yield self
        finally:
            await asyncio.to_thread(self.stop)
        log = self.log_text()
        assert "Traceback" not in log, log[-4000:]


# ------------------------------------------------------------------ SIPp


def sipp_binary() -> str | None:
    return shutil.which("sipp")


@dataclass
class SippResult:
    """What one SIPp run ended with."""

    returncode: int
    stats: dict[str, str]  # the last row of -trace_stat: cumulative counters are "(C)"
    output: str
    workdir: Path
    name: str

    def count(self, column: str) -> int:
        value = self.stats.get(column, "0") or "0"
        return int(float(value))

    @property
    def successful(self) -> int:
        return self.count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self.count("FailedCall(C)")

    @property
    def retransmissions(self) -> int:
        return self.count("Retransmissions(C)")

    def file_text(self, suffix: str) -> str:
        path = self.workdir / f"{self.name}{suffix}"
        return path.read_text(errors="replace") if path.exists() else ""

    def describe(self) -> str:
        """Enough to diagnose a failing run from the assertion message alone."""
        keys = [k for k, v in self.stats.items() if "(C)" in k and v not in ("0", "")]
        summary = {k: self.stats[k] for k in keys}
        errors = self.file_text("_errors.log")[-3000:]
        return (
            f"sipp exit {self.returncode}; non-zero counters {summary}\n"
            f"--- errors log tail ---\n{errors}\n--- output tail ---\n{self.output[-1500:]}"
        )


class SippRun:
    """One SIPp process in the foreground of its own, against ``target`` (host:port).

    ``start`` returns at once; ``finish`` waits and reads the statistics. SIPp's own
    ``-timeout`` is set a little below ``timeout_s`` so that it quits by itself and
    still writes its statistics; killing it at ``timeout_s`` is the backstop.
    """

    def __init__(
        self,
        target: str,
        args: Sequence[str],
        *,
        workdir: Path,
        name: str,
        timeout_s: float,
        local_port: int | None = None,
    ) -> None:
        binary = sipp_binary()
        assert binary is not None, "sipp is not installed"
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.name, self.timeout_s = workdir, name, timeout_s
        self.stat_file = workdir / f"{name}_stat.csv"
        self.local_port = local_port or free_port(tcp=False)
        sipp_timeout_s = max(2, int(timeout_s) - 3)
        self.command = [
            binary,
            target,
            "-i",
            LOOPBACK,
            "-p",
            str(self.local_port),
            "-nostdin",
            "-trace_stat",
            "-stf",
            str(self.stat_file),
            "-fd",
            "1",
            "-trace_err",
            "-error_file",
            str(workdir / f"{name}_errors.log"),
            "-trace_screen",
            "-screen_file",
            str(workdir / f"{name}_screen.log"),
            "-timeout",
            f"{sipp_timeout_s}s",
            "-timeout_error",
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> SippRun:
        self._out = (self.workdir / f"{self.name}.out").open("wb")
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.started_at = time.monotonic()
        return self

    def finish(self) -> SippResult:
        assert self.proc is not None
        left = self.timeout_s - (time.monotonic() - self.started_at)
        try:
            returncode = self.proc.wait(timeout=max(0.1, left))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            returncode = -9
        self._out.close()
        output = (self.workdir / f"{self.name}.out").read_text(errors="replace")
        stats = _last_stat_row(self.stat_file)
        return SippResult(returncode, stats, output, self.workdir, self.name)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def run_sipp(
    target: str,
    args: Sequence[str],
    *,
    workdir: Path,
    name: str,
    timeout_s: float,
    local_port: int | None = None,
) -> SippResult:
    """Run SIPp to the end (see ``SippRun``) and return its statistics."""
    run = SippRun(
        target, args, workdir=workdir, name=name, timeout_s=timeout_s, local_port=local_port
    )
    return run.start().finish()


def _last_stat_row(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


# --------------------------------------------------------------- raw SIP


@dataclass
class SipReply:
    """A SIP response as the tests see it."""

    status: int
    reason: str
    headers: dict[str, list[str]]  # lower-case names, compact forms not expanded
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_reply(data: bytes) -> SipReply:
    """Parse a response the server sent; fail the test loudly if it is not one."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", errors="replace").split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    assert version == "SIP/2.0", f"not a SIP response: {data[:200]!r}"
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return SipReply(int(status), reason[0] if reason else "", headers, body, data)


class RawSip:
    """A plain UDP socket speaking hand-written SIP to the server."""

    def __init__(self, server_port: int) -> None:
        self.server = (LOOPBACK, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv(self, timeout_s: float = 2.0) -> SipReply | None:
        """The next response, or ``None`` if nothing came in ``timeout_s``."""
        self.sock.settimeout(timeout_s)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return parse_reply(data)

    def recv_final(self, timeout_s: float = 3.0) -> SipReply | None:
        """Skip provisional responses; the first final one, or ``None``."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            reply = self.recv(left)
            if reply is None or reply.status >= 200:
                return reply
        return None

    def request(
        self,
        method: str,
        *,
        uri: str | None = None,
        from_user: str = "caller",
        to_user: str = "hotline",
        call_id: str | None = None,
        cseq: int = 1,
        extra_headers: Sequence[str] = (),
        body: bytes = b"",
        content_type: str | None = None,
        from_tag: str | None = None,
        to_tag: str | None = None,
        branch: str | None = None,
    ) -> bytes:
        """A well-formed request from this socket; tests break it on purpose where they need."""
        host, port = self.server
        call_id = call_id or f"{uuid.uuid4().hex}@{LOOPBACK}"
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = [
            f"{method} {uri or f'sip:{to_user}@{host}:{port}'} SIP/2.0",
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{from_user}@{LOOPBACK}>;tag={from_tag or uuid.uuid4().hex[:8]}",
            f"To: <sip:{to_user}@{host}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{from_user}@{LOOPBACK}:{self.port}>",
            *extra_headers,
        ]
        if body:
            lines.append(f"Content-Type: {content_type or 'application/sdp'}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ack_for_failure(invite: bytes, reply: SipReply) -> bytes:
    """The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): same branch, the reply's To."""
    head = invite.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    method, uri, _ = lines[0].split(" ", 2)
    keep = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        keep.setdefault(name.strip().lower(), value.strip())
    cseq_number = keep["cseq"].split()[0]
    to = reply.header("to") or keep["to"]
    ack = [
        f"ACK {uri} SIP/2.0",
        f"Via: {keep['via']}",
        "Max-Forwards: 70",
        f"From: {keep['from']}",
        f"To: {to}",
        f"Call-ID: {keep['call-id']}",
        f"CSeq: {cseq_number} ACK",
        "Content-Length: 0",
    ]
    return ("\r\n".join(ack) + "\r\n\r\n").encode()


def audio_offer(
    rtp_port: int,
    media: str = "audio",
    formats: str = "0",
    rtpmaps: Sequence[str] = ("a=rtpmap:0 PCMU/8000",),
) -> bytes:
    """An SDP offer from loopback."""
    lines = [
        "v=0",
        f"o=test 1 1 IN IP4 {LOOPBACK}",
        "s=-",
        f"c=IN IP4 {LOOPBACK}",
        "t=0 0",
        f"m={media} {rtp_port} RTP/AVP {formats}",
        *rtpmaps,
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def digest_authorization(
    challenge: str,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    scheme_header: str = "Authorization",
) -> str:
    """An ``Authorization`` line answering ``challenge`` (RFC 2617 §3.2.2 / RFC 8760, MD5).

    Written from the RFC in the test, not taken from ``sip.digest``: the test must
    authenticate the way a third-party phone would.
    """
    pairs = re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', challenge.partition(" ")[2])
    params = {name.lower(): quoted or bare for name, quoted, bare in pairs}
    realm, nonce = params["realm"], params["nonce"]
    algorithm = params.get("algorithm", "MD5")
    assert algorithm.upper() == "MD5", f"test digest speaks MD5 only, got {algorithm}"

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (SIP digest is MD5)

    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        "algorithm=MD5",
    ]
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce = uuid.uuid4().hex[:16]
        response = md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{response}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return f"{scheme_header}: Digest " + ", ".join(fields)


# --------------------------------------------------------------------- RTP


class RtpSink:
    """A UDP port that keeps every RTP packet it gets, per source, on a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.packets: dict[tuple[str, int], list[bytes]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rtp-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.packets.setdefault(source, []).append(data)

    def snapshot(self) -> dict[tuple[str, int], list[bytes]]:
        with self._lock:
            return {k: list(v) for k, v in self.packets.items()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@dataclass
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """RFC 3550 §5.1, as far as the tests need it (no CSRC lists or extensions expected)."""
    assert len(data) >= 12 and data[0] >> 6 == 2, f"not RTP v2: {data[:12]!r}"
    csrc_count = data[0] & 0x0F
    offset = 12 + 4 * csrc_count
    if data[0] & 0x10:  # header extension
        length_words = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4 + 4 * length_words
    end = len(data) - (data[-1] if data[0] & 0x20 else 0)
    return RtpPacket(
        payload_type=data[1] & 0x7F,
        sequence=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        ssrc=int.from_bytes(data[8:12], "big"),
        payload=data[offset:end],
    )


def _ulaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84  # ITU-T G.711 μ-law
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)  # A-law: set bit = positive


ULAW_TO_PCM = _ulaw_table()
ALAW_TO_PCM = _alaw_table()


def decode_g711(payload: bytes, payload_type: int) -> np.ndarray:
    """PCMU (0) or PCMA (8) bytes to 16-bit samples."""
    table = {0: ULAW_TO_PCM, 8: ALAW_TO_PCM}[payload_type]
    return table[np.frombuffer(payload, dtype=np.uint8)]


def dominant_frequency_hz(samples: np.ndarray, rate_hz: int) -> float:
    """The frequency of the strongest FFT bin, Hann-windowed, DC excluded."""
    signal_f = samples.astype(np.float64)
    signal_f -= signal_f.mean()
    spectrum = np.abs(np.fft.rfft(signal_f * np.hanning(len(signal_f))))
    spectrum[0] = 0.0
    freqs = np.fft.rfftfreq(len(signal_f), d=1.0 / rate_hz)
    return float(freqs[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


# --------------------------------------------------------------- waiting


def wait_until(predicate: object, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval_s)
    return bool(predicate())  # type: ignore[operator]


# ------------------------------------------------- media: recordings, DTMF, pjsua2

PJSUA_CALLER = Path(__file__).with_name("pjsua_caller.py")
# ``hotline.logs.call_log`` lines: "[<call-id>] DTMF <digit> (<method>, <duration> ms)".
DTMF_LOG_LINE = re.compile(r"\[([^\]]+)\] DTMF ([0-9A-D*#]) \((\w+), (\d+) ms\)")


@dataclass
class DtmfLogEntry:
    """One key the server logged."""

    call_id: str
    digit: str
    method: str
    duration_ms: int


def dtmf_log_entries(log: str, call_id: str | None = None) -> list[DtmfLogEntry]:
    """The server's DTMF lines, in log order (only ``call_id``'s when given)."""
    entries = [
        DtmfLogEntry(cid, digit, method, int(duration))
        for cid, digit, method, duration in DTMF_LOG_LINE.findall(log)
    ]
    return [e for e in entries if call_id is None or e.call_id == call_id]


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """A 16-bit PCM WAV as (rate_hz, samples shaped (frames, channels))."""
    import wave

    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2, f"{path}: not 16-bit"
        rate_hz, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return rate_hz, data.reshape(-1, channels)


def recordings(data_dir: Path, extension: str = "wav") -> list[Path]:
    """Every recording under ``DATA_DIR/recordings/YYYY-MM-DD/``."""
    return sorted((data_dir / "recordings").glob(f"*/*.{extension}"))


def trim_silence(samples: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """``samples`` without the leading and trailing part below ``threshold`` x its peak."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float64)) > threshold * np.abs(samples).max())
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples[:0]


def normalized_xcorr(signal: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``reference`` with each window of ``signal``, per lag.

    Element ``k`` compares ``signal[k:k + len(reference)]`` with ``reference``, both
    with their mean removed, so it lies in [-1, 1] whatever the gain on the way
    (1 is the same waveform). Windows with less than 1 LSB of RMS score 0: digital
    silence says nothing. The products are summed by FFT, the window energies by
    running sums.
    """
    x = signal.astype(np.float64)
    r = reference.astype(np.float64)
    r -= r.mean()
    n = len(r)
    if len(x) < n:
        x = np.concatenate([x, np.zeros(n - len(x))])
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    products = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(r, size)), size)
    products = products[: len(x) - n + 1]
    sums = np.concatenate([[0.0], np.cumsum(x)])
    squares = np.concatenate([[0.0], np.cumsum(x * x)])
    window_sum = sums[n:] - sums[:-n]
    energy = (squares[n:] - squares[:-n]) - window_sum * window_sum / n
    norm = np.sqrt(np.maximum(energy, 0.0) * float(np.dot(r, r)))
    audible = energy > n * 1.0
    return np.where(audible, products / np.where(audible, norm, 1.0), 0.0)


def best_alignment(
    signal: np.ndarray,
    reference: np.ndarray,
    rate_hz: int,
    earliest_s: float = 0.0,
    latest_s: float | None = None,
) -> tuple[float, float]:
    """(peak correlation, lag in s) of ``reference`` in ``signal``, the lag in the range."""
    scores = normalized_xcorr(signal, reference)
    low = max(0, int(earliest_s * rate_hz))
    high = len(scores) if latest_s is None else min(len(scores), int(latest_s * rate_hz) + 1)
    if high <= low:
        return 0.0, earliest_s
    best = low + int(np.argmax(scores[low:high]))
    return float(scores[best]), best / rate_hz


@dataclass
class PjsuaCallerRun:
    """What ``pjsua_caller.py`` printed, and PJSIP's own log."""

    returncode: int
    events: list[dict[str, object]]
    pjsip_log: str
    stderr: str

    def all(self, name: str) -> list[dict[str, object]]:
        return [e for e in self.events if e["event"] == name]

    def one(self, name: str) -> dict[str, object]:
        matching = self.all(name)
        assert matching, f"no {name!r} event\n{self.describe()}"
        return matching[-1]

    def describe(self) -> str:
        return (
            f"pjsua_caller exit {self.returncode}; events: {self.events}\n"
            f"stderr tail: {self.stderr[-1500:]}\npjsip log tail:\n{self.pjsip_log[-3000:]}"
        )


def _free_rtp_port_pair() -> int:
    """An even UDP port, free with its odd neighbour (RTCP), in the kernel's ephemeral range.

    Not below it, where ``free_port_range`` looks: media relays and load generators
    of other tests take their port windows there, and pjsua switches its RTP
    destination to whichever source keeps sending to its port (symmetric RTP), so
    stray packets from a relay's recently freed port would steal the call's audio.
    """
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((LOOPBACK, 0))  # the kernel picks from its ephemeral range
        port = int(probe.getsockname()[1]) & ~1
        probe.close()
        if port < ephemeral_port_range()[0]:
            continue
        if _bindable(port, (socket.SOCK_DGRAM,)) and _bindable(port + 1, (socket.SOCK_DGRAM,)):
            return port
    raise RuntimeError("no free RTP/RTCP port pair on loopback")


def run_pjsua_caller(
    server_port: int, workdir: Path, *args: str, timeout_s: float = 30.0
) -> PjsuaCallerRun:
    """Run ``pjsua_caller.py`` against the server to the end (bounded by ``timeout_s``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "pjsip.log"
    rtp_port = _free_rtp_port_pair()
    command = [
        sys.executable,
        str(PJSUA_CALLER),
        "--server-port",
        str(server_port),
        "--local-port",
        str(free_port(tcp=False)),
        "--rtp-port",
        str(rtp_port),
        "--log",
        str(log),
        *args,
    ]
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout_s,
    )
    lines = done.stdout.decode(errors="replace").splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    pjsip_log = log.read_text(errors="replace") if log.exists() else ""
    run = PjsuaCallerRun(done.returncode, events, pjsip_log, done.stderr.decode(errors="replace"))
    assert events and events[-1]["event"] == "done", f"the caller did not finish\n{run.describe()}"
    return run


# ------------------------------------------- agents: several pjsua2 phones, scripted

AGENT_PHONES = Path(__file__).with_name("agent_phones.py")
# RFC 3261 §7.3.3 compact header names, so ``header()`` finds either form.
_COMPACT_HEADERS = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}


def header_value(headers: dict[str, str], name: str) -> str | None:
    """A header of an ``incoming`` event, by name, case-insensitively, compact forms too."""
    wanted = name.lower()
    for key, value in headers.items():
        if _COMPACT_HEADERS.get(key.lower(), key.lower()) == wanted:
            return value
    return None


def phone_spec(
    username: str,
    password: str = "",
    *,
    behaviour: str = "ignore",
    tone_hz: float = 600.0,
    register: bool = True,
    display_name: str | None = None,
) -> dict[str, object]:
    """One phone of ``AgentPhones``, with its own SIP port and RTP port pair on loopback."""
    spec: dict[str, object] = {
        "username": username,
        "password": password,
        "behaviour": behaviour,
        "tone_hz": tone_hz,
        "register": register,
        "sip_port": free_port(tcp=False),
        "rtp_port": _free_rtp_port_pair(),
    }
    if display_name:
        spec["display_name"] = display_name
    return spec


class AgentPhones:
    """``agent_phones.py`` as an async client: start it, script it, read its events.

    Every wait is bounded: ``expect`` raises ``AssertionError`` with the event log and
    the tail of PJSIP's own log when the event does not come in time. Events are
    kept in ``events``; ``expect`` hands out each matching event once, oldest first,
    so two ``expect("incoming")`` calls return two different calls.

        phones = await AgentPhones(server.sip_port, [phone_spec("alice", "pw")], tmp).start()
        await phones.expect("registered", account="alice")
        ring = await phones.expect("incoming", account="alice", timeout_s=30)
        await phones.answer(ring["call"])
    """

    def __init__(
        self,
        server_port: int,
        phones: list[dict[str, object]],
        workdir: Path,
        *,
        max_lifetime_s: float = 240.0,
    ) -> None:
        self.server_port, self.phones, self.workdir = server_port, phones, workdir
        self.max_lifetime_s = max_lifetime_s
        self.events: list[dict[str, Any]] = []
        self._taken: set[int] = set()
        self._sent = 0  # commands written; each gets one ack or error, in order
        self._changed: asyncio.Event | None = None
        self._reader: asyncio.Task[None] | None = None
        self.proc: asyncio.subprocess.Process | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = workdir / "stderr.txt"

    async def start(self, *, register_timeout_s: float = 10.0) -> AgentPhones:
        """Start the process; wait until every phone that registers has registered."""
        self._changed = asyncio.Event()
        with self.stderr_path.open("wb") as stderr:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(AGENT_PHONES),
                "--server-port",
                str(self.server_port),
                "--phones",
                json.dumps(self.phones),
                "--workdir",
                str(self.workdir),
                "--max-lifetime-s",
                str(self.max_lifetime_s),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.expect("ready", timeout_s=10.0)
        for spec in self.phones:
            if spec.get("register", True):
                await self.expect(
                    "registered", account=spec["username"], timeout_s=register_timeout_s
                )
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        assert self._changed is not None
        while line := await self.proc.stdout.readline():
            if line.startswith(b"{"):
                self.events.append(json.loads(line))
                self._changed.set()
        self._changed.set()

    def seen(self, name: str, **match: object) -> list[dict[str, Any]]:
        """Every event so far named ``name`` whose fields equal ``match`` (none waited for)."""
        return [
            e
            for e in self.events
            if e["event"] == name and all(e.get(k) == v for k, v in match.items())
        ]

    async def expect(
        self, name: str, *, timeout_s: float = 10.0, **match: object
    ) -> dict[str, Any]:
        """The oldest matching event not handed out yet, waiting at most ``timeout_s``."""
        assert self._changed is not None, "start() first"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for index, event in enumerate(self.events):
                if index in self._taken or event["event"] != name:
                    continue
                if all(event.get(k) == v for k, v in match.items()):
                    self._taken.add(index)
                    return event
            left = deadline - loop.time()
            if left <= 0 or (self._reader is not None and self._reader.done()):
                raise AssertionError(
                    f"no {name!r} event matching {match} in {timeout_s} s\n{self.describe()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def absent(self, name: str, *, for_s: float, **match: object) -> None:
        """Assert that no new matching event comes within ``for_s``."""
        before = len(self.seen(name, **match))
        await asyncio.sleep(for_s)
        late = self.seen(name, **match)[before:]
        assert not late, f"unexpected {name!r} events {late}\n{self.describe()}"

    async def send(self, command: str, *, timeout_s: float = 5.0) -> None:
        """Send one command and wait until the process has carried it out (``ack``).

        Raises ``AssertionError`` with the phone's ``error`` message if it failed.
        """
        assert self.proc is not None and self.proc.stdin is not None
        self._sent += 1
        sent = self._sent
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()

        def replies() -> list[dict[str, Any]]:
            return [
                e
                for e in self.events
                if e["event"] == "ack" or (e["event"] == "error" and e.get("command"))
            ]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(replies()) < sent:
            assert loop.time() < deadline and self.proc.returncode is None, (
                f"no reply to {command!r} in {timeout_s} s\n{self.describe()}"
            )
            await asyncio.sleep(0.01)
        reply = replies()[sent - 1]
        assert reply["event"] == "ack", f"{command!r} failed: {reply}\n{self.describe()}"

    async def answer(self, call: str, code: int = 200) -> None:
        await self.send(f"answer {call} {code}")

    async def reject(self, call: str, code: int = 486) -> None:
        await self.send(f"reject {call} {code}")

    async def hangup(self, call: str) -> None:
        await self.send(f"hangup {call}")

    async def xfer(self, call: str, uri: str) -> None:
        await self.send(f"xfer {call} {uri}")

    async def xfer_replaces(self, call: str, other: str) -> None:
        await self.send(f"xfer_replaces {call} {other}")

    async def dtmf(self, call: str, digits: str) -> None:
        await self.send(f"dtmf {call} {digits}")

    async def call(self, account: str, uri: str) -> str:
        """Place a call from ``account``; its call id (for the other commands)."""
        before = len(self.seen("calling", account=account))
        await self.send(f"call {account} {uri}")
        return str(self.seen("calling", account=account)[before]["call"])

    async def measure(self, call: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
        """What ``call`` heard since media started or the last measure (``heard`` event)."""
        await self.send(f"measure {call}")
        return await self.expect("heard", call=call, timeout_s=timeout_s)

    async def behaviour(self, account: str, spec: str) -> None:
        await self.send(f"behaviour {account} {spec}")

    def pjsip_log(self) -> str:
        path = self.workdir / "pjsip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def describe(self) -> str:
        shown = [{k: v for k, v in e.items() if k != "msg"} for e in self.events[-40:]]
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return (
            "agent phones events (last 40, msg left out):\n"
            + "\n".join(json.dumps(e) for e in shown)
            + f"\nstderr tail: {stderr[-1500:]}\npjsip log tail:\n{self.pjsip_log()[-3000:]}"
        )

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        """``quit`` (hang up, unregister, clean teardown); kill at worst. The exit code."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            with contextlib.suppress(ConnectionError, AssertionError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2.0)
        return self.proc.returncode
