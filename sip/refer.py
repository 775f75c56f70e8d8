"""REFER and its implicit subscription (RFC 3515, RFC 4488, RFC 6665, RFC 3420).

The wire side of call transfer, without state machines: reading Refer-To (with
the escaped headers a URI may carry, RFC 3261 §19.1.1), Refer-Sub, Event and
Subscription-State, and writing and reading the ``message/sipfrag`` status
lines that NOTIFYs carry. The user agent core keeps the per-dialog records
defined at the end (``ReceivedRefer``, ``SentRefers``) on each call leg.

    Refer-To     = ("Refer-To" / "r") HCOLON ( name-addr / addr-spec )
                   *(SEMI generic-param)                        (RFC 3515 §2.1)
    Refer-Sub    = "Refer-Sub" HCOLON refer-sub-value *(SEMI exten)
    refer-sub-value = "true" / "false"                          (RFC 4488 §7.1)
    headers      = "?" header *( "&" header )
    header       = hname "=" hvalue                             (RFC 3261 §25.1)
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from sip.address import NameAddress
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.grammar import parse_params, split_outside
from sip.headers import Headers, canonical_name
from sip.replaces import Replaces
from sip.uri import SipUri

EVENT_PACKAGE = "refer"
SIPFRAG_TYPE = "message/sipfrag"
# RFC 3420 §2: the version parameter names the SIP version of the fragment.
SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"
# How long, in seconds, each provisional NOTIFY says the subscription lasts
# (RFC 3515 §2.4.4 leaves the duration to the REFER-Recipient).
SUBSCRIPTION_EXPIRES_S = 60

# RFC 3261 §25.1: hvalue = *( hnv-unreserved / unreserved / escaped ); everything
# else (";", "=", "@", "%", "&", spaces ...) is percent-escaped.
_HVALUE_SAFE = "[]/?:+$-_.!~*'()"
# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF (RFC 3261 §7.2);
# a missing empty reason's SP is forgiven.
_STATUS_LINE_RE = re.compile(rb"SIP/2\.0 ([1-6][0-9][0-9])(?: [^\r\n]*)?")


@dataclass(frozen=True, slots=True)
class ReferTo:
    """A parsed Refer-To: the target without URI headers, and the Replaces it carried."""

    target: SipUri
    replaces: Replaces | None


def parse_refer_to(headers: Headers) -> ReferTo:
    """Read the single Refer-To of a REFER.

    Raises:
        RemoteProtocolError: 400 for none or more than one (RFC 3515 §2.4.2), for an
            unparsable URI and for a bad embedded Replaces.
    """
    values = [part for value in headers.get_all("Refer-To") for part in split_outside(value, ",")]
    if len(values) != 1:
        # RFC 3515 §2.4.2: zero or more than one Refer-To value gets 400.
        count = "no" if not values else "more than one"
        raise RemoteProtocolError(f"{count} Refer-To header")
    try:
        uri = NameAddress.parse(values[0]).uri
    except RemoteProtocolError as exc:
        # 416 is for the Request-URI only (RFC 3261 §21.4.17); here the header is bad.
        raise RemoteProtocolError(f"bad Refer-To header: {exc.reason}") from exc
    replaces: Replaces | None = None
    found = [value for name, value in uri_headers(uri.headers) if name == "Replaces"]
    if len(found) > 1:
        raise RemoteProtocolError("more than one Replaces in Refer-To")
    if found:
        replaces = Replaces.parse(found[0])
    target = dataclasses.replace(uri, params=dict(uri.params), headers="")
    return ReferTo(target, replaces)


def uri_headers(text: str) -> list[tuple[str, str]]:
    """Split and unescape the ``?headers`` part of a SIP URI (without the "?").

    Names come back in their canonical header form (``replaces`` -> ``Replaces``).

    Raises:
        RemoteProtocolError: for a header without "=" or escapes that are not UTF-8.
    """
    pairs: list[tuple[str, str]] = []
    if not text:
        return pairs
    for raw in text.split("&"):
        name, equal, value = raw.partition("=")
        if not equal or not name:
            raise RemoteProtocolError(f"bad URI header {raw[:40]!r}")
        try:
            name, value = unquote(name, errors="strict"), unquote(value, errors="strict")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"bad escape in URI header {raw[:40]!r}") from exc
        pairs.append((canonical_name(name), value))
    return pairs


def refer_to_value(refer_to: str, replaces: Replaces | None = None) -> str:
    """Build a Refer-To value for ``refer_to``, embedding ``replaces`` escaped.

    RFC 3891 §6 / RFC 3515 §2.1: the Replaces goes in the URI's header part, so its
    ";" and "=" are escaped; the URI is put in <> since it then holds a "?" (§20).

    Raises:
        LocalProtocolError: when ``refer_to`` is not a SIP URI (the caller's bug).
    """
    try:
        uri = SipUri.parse(refer_to)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"bad Refer-To URI {refer_to!r}: {exc.reason}") from exc
    if replaces is not None:
        escaped = f"Replaces={quote(str(replaces), safe=_HVALUE_SAFE)}"
        uri = dataclasses.replace(uri, headers="&".join(filter(None, (uri.headers, escaped))))
    return f"<{uri}>"


def parse_refer_sub(headers: Headers) -> bool:
    """Whether the REFER-Issuer wants the implicit subscription (RFC 4488 §4).

    Raises:
        RemoteProtocolError: 400 for a value other than true or false.
    """
    value = headers.get("Refer-Sub")
    if value is None:
        return True
    word = value.split(";", 1)[0].strip().lower()
    if word not in ("true", "false"):
        raise RemoteProtocolError(f"bad Refer-Sub {value[:20]!r}")
    return word == "true"


def parse_event(value: str) -> tuple[str, str | None]:
    """Split an Event header value into its package and ``id`` (RFC 6665 §8.2.1).

    Raises:
        RemoteProtocolError: 400 for a malformed value.
    """
    package, semi, params = value.strip().partition(";")
    return package.strip().lower(), parse_params(semi + params).get("id")


def subscription_terminated(headers: Headers) -> bool:
    """Whether Subscription-State says ``terminated`` (RFC 6665 §8.2.3).

    Raises:
        RemoteProtocolError: 400 when the header is missing (mandatory in NOTIFY).
    """
    value = headers.get("Subscription-State")
    if value is None:
        raise RemoteProtocolError("missing Subscription-State header")
    return value.split(";", 1)[0].strip().lower() == "terminated"


def notify_headers(event_id: str | None, final: bool) -> list[tuple[str, str]]:
    """Event and Subscription-State of a refer NOTIFY we send.

    RFC 3515 §2.4.6: ``id`` is the CSeq number of the REFER when the dialog saw
    more than one. §2.4.7: the final NOTIFY terminates with reason ``noresource``.
    """
    event = EVENT_PACKAGE if event_id is None else f"{EVENT_PACKAGE};id={event_id}"
    state = "terminated;reason=noresource" if final else f"active;expires={SUBSCRIPTION_EXPIRES_S}"
    return [("Event", event), ("Subscription-State", state)]


def sipfrag_status(status_code: int, reason: str) -> bytes:
    """A sipfrag body holding one Status-Line (RFC 3420 §2, RFC 3515 §2.4.5).

    Raises:
        LocalProtocolError: for a code outside 100-699 or a reason with CR or LF.
    """
    if not 100 <= status_code <= 699:
        raise LocalProtocolError(f"status code {status_code} is not a SIP status")
    if "\r" in reason or "\n" in reason:
        raise LocalProtocolError("a reason phrase cannot hold CR or LF")
    return f"SIP/2.0 {status_code} {reason}\r\n".encode()


def parse_sipfrag_status(content_type: str | None, body: bytes) -> int | None:
    """The status code of a sipfrag body's Status-Line, or None when there is none."""
    if content_type != SIPFRAG_TYPE:
        return None
    first_line = body.lstrip(b"\r\n").split(b"\r\n", 1)[0]
    match = _STATUS_LINE_RE.fullmatch(first_line)
    return int(match.group(1)) if match else None


# ----------------------------------------------------------- per-dialog records


@dataclass(slots=True)
class ReceivedRefer:
    """A REFER we accepted: we are the notifier of its implicit subscription."""

    cseq: int
    event_id: str | None  # the Event ``id`` our NOTIFYs carry (§2.4.6), if any
    subscription: bool  # False when the referrer sent Refer-Sub: false (RFC 4488)
    terminated: bool = False  # the final NOTIFY went out, or the referrer is gone
    reported: bool = False  # the application gave a final status


@dataclass(slots=True)
class SentRefers:
    """REFERs we sent in one dialog: we are the subscriber to their progress."""

    live: list[int] = field(default_factory=list)  # CSeqs whose NOTIFYs may still come

    def match(self, event_id: str | None) -> int | None:
        """The REFER a NOTIFY's Event ``id`` names, or the oldest live one without it."""
        if event_id is None:
            return self.live[0] if self.live else None
        return next((cseq for cseq in self.live if str(cseq) == event_id), None)

    def end(self, cseq: int) -> None:
        """The subscription of REFER ``cseq`` is over (or never started)."""
        if cseq in self.live:
            self.live.remove(cseq)
