"""The typed keys under which the app and each request carry the bridge's objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bridge.hub import Hub
    from bridge.live import Live
    from bridge.playback_audit import PlaybackAudit
    from bridge.settings import BridgeSettings

__all__ = ["CHANNELS", "HUB", "LIVE", "LOGIN_GUARD", "PLAYBACK_AUDIT", "SETTINGS", "STORE"]

# The store is typed Any: ``conversations`` exposes one interface over two backends.
STORE: web.AppKey[Any] = web.AppKey("store", Any)
LIVE: web.AppKey[Live] = web.AppKey("live")
HUB: web.AppKey[Hub] = web.AppKey("hub")
SETTINGS: web.AppKey[BridgeSettings] = web.AppKey("settings")
LOGIN_GUARD: web.AppKey[Any] = web.AppKey("login_guard", Any)
CHANNELS: web.AppKey[Any] = web.AppKey("text_channels", Any)
PLAYBACK_AUDIT: web.AppKey[PlaybackAudit] = web.AppKey("playback_audit")
