"""The aiohttp app: REST and WebSocket API over the store, and the web pages.

May import: ``conversations``, ``routing``, ``recordings``, ``ivr``.
"""
