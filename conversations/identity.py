"""Customer identities in one canonical spelling, so one person is found one way.

Phone numbers become E.164 (ITU-T Recommendation E.164: ``+``, a country code,
the national significant number, at most 15 digits in all), whatever header or
URI they came in: a SIP ``From`` or ``P-Asserted-Identity`` (RFC 3261 §25.1
``name-addr``, RFC 3325), a ``sip:``/``sips:`` URI whose user part is a
telephone-subscriber (RFC 3261 §19.1.1, ``user=phone``), a ``tel:`` URI
(RFC 3966), or digits a person typed. E-mail addresses are lower-cased; web-chat
visitor ids and account ids are only stripped.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from conversations.model import IDENTITY_KINDS

__all__ = ["normalize_identity", "normalize_phone"]

# RFC 3966 §3: visual-separator = "-" / "." / "(" / ")"; people also type spaces.
_SEPARATORS = str.maketrans("", "", " \t-.()")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts e.g. Arabic-Indic digits
_E164_MAX_DIGITS = 15  # ITU-T E.164 §6: country code + national number
_E164_MIN_DIGITS = 7  # the shortest in service (+683 4002, Niue); shorter is an extension
_NANP_DIGITS = 11  # +1 and a 10-digit number: the North American plan has one length
_MAX_TEXT_IDENTITY = 200
_MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3 path limit, less the angle brackets


def normalize_phone(raw: str, default_country_code: str = "1") -> str:
    """Return the E.164 form (``+15551234567``) of a number in a header, URI or text.

    Accepts a whole header value (``"Ann" <sip:+15551234567@h;user=phone>;tag=x``),
    a ``sip:``/``sips:``/``tel:`` URI or bare digits with visual separators. A
    number without ``+`` is read with the international prefix ``00`` (the one
    ITU-T recommends) or, in North America, ``011``; otherwise it is national:
    ``default_country_code`` is put in front, after dropping a trunk ``0``
    outside North America (``020 7946 0000`` with ``44`` is ``+442079460000``).

    Args:
        raw: the header value, URI or typed number.
        default_country_code: the site's country code, for national numbers.

    Returns:
        ``+`` followed by 7 to 15 digits (exactly 11 for country code 1).

    Raises:
        ValueError: no number can be found (``sip:alice@host``, ``anonymous``),
            or it cannot be an E.164 number; the message quotes the input.
    """
    if not isinstance(raw, str):
        raise ValueError(f"phone number must be a string, not {type(raw).__name__}")
    if not (_DIGITS.fullmatch(default_country_code) and len(default_country_code) <= 3):
        raise ValueError(f"country code must be 1 to 3 digits, not {default_country_code!r}")
    if default_country_code.startswith("0"):
        raise ValueError(f"country code cannot start with 0: {default_country_code!r}")
    subscriber, context = _telephone_subscriber(_addr_spec(raw.strip(), raw), raw)
    digits = subscriber.translate(_SEPARATORS)
    plus = digits.startswith("+")
    if plus:
        digits = digits[1:]
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"no phone number in {raw!r}: {subscriber!r} is not a number")
    if plus:
        international = digits
    elif context.startswith("+"):
        # RFC 3966 §5.1.5: a local number whose phone-context is a global number prefix.
        international = context[1:].translate(_SEPARATORS) + digits
    elif digits.startswith("00"):
        international = digits[2:]
    elif default_country_code == "1" and digits.startswith("011"):
        international = digits[3:]
    elif default_country_code == "1":
        # NANP: "1 555 123 4567" carries its own country code (the trunk prefix is 1).
        international = digits if len(digits) == _NANP_DIGITS and digits[0] == "1" else "1" + digits
    else:
        international = default_country_code + (digits[1:] if digits.startswith("0") else digits)
    return "+" + _checked_e164(international, raw)


def _checked_e164(international: str, raw: str) -> str:
    if not _DIGITS.fullmatch(international) or international.startswith("0"):
        raise ValueError(f"no E.164 number in {raw!r}: country codes do not start with 0")
    if international.startswith("1") and len(international) != _NANP_DIGITS:
        raise ValueError(
            f"no E.164 number in {raw!r}: +1 numbers have 10 digits after the country code, "
            f"not {len(international) - 1}"
        )
    if not _E164_MIN_DIGITS <= len(international) <= _E164_MAX_DIGITS:
        raise ValueError(
            f"no E.164 number in {raw!r}: {len(international)} digits, "
            f"expected {_E164_MIN_DIGITS} to {_E164_MAX_DIGITS}"
        )
    return international


def _addr_spec(text: str, raw: str) -> str:
    """The URI of a header value: inside ``<>`` after any quoted display name."""
    rest = text
    if rest.startswith('"'):
        # RFC 3261 §25.1: quoted-string with quoted-pair; the name may hold '<' or '"'.
        index, escaped = 1, False
        while index < len(rest) and (escaped or rest[index] != '"'):
            escaped = not escaped and rest[index] == "\\"
            index += 1
        if index >= len(rest):
            raise ValueError(f"no phone number in {raw!r}: unterminated display name")
        rest = rest[index + 1 :]
    opening = rest.find("<")
    if opening < 0:
        return rest.strip()
    closing = rest.find(">", opening)
    if closing < 0:
        raise ValueError(f"no phone number in {raw!r}: '<' without '>'")
    return rest[opening + 1 : closing].strip()


def _telephone_subscriber(uri: str, raw: str) -> tuple[str, str]:
    """The number part of a URI and its ``phone-context`` (empty when absent)."""
    scheme, colon, rest = uri.partition(":")
    scheme = scheme.lower()
    if colon and scheme in ("sip", "sips"):
        user, at, _host = rest.partition("@")
        if not at:
            raise ValueError(f"no phone number in {raw!r}: the SIP URI has no user part")
        # RFC 3261 §19.1.1: userinfo = user [":" password] "@", user may be %-escaped.
        subscriber = unquote(user).partition(":")[0]
    elif colon and scheme == "tel":
        subscriber = unquote(rest)
    elif colon and scheme.isalpha():
        raise ValueError(f"no phone number in {raw!r}: {scheme!r} is not a sip, sips or tel URI")
    else:
        subscriber = uri.partition("@")[0]
    # RFC 3966 §3: telephone-subscriber = number *par; par = ";" name ["=" value].
    number, *params = subscriber.split(";")
    context = ""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context":
            context = value.strip()
    if not number.strip():
        raise ValueError(f"no phone number in {raw!r}")
    return number.strip(), context


def normalize_identity(kind: str, value: str, *, default_country_code: str = "1") -> str:
    """Return the canonical spelling of an identity of the given kind.

    Args:
        kind: ``phone``, ``email``, ``webchat`` or ``account``.
        value: what the channel gave us.
        default_country_code: for phone numbers without one (``normalize_phone``).

    Returns:
        phone: E.164; email: stripped of ``mailto:`` and lower-cased (providers
        treat the local part case-insensitively though RFC 5321 §2.4 allows
        otherwise, and a customer typing ``Ann@`` once and ``ann@`` next time is
        one person); webchat and account ids: stripped.

    Raises:
        ValueError: unknown kind, or a value that cannot be that kind of identity.
    """
    if kind not in IDENTITY_KINDS:
        raise ValueError(f"identity kind must be one of {sorted(IDENTITY_KINDS)}, not {kind!r}")
    if not isinstance(value, str):
        raise ValueError(f"{kind} identity must be a string, not {type(value).__name__}")
    if kind == "phone":
        return normalize_phone(value, default_country_code)
    text = value.strip()
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise ValueError(f"{kind} identity {value!r} contains control characters")
    if kind == "email":
        if text[:7].lower() == "mailto:":
            text = text[7:]
        local, at, domain = text.lower().rpartition("@")
        if not (at and local and domain) or any(char.isspace() for char in text):
            raise ValueError(f"not an e-mail address: {value!r}")
        if len(text) > _MAX_EMAIL:
            raise ValueError(f"e-mail address longer than {_MAX_EMAIL} characters: {value!r}")
        return f"{local}@{domain}"
    if not text:
        raise ValueError(f"{kind} identity is empty")
    if len(text) > _MAX_TEXT_IDENTITY:
        raise ValueError(f"{kind} identity longer than {_MAX_TEXT_IDENTITY} characters")
    return text
