"""The two error types of the SIP stack, after h11.

``RemoteProtocolError`` is the peer's bad input: the caller answers it with the
carried status code (400 by default) when the message can be answered at all.
``LocalProtocolError`` is our own misuse of the API: a bug, never the peer's fault.
"""


class SipError(Exception):
    """Base class of every error raised by ``sip``."""


class RemoteProtocolError(SipError):
    """The peer sent something we cannot accept.

    Attributes:
        status_code: the SIP status to answer with (400 unless said otherwise).
        reason: a short reason phrase naming the problem, safe to put on the wire.
    """

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class LocalProtocolError(SipError):
    """We tried to do something the protocol does not allow (our bug)."""
