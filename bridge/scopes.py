"""The roles users have and the scopes API tokens carry (no imports: the CLI reads these)."""

from __future__ import annotations

__all__ = ["ROLES", "SCOPES"]

ROLES = frozenset({"agent", "qa", "admin"})

# What an API token may be allowed to do; each REST operation names the one it needs.
SCOPES = frozenset(
    {
        "messages:write",  # open text conversations and post messages (text channels)
        "conversations:read",
        "customers:read",
        "customers:write",
        "agents:read",
        "agents:write",
        "queues:read",
        "calls:read",  # a call's IVR outcome
        "audit:read",
        "metrics:read",
    }
)
