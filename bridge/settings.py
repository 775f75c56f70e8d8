"""The bridge's settings: what the composition root decides for it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BridgeSettings"]


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """How the bridge signs, sizes and times out what browsers and clients send.

    Attributes:
        secret_key: Key for signed cookies and CSRF tokens (``auth.load_or_create_secret``).
            Changing it logs everybody out and forgets chat visitors.
        cookie_secure: Mark cookies ``Secure`` (set when served over HTTPS).
        max_body_bytes: Largest request body; bigger ones get 413.
        session_lifetime_s: How long a login lasts (absolute, not idle).
        default_country_code: For phone numbers given without one (chat widget).
    """

    secret_key: bytes
    cookie_secure: bool = False
    max_body_bytes: int = 64 * 1024
    session_lifetime_s: float = 12 * 3600.0
    default_country_code: str = "1"

    def __post_init__(self) -> None:
        # A short key would make every signature guessable; fail at start-up, not later.
        if len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 bytes")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.session_lifetime_s <= 0:
            raise ValueError("session_lifetime_s must be positive")
