"""The header block of a SIP message (RFC 3261 §7.3).

Names are case-insensitive and have compact forms (§7.3.3); we store the
canonical long form. Header fields whose grammar is a comma-separated list
(§7.3.1) are split into one entry per element, so ``Via: a, b`` and two ``Via``
lines read the same. Values are kept as raw strings: responses copy them verbatim
(§8.2.6.2), and typed views parse them on demand.
"""

from __future__ import annotations

from collections.abc import Iterator

from sip.grammar import split_outside

# RFC 3261 §7.3.3 and the IANA registry: compact form -> long form.
COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
    "v": "Via", "o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events",
    "x": "Session-Expires", "a": "Accept-Contact", "j": "Reject-Contact",
    "d": "Request-Disposition", "y": "Identity",
}

_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
        "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
        "Content-Type", "CSeq", "Date", "Error-Info", "Expires", "From", "In-Reply-To",
        "Max-Forwards", "Min-Expires", "MIME-Version", "Organization", "Priority",
        "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Record-Route",
        "Reply-To", "Require", "Retry-After", "Route", "Server", "Subject", "Supported",
        "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
        "WWW-Authenticate", "Event", "Refer-To", "Referred-By", "Replaces",
        "Allow-Events", "Session-Expires", "Min-SE", "P-Asserted-Identity", "RSeq", "RAck",
        "Path", "Privacy", "Reason", "Identity",
    )
}

# §7.3.1: these headers' grammar is a comma-separated list, so splitting is lossless.
# The auth headers are not: their commas separate parameters of one value.
LIST_HEADERS = frozenset(
    {
        "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Content-Encoding", "Allow-Events", "Path", "P-Asserted-Identity",
    }
)


def canonical_name(name: str) -> str:
    """Return the canonical long form of a header name (compact forms expanded)."""
    if len(name) == 1:
        long_form = COMPACT_FORMS.get(name.lower())
        if long_form:
            return long_form
    return _CANONICAL.get(name.lower(), name)


class Headers:
    """An ordered multi-map of header fields with case-insensitive names."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field, splitting list-valued headers into their elements."""
        name = canonical_name(name)
        if name in LIST_HEADERS and "," in value:
            # Contact: * is not a list, and a quoted display name may hold commas.
            for part in split_outside(value, ","):
                part = part.strip()
                if part:
                    self._items.append((name, part))
            return
        self._items.append((name, value.strip()))

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of ``name``, or ``default``."""
        name = canonical_name(name)
        for item_name, value in self._items:
            if item_name == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name`` in message order."""
        name = canonical_name(name)
        return [value for item_name, value in self._items if item_name == name]

    def set(self, name: str, value: str) -> None:
        """Replace all values of ``name`` by one, kept at the first one's place."""
        name = canonical_name(name)
        for index, (item_name, _) in enumerate(self._items):
            if item_name == name:
                self._items[index] = (name, value)
                self._items = [
                    item for i, item in enumerate(self._items) if i <= index or item[0] != name
                ]
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        """Remove every value of ``name``."""
        name = canonical_name(name)
        self._items = [item for item in self._items if item[0] != name]

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others of its name (e.g. a new top Via)."""
        name = canonical_name(name)
        for index, (item_name, _) in enumerate(self._items):
            if item_name == name:
                self._items.insert(index, (name, value))
                return
        self._items.insert(0, (name, value))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        """Return an independent copy."""
        clone = Headers()
        clone._items = list(self._items)
        return clone

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
