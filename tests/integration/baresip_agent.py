"""baresip as a hotline agent's softphone: registers, rings or answers by itself, says what it got.

Debian 12's baresip 1.0 runs headless here: ``aufile`` plays a tone WAV as its
microphone, ``aubridge`` stands in for the speaker, ``sndfile`` writes what it
decodes (what it hears) to WAV files, and ``-s`` prints every SIP message it sends
and receives, from which ``BaresipAgent`` takes the INVITEs it was offered. The
``ctrl_tcp`` module takes commands (``hangup``, ``accept``) on a loopback port.

libre under baresip 1.0 gives up on a first digest challenge that is not MD5
(``test_baresip.py``), so a server it registers with lists only MD5.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.integration.helpers import LOOPBACK, free_port, free_port_range

BARESIP_MODULES = Path("/usr/lib/baresip/modules")
_NEEDED_MODULES = ("g711", "aufile", "aubridge", "sndfile", "account", "menu", "ctrl_tcp")


def baresip_missing() -> str | None:
    """Why baresip cannot play an agent here, or ``None``."""
    if shutil.which("baresip") is None:
        return "baresip is not installed (Debian package baresip; `make test` installs it)"
    missing = [m for m in _NEEDED_MODULES if not (BARESIP_MODULES / f"{m}.so").exists()]
    if missing:
        return f"baresip modules missing in {BARESIP_MODULES}: {', '.join(missing)}"
    return None


def _write_tone(path: Path, tone_hz: float, seconds: float = 30.0) -> None:
    rate_hz = 8000
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    pcm = (8000 * np.sin(2 * np.pi * tone_hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(pcm.tobytes())


@dataclass
class SipMessage:
    """One SIP message from baresip's trace."""

    direction: str  # "recv" or "send"
    start_line: str
    headers: dict[str, str]  # name as sent -> value, repeats joined with ", "
    raw: str

    @property
    def method(self) -> str | None:
        return None if self.start_line.startswith("SIP/2.0") else self.start_line.split(" ")[0]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


# baresip -s prints each message, sent or received, after two lines:
# "\x1b[36;1m#" and "UDP 127.0.0.1:5060 -> 127.0.0.1:40000", and ends it with "\x1b[;m".
_TRACE_HEAD = re.compile(r"^(?:UDP|TCP|TLS) (\S+) -> (\S+)\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_trace(output: str, own_port: int) -> list[SipMessage]:
    """Every SIP message in baresip's ``-s`` output, in order; ``own_port`` is its SIP port."""
    lines = _ANSI.sub("", output).replace("\r\n", "\n").split("\n")
    messages: list[SipMessage] = []
    index = 0
    while index < len(lines):
        head = _TRACE_HEAD.match(lines[index].strip())
        index += 1
        if not head:
            continue
        start = index
        while index < len(lines) and lines[index].strip():
            index += 1
        block = lines[start:index]
        if not block:
            continue
        headers: dict[str, str] = {}
        for line in block[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        direction = "recv" if head.group(2).endswith(f":{own_port}") else "send"
        messages.append(SipMessage(direction, block[0].strip(), headers, "\n".join(block)))
    return messages


class BaresipAgent:
    """One baresip process registered as ``username``; ``answermode`` auto or manual."""

    def __init__(
        self, workdir: Path, *, server_port: int, username: str, password: str,
        auto_answer: bool = True, tone_hz: float = 1000.0, lifetime_s: int = 120,
    ) -> None:
        self.workdir, self.server_port = workdir, server_port
        self.username, self.password = username, password
        self.auto_answer, self.tone_hz, self.lifetime_s = auto_answer, tone_hz, lifetime_s
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.output_path = workdir / "baresip.out"
        self.dumps = workdir / "dumps"
        self.proc: asyncio.subprocess.Process | None = None

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dumps.mkdir(exist_ok=True)
        tone = self.workdir / "tone.wav"
        _write_tone(tone, self.tone_hz)
        rtp_low, rtp_high = free_port_range(20)
        (self.workdir / "config").write_text("\n".join([
            "poll_method epoll",
            f"sip_listen {LOOPBACK}:{self.sip_port}",
            "sip_trans_def udp",
            f"net_interface {LOOPBACK}",
            f"rtp_ports {rtp_low}-{rtp_high}",
            f"audio_source aufile,{tone}",
            "audio_player aubridge,nil",
            "audio_alert aubridge,nil",
            f"snd_path {self.dumps}",
            f"ctrl_tcp_listen {LOOPBACK}:{self.ctrl_port}",
            f"module_path {BARESIP_MODULES}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            "module_app account.so",
            "module_app menu.so",  # carries answermode=auto in baresip 1.0
            "module_app ctrl_tcp.so",
            "",
        ]))
        answermode = "auto" if self.auto_answer else "manual"
        (self.workdir / "accounts").write_text(
            f"<sip:{self.username}@{LOOPBACK}:{self.server_port}>;auth_pass={self.password};"
            f"answermode={answermode};regint=300\n"
        )

    async def start(self, register_timeout_s: float = 10.0) -> BaresipAgent:
        """Start baresip; return once the server accepted its REGISTER."""
        self.write_config()
        with self.output_path.open("wb") as output:
            # -t: baresip quits by itself after lifetime_s whatever happens here.
            self.proc = await asyncio.create_subprocess_exec(
                "baresip", "-f", str(self.workdir), "-s", "-t", str(self.lifetime_s),
                cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
        assert await self.wait_for(self.registered, register_timeout_s), (
            f"baresip {self.username} did not register\n{self.describe()}"
        )
        return self

    def output(self) -> str:
        return self.output_path.read_bytes().decode(errors="replace")

    def messages(self) -> list[SipMessage]:
        return parse_trace(self.output(), self.sip_port)

    def registered(self) -> bool:
        """A 200 to a REGISTER with a binding that has not expired."""
        replies = [m for m in self.messages() if m.direction == "recv"
                   and m.start_line.startswith("SIP/2.0 200")
                   and (m.header("CSeq") or "").endswith("REGISTER")]
        return bool(replies) and "expires=0" not in (replies[-1].header("Contact") or "")

    def invites(self) -> list[SipMessage]:
        """The INVITEs baresip was offered (each retransmission once)."""
        seen: set[tuple[str | None, str | None]] = set()
        invites = []
        for message in self.messages():
            if message.direction == "recv" and message.method == "INVITE":
                key = (message.header("Call-ID"), message.header("CSeq"))
                if key not in seen:
                    seen.add(key)
                    invites.append(message)
        return invites

    def established(self) -> int:
        """How many calls baresip says were established."""
        return self.output().count("Call established:")

    def terminated(self) -> int:
        return len(re.findall(r"Call with \S+ terminated", self.output()))

    def heard(self) -> list[Path]:
        """The WAVs of what baresip decoded (heard), one per call (``sndfile``)."""
        return sorted(p for p in self.dumps.glob("*.wav") if "-dec" in p.name)

    async def wait_for(self, predicate: Any, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if predicate():
                return True
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        return bool(predicate())

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        """One ``ctrl_tcp`` command (netstring-framed JSON), e.g. ``hangup``; its reply."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOOPBACK, self.ctrl_port), 3.0
        )
        try:
            body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
            writer.write(str(len(body)).encode() + b":" + body + b",")
            await writer.drain()
            while True:
                length = await asyncio.wait_for(reader.readuntil(b":"), 3.0)
                data = await asyncio.wait_for(reader.readexactly(int(length[:-1]) + 1), 3.0)
                reply = json.loads(data[:-1])
                if reply.get("response"):
                    return dict(reply)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def describe(self) -> str:
        return f"--- baresip {self.username} output (tail) ---\n{self.output()[-4000:]}"

    async def stop(self) -> None:
        """Quit (which unregisters); kill at worst."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            await self.command("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 3)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
