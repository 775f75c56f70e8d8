"""Small lexical helpers shared by the SIP parsers (RFC 3261 §25.1).

They split and unquote without regular-expression backtracking surprises, and
they know about quoted strings and angle brackets, which may contain the
separators we split on.
"""

from __future__ import annotations

import re

from sip.errors import RemoteProtocolError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(text: str) -> bool:
    """Return True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None


def parse_digits(text: str, limit: int) -> int | None:
    """Return ``1*DIGIT`` text as an int below ``limit``, or None if it is not one.

    ``str.isdigit`` alone is not enough: it accepts digits such as "²" that ``int``
    rejects, and ``int`` refuses strings of more than 4300 digits (CPython's guard
    against quadratic conversion), so both would escape as ValueError.
    """
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0") or "0"  # RFC 4475 §3.1.1.1: leading zeros are valid
    if len(significant) > len(str(limit)):
        return None
    value = int(significant)
    return value if value < limit else None


def split_outside(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` where it is not inside quotes or ``<...>``.

    Raises:
        RemoteProtocolError: on an unterminated quoted string or angle bracket.
    """
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if in_quotes:
            if char == "\\":
                index += 1  # quoted-pair: the next character is literal
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == separator and not in_angle:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    if in_quotes:
        raise RemoteProtocolError("unterminated quoted string")
    if in_angle:
        raise RemoteProtocolError("unterminated '<' in header value")
    parts.append(text[start:])
    return parts


def unquote(text: str) -> str:
    r"""Remove the quotes and quoted-pair escapes of an RFC 3261 quoted-string.

    quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    quoted-pair   = "\\" (%x00-09 / %x0B-0C / %x0E-7F)
    """
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise RemoteProtocolError(f"expected a quoted string, got {text[:40]!r}")
    body = text[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 1
            if index == len(body):
                raise RemoteProtocolError("dangling escape in quoted string")
            char = body[index]
        out.append(char)
        index += 1
    return "".join(out)


def quote(text: str) -> str:
    r"""Make an RFC 3261 quoted-string of ``text``, escaping ``"`` and ``\\``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` parameters (names are case-insensitive).

    generic-param = token [ EQUAL gen-value ]
    gen-value     = token / host / quoted-string

    Values keep their quotes so that they serialize back unchanged. ``text``
    normally starts with the first ``;``; an empty parameter after it (``;;``,
    a trailing ``;``) is a syntax error (RFC 4475 §3.1.2.1).
    """
    params: dict[str, str | None] = {}
    if not text:
        return params
    for index, raw in enumerate(split_outside(text, ";")):
        raw = raw.strip()
        if not raw:
            if index == 0:
                continue  # whatever stood before the first ";" (nothing, or LWS)
            raise RemoteProtocolError("empty parameter")
        name, sep, value = raw.partition("=")
        name = name.strip().lower()
        if not is_token(name):
            raise RemoteProtocolError(f"bad parameter name {name[:40]!r}")
        params[name] = value.strip() if sep else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialize parameters as ``;name=value`` / ``;flag``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
