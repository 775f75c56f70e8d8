"""Where a message came from or goes to: transport, host and port."""

from __future__ import annotations

from typing import NamedTuple


class Peer(NamedTuple):
    """A transport address. ``host`` is a bare IP (IPv6 without brackets)."""

    transport: str  # "udp" or "tcp", lower-case
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """True on stream transports, where §17 timers A, E, G do not retransmit."""
        return self.transport != "udp"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
