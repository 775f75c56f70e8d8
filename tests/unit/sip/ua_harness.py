"""A user agent core on a fake clock, with a peer that speaks raw SIP bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sip.message import Request, Response
from sip.parser import parse_message
from sip.peer import Peer
from sip.registration_service import Credential, RegistrationService
from sip.transaction_events import Transmit
from sip.transaction_layer import TransactionLayer
from sip.user_agent import UaConfig, UserAgent

US = "192.0.2.1"
PHONE = Peer("udp", "198.51.100.7", 5062)


@dataclass
class Limits:
    min_expires_s: int = 60
    max_expires_s: int = 3600
    default_expires_s: int = 3600
    requests_per_s: float = 100.0
    burst: int = 100
    max_auth_failures: int = 3
    failure_window_s: float = 60.0
    block_s: float = 300.0


@dataclass
class Harness:
    """Feed bytes in, read what went out (parsed) and which events came up."""

    now: float = 1000.0
    sent: list[tuple[Request | Response, Peer]] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    guard: object = None

    def __post_init__(self) -> None:
        self.registration = RegistrationService(
            realm="hotline",
            credentials={"nurse1": Credential("nurse1", "secret1")},
            secret=b"k" * 32,
            domain=US,
            limits=Limits(),
        )
        self.ua = UserAgent(
            UaConfig(host=US, port=5060), TransactionLayer(), self.registration,
            invite_guard=self.guard,  # type: ignore[arg-type]
        )

    def take(self, outputs: list) -> list:  # type: ignore[type-arg]
        for output in outputs:
            if isinstance(output, Transmit):
                self.sent.append((parse_message(output.data), output.peer))
            else:
                self.events.append(output)
        return outputs

    def deliver(self, data: bytes, source: Peer = PHONE) -> None:
        self.take(self.ua.receive(parse_message(data), source, self.now))

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer due on the way, in order."""
        end = self.now + seconds
        while (deadline := self.ua.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.take(self.ua.on_timer(self.now))
        self.now = end

    def pop_sent(self) -> list[Request | Response]:
        messages = [message for message, _ in self.sent]
        self.sent.clear()
        return messages

    def pop_events(self) -> list[object]:
        events, self.events = self.events, []
        return events


def invite(
    call_id: str = "c1@phone",
    branch: str = "z9hG4bKinv1",
    from_user: str = "ann",
    from_host: str = "example.com",
    cseq: int = 1,
    to_tag: str | None = None,
    method: str = "INVITE",
    extra: str = "",
    body: bytes = b"",
) -> bytes:
    to = f"<sip:hotline@{US}>" + (f";tag={to_tag}" if to_tag else "")
    content = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:hotline@{US} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.1.1.1:5062;branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:{from_user}@{from_host}>;tag=ph1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{from_user}@10.1.1.1:5062>\r\n"
        f"{extra}{content}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def response_to(request: Request, status: int, to_tag: str = "agent1", body: bytes = b"",
                contact: str = "<sip:nurse1@10.2.2.2:5080>") -> bytes:
    from sip.message import make_response

    headers = [("Contact", contact)] if status < 300 and status != 100 else []
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return bytes(make_response(request, status, to_tag=to_tag, headers=headers, body=body))


def from_peer(
    leg: object,
    method: str,
    cseq: int,
    extra: str = "",
    body: bytes = b"",
    branch: str | None = None,
) -> bytes:
    """A request the leg's peer sends inside the leg's dialog (§12.2.1.1, seen from them)."""
    dialog = leg.dialog  # type: ignore[attr-defined]
    return (
        f"{method} sip:hotline@{US}:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.1.1.1:5062;branch={branch or f'z9hG4bK{method}{cseq}'};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: {dialog.remote_uri};tag={dialog.remote_tag}\r\n"
        f"To: {dialog.local_uri};tag={dialog.local_tag}\r\n"
        f"Call-ID: {dialog.call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:peer@10.1.1.1:5062>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
