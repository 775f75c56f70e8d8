"""The Replaces header (RFC 3891): which existing dialog a new INVITE replaces.

RFC 3891 §6.1:
    Replaces        = "Replaces" HCOLON callid *(SEMI replaces-param)
    replaces-param  = to-tag / from-tag / early-flag / generic-param
    to-tag          = "to-tag" EQUAL token
    from-tag        = "from-tag" EQUAL token
    early-flag      = "early-only"

The tags are named from the point of view of the UA that *receives* the INVITE
with Replaces (§3): it compares ``to-tag`` with its own (local) tag of the
dialog and ``from-tag`` with the peer's (remote) tag, "as if they were tags
present in an incoming request". ``local_tag`` and ``remote_tag`` below say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import RemoteProtocolError
from sip.grammar import is_token

# RFC 3261 §25.1: callid = word [ "@" word ]; word allows these besides alphanumerics.
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALLID_RE = re.compile(rf"{_WORD}(?:@{_WORD})?")


@dataclass(frozen=True, slots=True)
class Replaces:
    """The dialog to replace: Call-ID, both tags and the early-only flag."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    @classmethod
    def parse(cls, text: str) -> Replaces:
        """Parse a Replaces header value.

        Raises:
            RemoteProtocolError: 400 naming what is wrong (no Call-ID, a missing or
                repeated tag, a bad parameter).
        """
        # ";" is in neither word nor token, so a plain split is exact here.
        call_id, *raw_params = (part.strip() for part in text.strip().split(";"))
        if not _CALLID_RE.fullmatch(call_id):
            raise RemoteProtocolError(f"bad Call-ID in Replaces {text[:60]!r}")
        tags: dict[str, list[str]] = {"to-tag": [], "from-tag": []}
        early_only = False
        for raw in raw_params:
            name, equal, value = (piece.strip() for piece in raw.partition("="))
            name = name.lower()
            if not is_token(name) or (equal and not value):
                raise RemoteProtocolError(f"bad Replaces parameter {raw[:40]!r}")
            if name in tags:
                if not is_token(value):
                    raise RemoteProtocolError(f"bad {name} in Replaces {value[:40]!r}")
                tags[name].append(value)
            elif name == "early-only":
                early_only = True
            # Other generic-params are allowed by the grammar and ignored.
        for name, values in tags.items():
            # §6.1: exactly one to-tag and exactly one from-tag.
            if len(values) != 1:
                problem = "missing" if not values else "repeated"
                raise RemoteProtocolError(f"{problem} {name} in Replaces")
        return cls(call_id, tags["to-tag"][0], tags["from-tag"][0], early_only)

    @property
    def local_tag(self) -> str:
        """Our tag of the dialog to replace, when we receive the INVITE (§3)."""
        return self.to_tag

    @property
    def remote_tag(self) -> str:
        """The peer's tag of the dialog to replace, when we receive the INVITE (§3)."""
        return self.from_tag

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


def tags_match(replaces_tag: str, dialog_tag: str) -> bool:
    """Compare a Replaces tag with a dialog's tag.

    RFC 3891 §6.1: for dialogs of RFC 2543 UAs, a tag of zero matches both a tag
    of zero and no tag at all.
    """
    if replaces_tag == "0":
        return dialog_tag in ("0", "")
    return replaces_tag == dialog_tag
