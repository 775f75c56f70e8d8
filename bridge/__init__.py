"""The aiohttp bridge: REST and WebSocket API over the conversation store, and the pages.

``app.create_app`` builds the application: the REST API described by the
OpenAPI document in ``openapi`` (each operation names its handler, its access
rule and its schemas, so routing, authorization and input validation all
follow that one document), ``/metrics``, the customer's chat widget
(``/chat`` + ``/ws/chat``), the agent page (``/agent`` + ``/ws/agent``) and
the QA page (``/qa``: search transcripts and chats, play a recording from the
matched word, over ``api_search`` and ``api_recordings``).
The server feeds live figures through the ``live.Live`` protocol and pushes
call events and screen pops to agents through ``hub.Hub``.

Request path: ``errors`` middleware (JSON errors, never a bare 500) ->
``api`` middleware (principal from a bearer token or the session cookie,
CSRF, role/scope check, body and query validation) -> the handler in an
``api_*`` module -> ``conversations`` store.

May import: aiohttp, argon2, itsdangerous, ``conversations`` and the standard
library. Nothing else of ours.
"""
