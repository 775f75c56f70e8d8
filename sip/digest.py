"""Digest authentication for SIP: RFC 3261 §22, with RFC 7616 as RFC 8760 brings it to SIP.

Sans-IO: header *values* and a clock ``now`` in, header values and verdicts out.

- ``parse_credentials`` / ``parse_challenge`` read ``Authorization`` (or
  ``Proxy-Authorization``) and ``WWW-Authenticate`` (or ``Proxy-Authenticate``)
  values; ``str()`` of the result writes them back.
- ``DigestServer`` issues challenges and verifies credentials for the UAS and
  registrar. Its nonces carry their own issue time and an HMAC, so they cannot be
  forged and their age is known without storing them; only nonces that were
  *used* are remembered, for replay protection, in a bounded table.
- ``build_authorization`` and ``DigestClient`` answer a challenge for the UAC.

Algorithms: ``SHA-256`` and ``MD5`` (RFC 8760 §2.1); the ``-sess`` variants are
not supported. Quality of protection: ``auth`` and ``auth-int``, and the RFC 2069
form without ``qop`` for MD5 only (RFC 3261 §22.4 keeps it for backward
compatibility; RFC 7616 dropped it, so SHA-256 always needs ``qop``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.grammar import is_token, quote, split_outside, unquote

# RFC 7616 §6.1 (IANA "HTTP Digest Algorithm Values") -> hashlib name, strongest first.
_HASHES = {"SHA-256": "sha256", "MD5": "md5"}
_HEX_LENGTHS = {"SHA-256": 64, "MD5": 32}
SUPPORTED_ALGORITHMS = tuple(_HASHES)
SUPPORTED_QOPS = ("auth", "auth-int")

# nc-value = 8LHEX (RFC 3261 §25.1); the largest count a client can send.
_NC_MAX = 0xFFFFFFFF
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_WHITESPACE = " \t\r\n"

# The nonce is base64url(issued_ms | salt | tag): 8 + 8 + 16 bytes -> 43 characters.
_NONCE_STAMP = struct.Struct(">q")
_NONCE_SALT_BYTES = 8
_NONCE_TAG_BYTES = 16  # HMAC-SHA256 cut to 128 bits: forging it is a 2**-128 guess
_NONCE_BYTES = _NONCE_STAMP.size + _NONCE_SALT_BYTES + _NONCE_TAG_BYTES
_NONCE_CHARS = 43


# --------------------------------------------------------------------- hashes


def _hash_hex(algorithm: str, data: bytes) -> str:
    return hashlib.new(_HASHES[algorithm], data).hexdigest()


def _check_algorithm(algorithm: str) -> str:
    name = algorithm.upper()
    if name not in _HASHES:
        raise LocalProtocolError(f"unsupported digest algorithm {algorithm!r}")
    return name


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """Return H(A1), the hex value a server may store instead of the password.

    RFC 7616 §3.4.2: A1 = unq(username) ":" unq(realm) ":" passwd.

    Raises:
        LocalProtocolError: ``algorithm`` is not one we support.
    """
    algorithm = _check_algorithm(algorithm)
    return _hash_hex(algorithm, f"{username}:{realm}:{password}".encode())


def compute_response(
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """Return the ``response`` value for the given H(A1) and request.

    Args:
        ha1: H(A1) in hex (see ``compute_ha1``).
        nonce: the server's nonce, unquoted.
        method: the request method (for SIP, the method of the request, §22.4).
        uri: the ``uri`` parameter, exactly as sent.
        algorithm: ``MD5`` or ``SHA-256``.
        qop: ``auth``, ``auth-int`` or None for the RFC 2069 form.
        nc: the nonce count as the 8 hex digits sent on the wire (with ``qop``).
        cnonce: the client nonce (with ``qop``).
        body: the message body, hashed into A2 for ``auth-int`` only.

    Raises:
        LocalProtocolError: an unsupported algorithm or qop, or ``qop`` without
            ``nc``/``cnonce``.
    """
    algorithm = _check_algorithm(algorithm)
    # RFC 7616 §3.4.3: A2 = Method ":" request-uri, plus ":" H(entity-body) for auth-int.
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + _hash_hex(algorithm, body)
    elif qop not in (None, "auth"):
        raise LocalProtocolError(f"unsupported qop {qop!r}")
    ha2 = _hash_hex(algorithm, a2.encode())
    if qop is None:
        # RFC 2069 §2.1.1 (kept by RFC 3261 §22.4): KD(H(A1), unq(nonce) ":" H(A2)).
        data = f"{nonce}:{ha2}"
    else:
        if nc is None or cnonce is None:
            raise LocalProtocolError("qop needs both nc and cnonce")
        # RFC 7616 §3.4.1: KD(H(A1), unq(nonce):nc:unq(cnonce):unq(qop):H(A2)),
        # where KD(secret, data) = H(secret ":" data).
        data = f"{nonce}:{nc}:{cnonce}:{qop}:{ha2}"
    return _hash_hex(algorithm, f"{ha1}:{data}".encode())


# -------------------------------------------------------------------- parsing


@dataclass(slots=True, frozen=True)
class Credentials:
    """A parsed ``Authorization`` / ``Proxy-Authorization`` value (Digest only).

    ``algorithm`` is upper-cased and ``qop`` lower-cased; every other value is
    kept exactly as sent (unquoted), since the hashes are computed over it.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    qop: str | None = None
    nc: str | None = None  # 8 hex digits, as sent: the hash covers this exact text
    opaque: str | None = None

    @property
    def nonce_count(self) -> int:
        """``nc`` as a number (0 when the credentials carry no ``qop``)."""
        return int(self.nc, 16) if self.nc is not None else 0

    def __str__(self) -> str:
        # RFC 3261 §25.1: username, realm, nonce, uri, response, cnonce and opaque are
        # quoted strings; algorithm, qop (message-qop) and nc are bare tokens.
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={quote(self.cnonce or '')}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


@dataclass(slots=True, frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` / ``Proxy-Authenticate`` value (Digest only)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()  # the offered qop-options, lower-case; () = RFC 2069 form
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None

    def __str__(self) -> str:
        # RFC 3261 §25.1: qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
        parts = [
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.domain is not None:
            parts.append(f"domain={quote(self.domain)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


def _parse_digest_params(value: str, header: str) -> dict[str, str]:
    """Split ``Digest name=value, name="quoted"`` into unquoted values by lower-case name.

    credentials = "Digest" LWS dig-resp *(COMMA dig-resp)
    challenge   = "Digest" LWS digest-cln *(COMMA digest-cln)
    auth-param  = auth-param-name EQUAL ( token / quoted-string )

    Every parameter may be a token or a quoted string: clients quote ``qop`` and
    ``algorithm`` where the grammar has tokens, and nothing is lost by accepting it.
    """
    text = value.strip(_WHITESPACE)
    end = next((i for i, char in enumerate(text) if char in _WHITESPACE), len(text))
    scheme, rest = text[:end], text[end:]
    if scheme.lower() != "digest":
        if not scheme:
            raise RemoteProtocolError(f"empty {header} header")
        raise RemoteProtocolError(f"{header}: unsupported scheme {scheme[:20]!r}, expected Digest")
    params: dict[str, str] = {}
    for element in split_outside(rest, ","):
        element = element.strip(_WHITESPACE)
        if not element:
            continue  # RFC 7230 §7: empty list elements are tolerated
        name, equals, raw = element.partition("=")
        name = name.strip(_WHITESPACE).lower()
        raw = raw.strip(_WHITESPACE)
        if not is_token(name):
            raise RemoteProtocolError(f"{header}: bad parameter name {name[:40]!r}")
        if not equals or not raw:
            raise RemoteProtocolError(f"{header}: parameter {name!r} has no value")
        if raw.startswith('"'):
            try:
                param = unquote(raw)
            except RemoteProtocolError as exc:
                raise RemoteProtocolError(f"{header}: parameter {name!r}: {exc.reason}") from exc
        elif is_token(raw):
            param = raw
        else:
            raise RemoteProtocolError(f"{header}: bad value for {name!r}: {raw[:40]!r}")
        if name in params:
            raise RemoteProtocolError(f"{header}: duplicate parameter {name!r}")
        params[name] = param
    if not params:
        raise RemoteProtocolError(f"{header}: no parameters after Digest")
    return params


def _require(params: dict[str, str], name: str, header: str) -> str:
    value = params.get(name)
    if value is None:
        raise RemoteProtocolError(f"{header}: missing {name!r} parameter")
    return value


def _is_hex(text: str) -> bool:
    return bool(text) and all(char in _HEX_DIGITS for char in text)


def parse_credentials(value: str, header: str = "Authorization") -> Credentials:
    """Parse an ``Authorization`` or ``Proxy-Authorization`` header value.

    Args:
        value: the header value, starting with ``Digest``.
        header: the header's name, used in error reasons.

    Raises:
        RemoteProtocolError: another scheme, a malformed parameter list, a
            missing required parameter, or a bad ``nc``/``response``/``qop``.
    """
    params = _parse_digest_params(value, header)
    username = _require(params, "username", header)
    realm = _require(params, "realm", header)
    nonce = _require(params, "nonce", header)
    uri = _require(params, "uri", header)
    response = _require(params, "response", header)
    # request-digest = LDQUOT 32LHEX RDQUOT (RFC 3261), 64 hex digits for SHA-256 (RFC 8760 §2.2)
    if not _is_hex(response):
        raise RemoteProtocolError(f"{header}: response is not hexadecimal")
    qop = params.get("qop")
    nc = params.get("nc")
    cnonce = params.get("cnonce")
    if qop is not None:
        qop = qop.lower()
        if not is_token(qop):
            raise RemoteProtocolError(f"{header}: bad qop {qop[:20]!r}")
        # RFC 7616 §3.4: cnonce and nc MUST be sent with qop.
        if nc is None or cnonce is None:
            raise RemoteProtocolError(f"{header}: qop={qop} needs both nc and cnonce")
        # nc-value = 8LHEX
        if len(nc) != 8 or not _is_hex(nc):
            raise RemoteProtocolError(f"{header}: nc must be 8 hex digits, got {nc[:20]!r}")
    elif nc is not None or cnonce is not None:
        raise RemoteProtocolError(f"{header}: nc and cnonce need qop")
    return Credentials(
        username=username,
        realm=realm,
        nonce=nonce,
        uri=uri,
        response=response,
        algorithm=params.get("algorithm", "MD5").upper(),  # RFC 3261 §20.7: MD5 by default
        cnonce=cnonce,
        qop=qop,
        nc=nc,
        opaque=params.get("opaque"),
    )


def parse_challenge(value: str, header: str = "WWW-Authenticate") -> Challenge:
    """Parse a ``WWW-Authenticate`` or ``Proxy-Authenticate`` header value.

    Args:
        value: the header value, starting with ``Digest``.
        header: the header's name, used in error reasons.

    Raises:
        RemoteProtocolError: another scheme, a malformed parameter list, no
            ``realm`` or ``nonce``, or a ``stale`` that is neither true nor false.
    """
    params = _parse_digest_params(value, header)
    realm = _require(params, "realm", header)
    nonce = _require(params, "nonce", header)
    # stale = "stale" EQUAL ( "true" / "false" ), case-insensitive (RFC 7616 §3.3)
    stale_text = params.get("stale", "false").lower()
    if stale_text not in ("true", "false"):
        raise RemoteProtocolError(f"{header}: stale must be true or false, got {stale_text[:20]!r}")
    qop: tuple[str, ...] = ()
    if "qop" in params:
        qop = tuple(option.strip().lower() for option in params["qop"].split(",") if option.strip())
        if not qop or not all(is_token(option) for option in qop):
            raise RemoteProtocolError(f"{header}: bad qop options {params['qop'][:40]!r}")
    return Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=params.get("opaque"),
        stale=stale_text == "true",
        domain=params.get("domain"),
    )


# --------------------------------------------------------------------- server


class AuthStatus(Enum):
    """What ``DigestServer.verify`` concluded."""

    OK = "ok"
    FAILED = "failed"  # wrong password, unknown user, realm/uri/algorithm mismatch
    STALE = "stale"  # right password, nonce expired or not ours: re-challenge, stale=true
    REPLAY = "replay"  # right password, but this nonce count was already used


@dataclass(slots=True, frozen=True)
class AuthResult:
    """The verdict on one set of credentials.

    Attributes:
        status: the verdict.
        username: who the credentials claim to be (proven only when ``ok``).
        reason: a short explanation for logs; do not put it on the wire, since
            it tells an attacker which part was wrong.
    """

    status: AuthStatus
    username: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the credentials were proven."""
        return self.status is AuthStatus.OK

    @property
    def stale(self) -> bool:
        """True when the digest was right but its nonce cannot be used (again).

        Both ``STALE`` and ``REPLAY``: the answer is a new challenge with
        ``stale=true`` (RFC 7616 §3.3), so the client retries without asking its
        user for the password; not an authentication failure.
        """
        return self.status in (AuthStatus.STALE, AuthStatus.REPLAY)


PasswordLookup = Callable[[str], str | None]
Ha1Lookup = Callable[[str, str], str | None]


class DigestServer:
    """Issues Digest challenges and verifies credentials (UAS side, RFC 3261 §22.4).

    The nonce is ``base64url(issued_ms | salt | HMAC-SHA256(secret, realm, issued_ms,
    salt)[:16])``: it cannot be forged without ``secret``, and its age is read from
    it, so issuing one stores nothing.

    Replay rule: for each nonce that was *used successfully* the server keeps the
    highest ``nc`` seen, and a later use must carry a higher one (RFC 7616 §3.4 lets
    the server check this). A request without ``qop`` (RFC 2069 form) has no counter,
    so such a nonce is good for one request; the client is re-challenged after that.
    Entries are forgotten once their nonce is older than ``nonce_ttl_s`` (from then
    on the nonce is stale anyway). The table holds at most ``max_tracked_nonces``;
    when it is full the oldest entry is dropped and every untracked nonce issued no
    later than the dropped one is treated as stale, so dropping an entry never
    re-opens a replay.

    Args:
        realm: the protection realm put in every challenge.
        secret: the HMAC key for nonces (16 random bytes or more; a fresh one per
            process is fine, it only invalidates outstanding nonces).
        nonce_ttl_s: how long a nonce stays fresh.
        max_tracked_nonces: the bound on the replay table.
    """

    __slots__ = ("realm", "nonce_ttl_s", "max_tracked_nonces", "_secret", "_used", "_floor_ms")

    def __init__(
        self,
        realm: str,
        secret: bytes,
        nonce_ttl_s: float = 300.0,
        max_tracked_nonces: int = 100_000,
    ) -> None:
        if len(secret) < 16:
            raise LocalProtocolError("the nonce secret must be at least 16 bytes")
        if nonce_ttl_s <= 0 or max_tracked_nonces < 1:
            raise LocalProtocolError("nonce_ttl_s and max_tracked_nonces must be positive")
        self.realm = realm
        self.nonce_ttl_s = nonce_ttl_s
        self.max_tracked_nonces = max_tracked_nonces
        self._secret = secret
        # nonce -> (issued_ms, highest nc used), in order of first use.
        self._used: dict[str, tuple[int, int]] = {}
        self._floor_ms: int | None = None

    # ------------------------------------------------------------- nonces

    def _tag(self, stamp_and_salt: bytes) -> bytes:
        message = self.realm.encode() + b"\x00" + stamp_and_salt
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_NONCE_TAG_BYTES]

    def new_nonce(self, now: float) -> str:
        """Return a fresh nonce stamped with ``now``."""
        stamp_and_salt = _NONCE_STAMP.pack(int(now * 1000)) + secrets.token_bytes(_NONCE_SALT_BYTES)
        raw = stamp_and_salt + self._tag(stamp_and_salt)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _issued_ms(self, nonce: str) -> int | None:
        """Return when we issued ``nonce`` (ms), or None when we did not issue it."""
        if len(nonce) != _NONCE_CHARS:
            return None
        try:
            raw = base64.b64decode(nonce + "=", altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            return None
        # One nonce, one spelling: the replay table is keyed by the text, so refuse
        # the other spellings of the same bytes ('+', '/', stray low bits).
        if len(raw) != _NONCE_BYTES or base64.urlsafe_b64encode(raw)[:_NONCE_CHARS] != (
            nonce.encode("ascii")
        ):
            return None
        stamp_and_salt, tag = raw[:-_NONCE_TAG_BYTES], raw[-_NONCE_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(stamp_and_salt)):
            return None
        issued_ms: int = _NONCE_STAMP.unpack_from(raw)[0]
        return issued_ms

    # ---------------------------------------------------------- challenge

    def challenge(
        self,
        now: float,
        stale: bool = False,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
    ) -> list[str]:
        """Return the ``WWW-Authenticate`` values for a 401 (or 407), one per algorithm.

        RFC 8760 §2.3: one header field per algorithm, in order of preference, so
        pass the strongest first. All share one nonce.

        Args:
            now: the clock, stamped into the nonce.
            stale: True when answering a ``STALE`` verdict (RFC 7616 §3.3), so the
                client retries with the same password without asking its user.
            algorithms: the algorithms to offer, most preferred first.

        Raises:
            LocalProtocolError: no algorithms, or one we do not support.
        """
        if not algorithms:
            raise LocalProtocolError("offer at least one algorithm")
        nonce = self.new_nonce(now)
        return [
            str(Challenge(self.realm, nonce, _check_algorithm(name), ("auth",), stale=stale))
            for name in algorithms
        ]

    # -------------------------------------------------------------- verify

    def verify(
        self,
        credentials: Credentials,
        method: str,
        password_lookup: PasswordLookup | None,
        now: float,
        body: bytes = b"",
        *,
        request_uri: str,
        ha1_lookup: Ha1Lookup | None = None,
    ) -> AuthResult:
        """Check credentials against the request they came with.

        Give exactly one of ``password_lookup(username) -> password | None`` and
        ``ha1_lookup(username, algorithm) -> H(A1) hex | None``; the second is for
        stores that keep ``compute_ha1(username, realm, password, algorithm)`` (one
        per algorithm, for this server's realm) instead of passwords.

        Args:
            credentials: from ``parse_credentials``.
            method: the request's method.
            password_lookup: see above; None when ``ha1_lookup`` is given.
            now: the clock, the same one ``challenge`` was given.
            body: the request body (used by ``qop=auth-int``).
            request_uri: the Request-URI as a string; the ``uri`` parameter must be
                this exact text (RFC 7616 §3.4.6).
            ha1_lookup: see above.

        Returns:
            ``OK`` with the username; ``STALE`` when the digest is right but the
            nonce is expired, untracked or not one of ours (forged, or issued
            before a restart); ``REPLAY`` when the nonce count was already used;
            otherwise ``FAILED`` with a reason. A forged nonce never gives ``OK``.
            Answer ``STALE`` and ``REPLAY`` (``result.stale``) with
            ``challenge(now, stale=True)``, and count only ``FAILED`` as a failure.

        Raises:
            LocalProtocolError: both or neither lookup given.
        """
        if (password_lookup is None) == (ha1_lookup is None):
            raise LocalProtocolError("give exactly one of password_lookup and ha1_lookup")
        username = credentials.username
        algorithm = credentials.algorithm
        if algorithm not in _HASHES:
            return AuthResult(AuthStatus.FAILED, username, f"unsupported algorithm {algorithm!r}")
        if credentials.realm != self.realm:
            return AuthResult(AuthStatus.FAILED, username, "realm mismatch")
        if credentials.uri != request_uri:
            return AuthResult(AuthStatus.FAILED, username, "uri does not match the Request-URI")
        qop = credentials.qop
        if qop is None and algorithm != "MD5":
            # RFC 7616 dropped the RFC 2069 form; only MD5 keeps it (RFC 3261 §22.4).
            return AuthResult(AuthStatus.FAILED, username, f"{algorithm} needs qop")
        if qop is not None and qop not in SUPPORTED_QOPS:
            return AuthResult(AuthStatus.FAILED, username, f"unsupported qop {qop!r}")
        if len(credentials.response) != _HEX_LENGTHS[algorithm]:
            return AuthResult(AuthStatus.FAILED, username, "response has the wrong length")
        if password_lookup is not None:
            password = password_lookup(username)
            if password is not None:
                ha1 = compute_ha1(username, self.realm, password, algorithm)
            else:
                ha1 = None
        else:
            assert ha1_lookup is not None  # checked above; narrows the type
            ha1 = ha1_lookup(username, algorithm)
        if ha1 is None:
            return AuthResult(AuthStatus.FAILED, username, "unknown user")
        expected = compute_response(
            ha1, credentials.nonce, method, credentials.uri, algorithm,
            qop, credentials.nc, credentials.cnonce, body,
        )
        if not hmac.compare_digest(expected, credentials.response.lower()):
            return AuthResult(AuthStatus.FAILED, username, "wrong response (password?)")
        # RFC 7616 §3.3: stale=true only "for which the nonce is invalid but with a valid
        # digest for that nonce". A nonce we cannot authenticate (forged, or from before
        # a restart changed the secret) is such a case: the client knows the password,
        # and a fresh challenge gives an attacker who does not nothing to work with.
        issued_ms = self._issued_ms(credentials.nonce)
        if issued_ms is None:
            return AuthResult(AuthStatus.STALE, username, "nonce was not issued by us")
        now_ms = int(now * 1000)
        age_ms = now_ms - issued_ms
        if age_ms < 0 or age_ms > self.nonce_ttl_s * 1000:
            return AuthResult(AuthStatus.STALE, username, "nonce expired")
        self._forget_expired(now_ms)
        return self._record_use(credentials, issued_ms)

    def _record_use(self, credentials: Credentials, issued_ms: int) -> AuthResult:
        username = credentials.username
        nonce = credentials.nonce
        seen = self._used.get(nonce)
        if seen is None and self._floor_ms is not None and issued_ms <= self._floor_ms:
            # Its entry may have been dropped for room: we cannot tell a first use from
            # a replay, so make the client fetch a new nonce.
            return AuthResult(AuthStatus.STALE, username, "nonce no longer tracked")
        highest_nc = seen[1] if seen is not None else 0
        if credentials.qop is None:
            if seen is not None:
                return AuthResult(AuthStatus.REPLAY, username, "nonce without qop used twice")
            count = _NC_MAX  # no counter: this use closes the nonce
        else:
            count = credentials.nonce_count
            if count <= highest_nc:
                return AuthResult(AuthStatus.REPLAY, username, f"nc {count} not above {highest_nc}")
        if seen is None and len(self._used) >= self.max_tracked_nonces:
            oldest = next(iter(self._used))
            dropped_ms, _ = self._used.pop(oldest)
            if self._floor_ms is None or dropped_ms > self._floor_ms:
                self._floor_ms = dropped_ms
        self._used[nonce] = (issued_ms, count)
        return AuthResult(AuthStatus.OK, username)

    def _forget_expired(self, now_ms: int) -> None:
        # The table is in order of first use, which follows issue order closely
        # enough: an entry stuck behind a younger one leaves at most one TTL later.
        limit_ms = now_ms - self.nonce_ttl_s * 1000
        while self._used:
            oldest = next(iter(self._used))
            if self._used[oldest][0] >= limit_ms:
                break
            del self._used[oldest]

    def tracked_nonces(self) -> int:
        """How many used nonces the replay table holds now."""
        return len(self._used)


# --------------------------------------------------------------------- client


def build_authorization(
    challenge: Challenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """Return the ``Authorization`` value answering ``challenge``.

    Picks ``qop=auth`` when offered, else ``auth-int``, else the RFC 2069 form
    (when the challenge offers no qop at all).

    Args:
        challenge: from ``parse_challenge``.
        method: the method of the request being authorized.
        uri: its Request-URI, as sent.
        username: the user name.
        password: the password.
        cnonce: a fresh client nonce (ignored in the RFC 2069 form).
        nc: how many times this nonce was used, this request included.
        body: the request body, for ``auth-int``.

    Raises:
        RemoteProtocolError: the challenge names an algorithm or only qop options
            we do not support.
    """
    algorithm = challenge.algorithm
    if algorithm not in _HASHES:
        raise RemoteProtocolError(f"unsupported digest algorithm {algorithm!r}")
    qop: str | None = None
    if challenge.qop:
        qop = next((option for option in SUPPORTED_QOPS if option in challenge.qop), None)
        if qop is None:
            raise RemoteProtocolError(f"no supported qop in {','.join(challenge.qop)!r}")
    if not 0 < nc <= _NC_MAX:
        raise LocalProtocolError(f"nc out of range: {nc}")
    nc_text = f"{nc:08x}" if qop else None
    ha1 = compute_ha1(username, challenge.realm, password, algorithm)
    response = compute_response(
        ha1, challenge.nonce, method, uri, algorithm, qop, nc_text,
        cnonce if qop else None, body,
    )
    return str(
        Credentials(
            username=username,
            realm=challenge.realm,
            nonce=challenge.nonce,
            uri=uri,
            response=response,
            algorithm=algorithm,
            cnonce=cnonce if qop else None,
            qop=qop,
            nc=nc_text,
            opaque=challenge.opaque,  # RFC 7616 §3.4: opaque MUST be returned unchanged
        )
    )


def choose_challenge(values: Sequence[str]) -> Challenge:
    """Pick the challenge to answer among a 401's ``WWW-Authenticate`` values.

    RFC 8760 §2.4 says to use the topmost supported one "unless a local policy
    dictates otherwise". Our policy is the strongest algorithm (first listed on a
    tie), because the header order is not protected and §3 of the same RFC warns
    that an on-path attacker could move MD5 to the top. Values of other schemes
    (``Basic``...) are skipped.

    Raises:
        RemoteProtocolError: no value is a Digest challenge we can answer.
    """
    best: Challenge | None = None
    problem = "no Digest challenge"
    for value in values:
        try:
            challenge = parse_challenge(value)
        except RemoteProtocolError as exc:
            problem = exc.reason
            continue
        if challenge.algorithm not in _HASHES:
            problem = f"unsupported digest algorithm {challenge.algorithm!r}"
            continue
        if best is None or SUPPORTED_ALGORITHMS.index(challenge.algorithm) < (
            SUPPORTED_ALGORITHMS.index(best.algorithm)
        ):
            best = challenge
    if best is None:
        raise RemoteProtocolError(f"no usable challenge: {problem}")
    return best


class DigestClient:
    """The UAC side: answers challenges with one user's password.

    It counts ``nc`` per nonce, so requests that reuse the last nonce (a REGISTER
    refresh) are accepted by servers that check the count, and draws a fresh
    ``cnonce`` for each request.
    """

    __slots__ = ("username", "password", "_nonce", "_nc")

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._nonce: str | None = None
        self._nc = 0

    def authorize(
        self,
        challenge_values: Sequence[str],
        method: str,
        uri: str,
        body: bytes = b"",
        cnonce: str | None = None,
    ) -> str:
        """Return an ``Authorization`` value for a request answering these challenges.

        Args:
            challenge_values: every ``WWW-Authenticate`` (or ``Proxy-Authenticate``)
                value of the 401/407.
            method: the method of the request being sent.
            uri: its Request-URI.
            body: its body (for ``auth-int``).
            cnonce: the client nonce; a random one when None.

        Raises:
            RemoteProtocolError: no challenge we can answer.
        """
        challenge = choose_challenge(challenge_values)
        if challenge.nonce == self._nonce:
            self._nc += 1
        else:
            self._nonce, self._nc = challenge.nonce, 1
        return build_authorization(
            challenge, method, uri, self.username, self.password,
            cnonce if cnonce is not None else secrets.token_hex(16), self._nc, body,
        )
