"""Dialogs (RFC 3261 §12): identity, route set, CSeq rules, in-dialog requests.

A dialog is identified by Call-ID, local tag and remote tag (§12). The UAS
builds its state from the request (§12.1.1), the UAC from the response
(§12.1.2). In-dialog requests carry the remote target as Request-URI and the
route set as Route headers (§12.2.1.1).

We also remember the transport ``peer`` the dialog's first message came from or
went to, and send in-dialog requests there: behind NAT the Contact is often a
private address, but the flow the INVITE used works (as in RFC 5626 flows).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from sip.address import NameAddress, Via
from sip.errors import RemoteProtocolError
from sip.headers import Headers
from sip.message import BRANCH_MAGIC, Request, Response
from sip.peer import Peer
from sip.uri import SipUri


class DialogState(Enum):
    """§12: a dialog is early (1xx with a tag) or confirmed (2xx)."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def new_tag() -> str:
    """A random tag with at least 32 bits of randomness (§19.3)."""
    return secrets.token_hex(5)


def new_branch() -> str:
    """A unique RFC 3261 branch (§8.1.1.7: starts with the magic cookie)."""
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID (§8.1.1.4)."""
    return f"{secrets.token_hex(12)}@{host}"


@dataclass(slots=True)
class Dialog:
    """The state of one dialog (§12.1)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # the From (ours) or To header value, without tag
    remote_uri: str
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int | None = None
    peer: Peer | None = None
    state: DialogState = DialogState.EARLY

    @property
    def dialog_id(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, source: Peer) -> Dialog:
        """§12.1.1: the UAS side, built from the dialog-creating request."""
        remote = request.from_
        remote_tag = remote.tag or ""
        contact = _single_contact(request.headers)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_without_tag(request.headers.get("To") or ""),
            remote_uri=_without_tag(request.headers.get("From") or ""),
            remote_target=contact,
            # §12.1.1: the route set is the Record-Route list, in order.
            route_set=list(request.headers.get_all("Record-Route")),
            local_cseq=secrets.randbelow(2**15) + 1,
            remote_cseq=request.cseq.number,
            peer=source,
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response, peer: Peer) -> Dialog:
        """§12.1.2: the UAC side, built from the INVITE and a 1xx/2xx with a To tag."""
        contact = _single_contact(response.headers)
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_uri=_without_tag(request.headers.get("From") or ""),
            remote_uri=_without_tag(response.headers.get("To") or ""),
            remote_target=contact,
            # §12.1.2: the route set is the Record-Route list in reverse order.
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_cseq=request.cseq.number,
            peer=peer,
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
        )

    def update_from_response(self, response: Response) -> None:
        """A 2xx confirms an early dialog and refreshes its target (§12.1.2, §12.2.1.2)."""
        if response.is_success:
            self.state = DialogState.CONFIRMED
            self.route_set = list(reversed(response.headers.get_all("Record-Route")))
        if "Contact" in response.headers:
            self.remote_target = _single_contact(response.headers)

    def check_remote_cseq(self, request: Request) -> None:
        """§12.2.2: a CSeq lower than the last one is out of order and gets 500.

        ACK and CANCEL carry the CSeq of the request they refer to and are exempt.
        """
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return
        if self.remote_cseq is not None and number <= self.remote_cseq:
            raise RemoteProtocolError("CSeq out of order", 500)
        self.remote_cseq = number

    def create_request(
        self,
        method: str,
        via_host: str,
        via_port: int,
        *,
        cseq: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        contact: str | None = None,
    ) -> Request:
        """§12.2.1.1: build a request within this dialog.

        ``cseq`` is given for ACK (the INVITE's number, §13.2.2.4); otherwise the
        local sequence number is incremented.
        """
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        headers = Headers()
        transport = (self.peer.transport if self.peer else "udp").upper()
        headers.add(
            "Via", str(Via(transport, via_host, via_port, {"branch": new_branch(), "rport": None}))
        )
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{self.local_uri};tag={self.local_tag}")
        headers.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        request_uri = self.remote_target
        routes = list(self.route_set)
        if routes and ";lr" not in routes[0]:
            # §12.2.1.1: a strict router in front: it becomes the Request-URI and the
            # remote target goes last in the Route set.
            request_uri = NameAddress.parse(routes[0]).uri
            routes = routes[1:] + [f"<{self.remote_target}>"]
        for route in routes:
            headers.add("Route", route)
        if contact:
            headers.add("Contact", contact)
        for name, value in extra_headers or ():
            headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return Request(method, request_uri, headers, body)


def _single_contact(headers: Headers) -> SipUri:
    value = headers.get("Contact")
    if value is None:
        # §12.1.1 and §12.1.2: a dialog-creating message must carry a Contact.
        raise RemoteProtocolError("missing Contact header")
    return NameAddress.parse(value).uri


def _without_tag(value: str) -> str:
    address = NameAddress.parse(value)
    params = {name: v for name, v in address.params.items() if name != "tag"}
    return str(NameAddress(address.uri, address.display_name, params))
