"""Who is asking: passwords, browser sessions, CSRF tokens, API tokens, chat visitors.

- **Passwords** are hashed with argon2id (argon2-cffi's defaults, the OWASP
  first choice). An unknown user name costs one verification too, so the
  answer time does not tell which names exist.
- **Browser sessions**: a random 256-bit token, stored only as its SHA-256
  (``store.add_session``) so a copy of the database opens no session, and sent
  to the browser inside a cookie signed with itsdangerous (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` when configured). The store's expiry and the
  signature's age both bound it.
- **CSRF**: a request that is authenticated by the cookie and changes state
  must carry ``X-CSRF-Token``, an HMAC of the session token (a synchronizer
  token that needs no storage). Login and ``GET /api/me`` hand it to the page.
  Bearer-token requests are exempt: a browser never attaches those by itself.
- **API tokens** (``hotline token create``): ``hl_`` + 256 random bits, stored as
  SHA-256 (a slow hash adds nothing to a secret that long), each with scopes.
- **Chat visitors**: a random visitor id in a signed cookie; no account.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import stat
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import argon2
import itsdangerous
from aiohttp import web

from bridge.errors import ApiError
from bridge.keys import SETTINGS, STORE
from bridge.scopes import ROLES, SCOPES

__all__ = [
    "CSRF_HEADER",
    "ROLES",
    "SCOPES",
    "SESSION_COOKIE",
    "VISITOR_COOKIE",
    "LoginGuard",
    "Principal",
    "csrf_token",
    "hash_password",
    "is_loopback",
    "load_or_create_secret",
    "new_api_token",
    "new_session_token",
    "principal_for",
    "sign_session",
    "sign_visitor",
    "token_hash",
    "unsign_session",
    "unsign_visitor",
    "verify_password",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "hotline_session"
VISITOR_COOKIE = "hotline_visitor"
CSRF_HEADER = "X-CSRF-Token"
API_TOKEN_PREFIX = "hl_"

_SESSION_SALT = "hotline.session"
_VISITOR_SALT = "hotline.visitor"
_VISITOR_MAX_AGE_S = 365 * 86400
_SECRET_BYTES = 32

_hasher = argon2.PasswordHasher()
_dummy_hash: list[str] = []  # made on first use: hashing costs ~50 ms, not for every import


def _dummy() -> str:
    # Verified against when the user does not exist, so both paths cost the same.
    if not _dummy_hash:
        _dummy_hash.append(_hasher.hash(secrets.token_hex(16)))
    return _dummy_hash[0]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request.

    Attributes:
        name: User name, or the token's name for API tokens.
        kind: ``user`` (session cookie), ``token`` (bearer) or ``loopback``
            (no credentials, from this machine, on the few routes that allow it).
        roles: The user's roles; empty for tokens.
        scopes: The token's scopes; empty for users.
        session_token: The raw session token (users only): CSRF and logout.
    """

    name: str
    kind: Literal["user", "token", "loopback"]
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    session_token: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller (``token:NAME`` for tokens)."""
        return self.name if self.kind == "user" else f"{self.kind}:{self.name}"


# --------------------------------------------------------------------- secrets


def load_or_create_secret(path: str | os.PathLike[str]) -> bytes:
    """The key in ``path``, or a new random one written there with mode 0600.

    Raises:
        ValueError: the file exists but others may read it, or it holds no valid key.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    key = secrets.token_bytes(_SECRET_BYTES)
    with os.fdopen(fd, "w") as file:
        file.write(key.hex() + "\n")
    log.info("created a new secret key in %s", path)
    return key


def _read_secret(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"{path}: the secret key file is open to others "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ValueError(f"{path}: the secret key is not hexadecimal") from None
    if len(key) < _SECRET_BYTES:
        raise ValueError(f"{path}: the secret key is shorter than {_SECRET_BYTES} bytes")
    return key


# ------------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with its own salt and parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing hash costs a verification all the same."""
    try:
        return _hasher.verify(password_hash or _dummy(), password) and bool(password_hash)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        log.warning("a stored password hash is not an argon2 hash")
        return False


# ---------------------------------------------------------------- tokens, cookies


def token_hash(token: str) -> str:
    """What the store keeps of a session or API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_token() -> str:
    """A fresh session token."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    """A fresh API token, recognisable by its ``hl_`` prefix (e.g. by secret scanners)."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def sign_session(secret: bytes, session_token: str) -> str:
    """The session cookie's value."""
    return itsdangerous.URLSafeTimedSerializer(secret, salt=_SESSION_SALT).dumps(session_token)


def unsign_session(secret: bytes, cookie: str, max_age_s: float) -> str | None:
    """The session token in a cookie, or None if forged, altered or too old."""
    serializer = itsdangerous.URLSafeTimedSerializer(secret, salt=_SESSION_SALT)
    try:
        token = serializer.loads(cookie, max_age=math.ceil(max_age_s))
    except itsdangerous.BadData:
        return None
    return token if isinstance(token, str) else None


def csrf_token(secret: bytes, session_token: str) -> str:
    """The CSRF token that goes with a session."""
    return hmac.new(secret, b"csrf\x00" + session_token.encode(), hashlib.sha256).hexdigest()


def sign_visitor(secret: bytes, visitor_id: str) -> str:
    """The chat visitor cookie's value."""
    return itsdangerous.URLSafeTimedSerializer(secret, salt=_VISITOR_SALT).dumps(visitor_id)


def unsign_visitor(secret: bytes, cookie: str) -> str | None:
    """The visitor id in a cookie, or None."""
    serializer = itsdangerous.URLSafeTimedSerializer(secret, salt=_VISITOR_SALT)
    try:
        visitor = serializer.loads(cookie, max_age=_VISITOR_MAX_AGE_S)
    except itsdangerous.BadData:
        return None
    return visitor if isinstance(visitor, str) else None


# -------------------------------------------------------------------- requests

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def principal_for(request: web.Request) -> Principal | None:
    """Authenticate ``request`` by its bearer token or its session cookie.

    Returns None when it carries neither. A request that carries a bad one is
    refused (401) rather than treated as anonymous, so a client learns that its
    credentials are wrong. A cookie-authenticated request with an unsafe method
    must carry the session's CSRF token (403 otherwise).

    Raises:
        ApiError: 401 for a bad token or session, 403 for a missing CSRF token.
    """
    store = request.app[STORE]
    settings = request.app[SETTINGS]
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="hotline"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization must be 'Bearer TOKEN'", headers=challenge)
        api_token = await store.token_by_hash(token_hash(token.strip()))
        if api_token is None or api_token.revoked:
            raise ApiError(401, "unknown or revoked API token", headers=challenge)
        return Principal(api_token.name, "token", scopes=frozenset(api_token.scopes))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    session_token = unsign_session(settings.secret_key, cookie, settings.session_lifetime_s)
    user = None
    if session_token is not None:
        user = await store.get_session(token_hash(session_token))
    if session_token is None or user is None or user.disabled:
        raise ApiError(401, "session expired or invalid; log in again")
    if request.method in _UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = csrf_token(settings.secret_key, session_token)
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise ApiError(403, f"missing or wrong {CSRF_HEADER} header", field=CSRF_HEADER)
    return Principal(user.name, "user", roles=frozenset(user.roles), session_token=session_token)


def is_loopback(request: web.Request) -> bool:
    """Whether the peer is this machine (no proxy in between is assumed)."""
    remote = request.remote or ""
    return remote == "::1" or remote.removeprefix("::ffff:").startswith("127.")


class LoginGuard:
    """Slows password guessing, per user name.

    After ``max_failures`` failed logins for a name within ``window_s``, further
    attempts for it get 429 until the oldest failure ages out.
    """

    def __init__(self, max_failures: int = 10, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, name: str, now: float | None = None) -> float:
        """Seconds until ``name`` may try again (0 when it may now)."""
        now = time.monotonic() if now is None else now
        failures = self._failures.get(name)
        if failures is None:
            return 0.0
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[name]
            return 0.0
        if len(failures) < self.max_failures:
            return 0.0
        return failures[0] + self.window_s - now

    def failed(self, name: str, now: float | None = None) -> None:
        """Count a failed login for ``name``."""
        now = time.monotonic() if now is None else now
        if len(self._failures) > 100_000:  # a spray of names must not grow memory forever
            self._failures.clear()
        self._failures.setdefault(name, deque(maxlen=self.max_failures)).append(now)

    def succeeded(self, name: str) -> None:
        """Forget the failures of ``name``."""
        self._failures.pop(name, None)
