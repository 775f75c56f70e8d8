"""The bridge's settings: what the composition root decides for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
        recordings_dir: The recordings root: every ``Recording.path`` is relative to it
            (a ``str`` is made a ``Path``). None: the bridge serves no audio (the
            recordings API answers 404 and says so).
    """

    secret_key: bytes
    cookie_secure: bool = False
    max_body_bytes: int = 64 * 1024
    session_lifetime_s: float = 12 * 3600.0
    default_country_code: str = "1"
    recordings_dir: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.recordings_dir, str):
            object.__setattr__(self, "recordings_dir", Path(self.recordings_dir))
        # A short key would make every signature guessable; fail at start-up, not later.
        if len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 bytes")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.session_lifetime_s <= 0:
            raise ValueError("session_lifetime_s must be positive")
