"""SIP signalling, RFC 3261 core, as a sans-IO stack.

The chain is: transport bytes -> ``parser`` (messages) -> ``transaction_*``
(RFC 3261 §17 state machines, fed a clock) -> ``dialog`` and the call legs of
``user_agent`` (UAS for inbound calls, UAC for calls to agents: the two legs of a
B2BUA) -> the application. ``sdp`` and ``offer_answer`` negotiate media,
``digest`` and ``registrar`` admit agents. Only the ``transport_*`` modules touch
asyncio and sockets; everything else is plain objects fed bytes and ``now``.

May import: the standard library only. Nothing else of ours.
"""
