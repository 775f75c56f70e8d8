"""REGISTER handling and agent authentication (RFC 3261 §10.3, §22).

Puts together the sans-IO pieces: per-address rate limiting and failure
blocking (``rate_limit``), digest challenges and verification (``digest``) and
the binding store (``registrar``). It returns the response to send, or ``None``
when a flooding source is dropped without an answer: a scanner learns nothing and
costs us nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sip.digest import DigestServer, parse_credentials
from sip.errors import RemoteProtocolError
from sip.message import Request, Response, make_response
from sip.peer import Peer
from sip.rate_limit import FailureTracker, SourceRateLimiter
from sip.registrar import ContactUpdate, IntervalTooBrief, Registrar, parse_delta_seconds
from sip.ua_events import RegistrationChanged

log = logging.getLogger("hotline.sip.register")


@dataclass(slots=True, frozen=True)
class Credential:
    """An agent's SIP credentials."""

    username: str
    password: str


class RegistrationLimits(Protocol):
    """The knobs of ``hotline.config.RegistrationConfig`` this module reads."""

    min_expires_s: int
    max_expires_s: int
    default_expires_s: int
    requests_per_s: float
    burst: int
    max_auth_failures: int
    failure_window_s: float
    block_s: float


class RegistrationService:
    """Answers REGISTER and challenges requests that claim to be from an agent."""

    def __init__(
        self,
        realm: str,
        credentials: dict[str, Credential],
        secret: bytes,
        domain: str,
        limits: RegistrationLimits,
        digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    ) -> None:
        self.realm = realm
        # RFC 8760 §2.4: one challenge per algorithm, most preferred first.
        self.digest_algorithms = digest_algorithms
        self.domain = domain.lower()
        self.credentials = credentials
        self.digest = DigestServer(realm, secret)
        self.registrar = Registrar(
            min_expires_s=limits.min_expires_s,
            max_expires_s=limits.max_expires_s,
            default_expires_s=limits.default_expires_s,
        )
        self.rate_limiter = SourceRateLimiter(limits.requests_per_s, limits.burst)
        self.failures = FailureTracker(
            limits.max_auth_failures, limits.failure_window_s, limits.block_s
        )
        self.stats = {"registered": 0, "challenged": 0, "auth_failures": 0, "dropped": 0}

    # ---------------------------------------------------------------- REGISTER

    def handle(
        self, request: Request, source: Peer, now: float
    ) -> tuple[Response | None, list[RegistrationChanged]]:
        """Answer one REGISTER; ``None`` means drop it silently (flooding source)."""
        if not self._admit(source, now):
            return None, []
        aor_uri = request.to.uri
        username = aor_uri.user or ""
        refusal = self._authenticate(request, source, now, username, "Authorization")
        if refusal is not None:
            return refusal, []
        aor = f"sip:{username}@{self.domain}"
        expires_header = request.headers.get("Expires")
        try:
            bindings = self.registrar.update(
                aor,
                [ContactUpdate.parse(value) for value in request.headers.get_all("Contact")],
                call_id=request.call_id,
                cseq=request.cseq.number,
                now=now,
                source=(source.transport, source.host, source.port),
                expires_header_s=(
                    parse_delta_seconds(expires_header) if expires_header is not None else None
                ),
            )
        except IntervalTooBrief as exc:  # other RemoteProtocolErrors reach the UA core
            # §10.3 step 7: 423 with the shortest interval we accept.
            return make_response(
                request, 423, to_tag="reg", headers=[("Min-Expires", str(exc.min_expires_s))]
            ), []
        contacts = [binding.contact_value(now) for binding in bindings]
        self.stats["registered"] += 1
        log.info("REGISTER %s from %s: %d contact(s)", aor, source, len(bindings))
        response = make_response(
            request, 200, to_tag="reg", headers=[("Contact", c) for c in contacts]
        )
        return response, [RegistrationChanged(aor, [b.contact_uri for b in bindings])]

    # ---------------------------------------------------- other agent requests

    def check_agent_request(self, request: Request, source: Peer, now: float) -> Response | None:
        """Challenge (407) a request whose From claims one of our agents (§22.3).

        Callers from trunks and phones are not agents and pass unchallenged.
        """
        sender = request.from_.uri
        if sender.user not in self.credentials or sender.host.lower() != self.domain:
            return None
        if not self._admit(source, now):
            return make_response(request, 403, "Blocked", to_tag="auth")
        return self._authenticate(request, source, now, sender.user or "", "Proxy-Authorization")

    # ---------------------------------------------------------------- helpers

    def _admit(self, source: Peer, now: float) -> bool:
        if self.failures.is_blocked(source.host, now) or not self.rate_limiter.allow(
            source.host, now
        ):
            self.stats["dropped"] += 1
            return False
        return True

    def _authenticate(
        self, request: Request, source: Peer, now: float, username: str, header: str
    ) -> Response | None:
        status = 401 if header == "Authorization" else 407
        value = request.headers.get(header) or request.headers.get("Authorization")
        if value is None:
            return self._challenge(request, status, now, stale=False)
        try:
            credentials = parse_credentials(value)
        except RemoteProtocolError as exc:
            return make_response(request, 400, exc.reason, to_tag="auth")
        if credentials.username != username:
            # The credentials must be the agent's own, not another account's (§22.4).
            return self._fail(request, source, now, "Credentials Do Not Match")
        credential = self.credentials.get(username)
        result = self.digest.verify(
            credentials,
            request.method,
            lambda name: (
                credential.password if credential and name == credential.username else None
            ),
            now,
            request_uri=str(request.uri),
        )
        if result.ok:
            self.failures.record_success(source.host)
            return None
        if result.stale:
            return self._challenge(request, status, now, stale=True)
        return self._fail(request, source, now, "Authentication Failed")

    def _challenge(self, request: Request, status: int, now: float, *, stale: bool) -> Response:
        self.stats["challenged"] += 1
        header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        values = self.digest.challenge(now, stale=stale, algorithms=self.digest_algorithms)
        return make_response(request, status, to_tag="auth", headers=[(header, v) for v in values])

    def _fail(self, request: Request, source: Peer, now: float, reason: str) -> Response:
        self.stats["auth_failures"] += 1
        self.failures.record_failure(source.host, now)
        log.info(
            "%s %s from %s: %s", request.headers.get("Call-ID"), request.method, source, reason
        )
        return make_response(request, 403, reason, to_tag="auth")
