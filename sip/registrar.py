"""The registrar's binding store: RFC 3261 §10.3 steps 5-8, sans-IO with ``now``.

The caller authenticates the REGISTER (``sip.digest``), derives the AOR from
its To header (``canonical_aor``), turns each Contact value into a
``ContactUpdate`` and calls ``Registrar.update``. The returned bindings are
what the 200 OK lists (§10.3 step 8, ``Binding.contact_value``).
``IntervalTooBrief`` becomes a 423 with ``Min-Expires``; any other
``RemoteProtocolError`` becomes its status code.

Contact matching follows §19.1.4 with one simplification that keeps it a
dictionary key: scheme, user, password, host (case-insensitive), port and the
``user``, ``ttl``, ``method`` and ``maddr`` parameters must match, and every
other URI parameter (``transport``, ``ob``, ``rinstance``...) is ignored. A
contact carrying both ``+sip.instance`` and ``reg-id`` is matched by those two
instead (RFC 5626 §6), so a phone that comes back from another address
replaces its old flow rather than adding one.
"""

from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass
from urllib.parse import unquote as percent_decode

from sip.address import NameAddress
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.grammar import quote, unquote
from sip.uri import SipUri

# RFC 3261 §20.19: a delta-seconds above 2**32-1 is taken as 2**32-1.
_MAX_DELTA_S = 2**32 - 1
# RFC 3261 §10.3 step 7: 423 only for an interval "smaller than one hour".
_BRIEF_LIMIT_S = 3600
# qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
# §19.1.4: these parameters must match when either URI has them.
_COMPARED_PARAMS = ("user", "ttl", "method", "maddr")

WILDCARD = "*"

_UriKey = tuple[str, str | None, str | None, str, int | None, tuple[str | None, ...]]
_BindingKey = tuple[str, ...] | _UriKey


class IntervalTooBrief(RemoteProtocolError):
    """§10.3 step 7: answer 423 with ``Min-Expires: <min_expires_s>``."""

    def __init__(self, requested_s: int, min_expires_s: int) -> None:
        super().__init__(f"expiry {requested_s}s is below the minimum {min_expires_s}s", 423)
        self.min_expires_s = min_expires_s


def canonical_aor(uri: str) -> str:
    """Return the AOR of a To-header URI in canonical form (§10.3 step 5).

    "all URI parameters MUST be removed (including the user-param), and any escaped
    characters MUST be converted to their unescaped form": ``sip:user@host[:port]``
    with the scheme and host lower-cased.

    Raises:
        RemoteProtocolError: not a sip/sips URI with a user part (404, §10.3 step 3).
    """
    parsed = SipUri.parse(uri)
    if parsed.scheme not in ("sip", "sips") or not parsed.user:
        raise RemoteProtocolError(f"not an address-of-record: {uri[:60]!r}", 404)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}:{percent_decode(parsed.user)}@{parsed.host}{port}"


def parse_delta_seconds(text: str, what: str = "Expires header") -> int:
    """Read an ``Expires`` value or ``expires`` parameter.

    delta-seconds = 1*DIGIT ; above 2**32-1 taken as 2**32-1 (§20.19)

    Raises:
        RemoteProtocolError: not a string of digits (400), naming ``what``.
    """
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise RemoteProtocolError(f"bad {what} {text[:20]!r}")
    return min(int(text), _MAX_DELTA_S)


@dataclass(slots=True, frozen=True)
class ContactUpdate:
    """One Contact of a REGISTER, as the registrar needs it.

    Attributes:
        contact_uri: the URI inside the Contact (no ``<>``), or ``"*"``.
        expires_s: its ``expires`` parameter, None when absent.
        q: its ``q`` parameter (§20.10), 1.0 when absent.
        instance_id: its ``+sip.instance`` (RFC 5626), unquoted, e.g. ``<urn:uuid:...>``.
        reg_id: its ``reg-id`` (RFC 5626).
    """

    contact_uri: str
    expires_s: int | None = None
    q: float = 1.0
    instance_id: str | None = None
    reg_id: int | None = None

    @classmethod
    def wildcard(cls) -> ContactUpdate:
        """``Contact: *``, which with ``Expires: 0`` removes every binding (§10.2.2)."""
        return cls(WILDCARD)

    @property
    def is_wildcard(self) -> bool:
        """True for ``Contact: *`` (remove every binding, §10.2.2)."""
        return self.contact_uri == WILDCARD

    @classmethod
    def parse(cls, value: str) -> ContactUpdate:
        """Read one Contact header value (one element of the list).

        contact-params = ( name-addr / addr-spec ) *( SEMI contact-params )
        c-p-q          = "q" EQUAL qvalue
        c-p-expires    = "expires" EQUAL delta-seconds

        Raises:
            RemoteProtocolError: a bad address, ``expires``, ``q`` or ``reg-id``.
        """
        if value.strip() == WILDCARD:
            return cls.wildcard()
        address = NameAddress.parse(value)
        params = address.params
        expires_s = None
        if "expires" in params:
            expires_s = parse_delta_seconds(params["expires"] or "", "expires parameter")
        q = 1.0
        if "q" in params:
            q_text = params["q"] or ""
            if not _QVALUE_RE.fullmatch(q_text):
                raise RemoteProtocolError(f"bad q parameter {q_text[:20]!r}")
            q = float(q_text)
        instance_id = params.get("+sip.instance")
        if instance_id is not None and instance_id.startswith('"'):
            instance_id = unquote(instance_id)
        reg_id = None
        if "reg-id" in params:
            reg_text = params["reg-id"] or ""
            # reg-id = "reg-id" EQUAL 1*DIGIT ; 1 to (2^31 - 1)  (RFC 5626 §13)
            if not reg_text.isdigit() or not reg_text.isascii() or not 0 < int(reg_text) < 2**31:
                raise RemoteProtocolError(f"bad reg-id {reg_text[:20]!r}")
            reg_id = int(reg_text)
        return cls(str(address.uri), expires_s, q, instance_id or None, reg_id)


@dataclass(slots=True)
class Binding:
    """One contact registered for an AOR.

    Attributes:
        aor: the canonical address-of-record.
        contact_uri: where to send requests for the AOR (a URI string, no ``<>``).
        expires_at: when the binding lapses, on the registrar's clock.
        call_id: the Call-ID of the REGISTER that last wrote it (§10.3 step 7).
        cseq: that REGISTER's CSeq number.
        q: the preference among the AOR's contacts (§20.10), 0 to 1.
        source: (transport, host, port) the REGISTER really came from, which is how
            to reach an agent behind NAT (RFC 3581) when the Contact is private.
        updated_at: when the binding was last written (the tie-break in lookups).
        instance_id: RFC 5626 ``+sip.instance``, if sent.
        reg_id: RFC 5626 ``reg-id``, if sent.
    """

    aor: str
    contact_uri: str
    expires_at: float
    call_id: str
    cseq: int
    q: float
    source: tuple[str, str, int]
    updated_at: float
    instance_id: str | None = None
    reg_id: int | None = None

    def expires_in_s(self, now: float) -> int:
        """Whole seconds left, as the ``expires`` parameter of a 200 OK puts it."""
        return max(0, int(self.expires_at - now + 0.5))

    def contact_value(self, now: float) -> str:
        """The Contact value a 200 OK lists for this binding (§10.3 step 8)."""
        value = f"<{self.contact_uri}>;expires={self.expires_in_s(now)}"
        if self.q != 1.0:
            value += f";q={self.q:g}"
        if self.instance_id is not None:
            value += f";+sip.instance={quote(self.instance_id)}"
        if self.reg_id is not None:
            value += f";reg-id={self.reg_id}"
        return value


def _binding_key(update: ContactUpdate) -> _BindingKey:
    if update.instance_id is not None and update.reg_id is not None:
        return ("outbound", update.instance_id, str(update.reg_id))  # RFC 5626 §6
    uri = SipUri.parse(update.contact_uri)
    if uri.scheme == "tel":
        raise RemoteProtocolError(f"Contact is not a sip or sips URI: {update.contact_uri[:60]!r}")
    compared = tuple(
        (uri.params[name] or "").lower() if name in uri.params else None
        for name in _COMPARED_PARAMS
    )
    # §19.1.4: scheme and host compare case-insensitively (SipUri.parse lowers the
    # host), user and password case-sensitively, after unescaping.
    user = percent_decode(uri.user) if uri.user is not None else None
    password = percent_decode(uri.password) if uri.password is not None else None
    return (uri.scheme, user, password, uri.host, uri.port, compared)


def _by_preference(bindings: list[Binding]) -> list[Binding]:
    # Highest q first; among equals, the most recently written first.
    return sorted(bindings, key=lambda binding: (-binding.q, -binding.updated_at))


class Registrar:
    """The location service's bindings, per AOR (RFC 3261 §10.3).

    Args:
        min_expires_s: shorter requested intervals get 423 (§10.3 step 7).
        max_expires_s: longer ones are shortened to this.
        default_expires_s: used when neither the Contact nor the request says.
        max_contacts_per_aor: the bound on one AOR's bindings. A REGISTER that
            would go over it evicts the AOR's soonest-expiring bindings that it
            does not itself write (a softphone restarted on a new port should
            not lock its user out until the old binding lapses); one that
            alone lists more contacts than this gets 403.
    """

    __slots__ = (
        "min_expires_s", "max_expires_s", "default_expires_s", "max_contacts_per_aor",
        "_bindings", "_deadlines", "_sequence", "_compact_above",
    )

    def __init__(
        self,
        min_expires_s: int = 60,
        max_expires_s: int = 3600,
        default_expires_s: int = 3600,
        max_contacts_per_aor: int = 10,
    ) -> None:
        if not 0 < min_expires_s <= default_expires_s <= max_expires_s:
            raise LocalProtocolError("need 0 < min_expires_s <= default_expires_s <= max_expires_s")
        if max_contacts_per_aor < 1:
            raise LocalProtocolError("max_contacts_per_aor must be at least 1")
        self.min_expires_s = min_expires_s
        self.max_expires_s = max_expires_s
        self.default_expires_s = default_expires_s
        self.max_contacts_per_aor = max_contacts_per_aor
        self._bindings: dict[str, dict[_BindingKey, Binding]] = {}
        # (expires_at, sequence, aor, key) of every write; entries whose binding has
        # since been refreshed or removed are skipped when they surface (lazy
        # deletion). The sequence breaks ties, so keys are never compared.
        self._deadlines: list[tuple[float, int, str, _BindingKey]] = []
        self._sequence = itertools.count()
        self._compact_above = 64

    # --------------------------------------------------------------- update

    def update(
        self,
        aor: str,
        contacts: list[ContactUpdate],
        call_id: str,
        cseq: int,
        now: float,
        source: tuple[str, str, int],
        expires_header_s: int | None = None,
    ) -> list[Binding]:
        """Apply a REGISTER (§10.3 steps 6-7) and return the AOR's bindings (step 8).

        All or nothing: when any contact is refused, no binding changes.

        Args:
            aor: the canonical AOR (``canonical_aor`` of the To URI).
            contacts: the request's Contacts; empty for a query.
            call_id: the request's Call-ID.
            cseq: the request's CSeq number.
            now: the clock.
            source: (transport, host, port) the request came from.
            expires_header_s: the request's Expires header, None when absent.

        Returns:
            The AOR's current bindings, highest q first, most recent first on ties.

        Raises:
            IntervalTooBrief: a requested interval is below ``min_expires_s`` (423).
            RemoteProtocolError: ``*`` misused, an out-of-order CSeq for a
                Call-ID, a bad Contact URI (400), or too many contacts (403).
        """
        self._purge_aor(aor, now)
        if not contacts:
            return self.lookup(aor, now)  # §10.3 step 6: no Contact, skip to step 8
        if any(update.is_wildcard for update in contacts):
            self._remove_all(aor, contacts, call_id, cseq, expires_header_s)
            return []
        current = self._bindings.get(aor, {})
        writes: dict[_BindingKey, tuple[ContactUpdate, int]] = {}
        for update in contacts:
            key = _binding_key(update)
            expires_s = self._chosen_expiry(update, expires_header_s)
            existing = current.get(key)
            # §10.3 step 7: same Call-ID needs a higher CSeq, "If not, the update MUST be
            # aborted and the request fails"; a different Call-ID replaces the binding.
            # The RFC names no status code: 400, the request itself is out of order.
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                raise RemoteProtocolError(
                    f"out-of-order REGISTER: CSeq {cseq} is not above {existing.cseq}"
                )
            writes[key] = (update, expires_s)  # a contact listed twice: the last one wins
        kept = sum(1 for key in current if key not in writes)
        written = sum(1 for _, expires_s in writes.values() if expires_s > 0)
        if written > self.max_contacts_per_aor:
            raise RemoteProtocolError(
                f"too many contacts ({written}, at most {self.max_contacts_per_aor})", 403
            )
        # Every check passed: commit (§10.3 step 7 wants all updates or none).
        bindings = self._bindings.setdefault(aor, {})
        for key, (update, expires_s) in writes.items():
            if expires_s == 0:
                bindings.pop(key, None)
                continue
            binding = Binding(
                aor, update.contact_uri, now + expires_s, call_id, cseq, update.q,
                source, now, update.instance_id, update.reg_id,
            )
            bindings[key] = binding
            self._push_deadline(binding.expires_at, aor, key)
        overflow = kept + written - self.max_contacts_per_aor
        if overflow > 0:
            others = [key for key in bindings if key not in writes]
            others.sort(key=lambda key: bindings[key].expires_at)
            for key in others[:overflow]:
                del bindings[key]
        if not bindings:
            del self._bindings[aor]
        self._compact()
        return _by_preference(list(bindings.values()))

    def _chosen_expiry(self, update: ContactUpdate, expires_header_s: int | None) -> int:
        # §10.3 step 7: the Contact's expires parameter, else the Expires header, else
        # the local default.
        if update.expires_s is not None:
            requested = update.expires_s
        elif expires_header_s is not None:
            requested = expires_header_s
        else:
            requested = self.default_expires_s
        if requested < 0:
            raise RemoteProtocolError(f"negative expiry {requested}")
        requested = min(requested, _MAX_DELTA_S)
        # "If and only if the requested expiration interval is greater than zero AND
        # smaller than one hour AND less than a registrar-configured minimum, the
        # registrar MAY reject the registration with a response of 423".
        if 0 < requested < _BRIEF_LIMIT_S and requested < self.min_expires_s:
            raise IntervalTooBrief(requested, self.min_expires_s)
        # "The registrar MAY shorten the expiration interval."
        return min(requested, self.max_expires_s)

    def _remove_all(
        self,
        aor: str,
        contacts: list[ContactUpdate],
        call_id: str,
        cseq: int,
        expires_header_s: int | None,
    ) -> None:
        # §10.3 step 6: "*" must stand alone, without parameters, with Expires: 0;
        # "If the request has additional Contact fields or an expiration time other
        # than zero, the request is invalid, and the server MUST return a 400".
        if len(contacts) != 1:
            raise RemoteProtocolError("Contact '*' must be the only Contact")
        if contacts[0].expires_s is not None:
            raise RemoteProtocolError("Contact '*' takes no expires parameter")
        if expires_header_s != 0:
            raise RemoteProtocolError("Contact '*' needs 'Expires: 0'")
        bindings = self._bindings.get(aor, {})
        # "checks whether the Call-ID agrees with the value stored for each binding. If
        # not, it MUST remove the binding. If it does agree, it MUST remove the binding
        # only if the CSeq in the request is higher ... Otherwise, the update MUST be
        # aborted and the request fails."
        for binding in bindings.values():
            if binding.call_id == call_id and cseq <= binding.cseq:
                raise RemoteProtocolError(
                    f"out-of-order REGISTER: CSeq {cseq} is not above {binding.cseq}"
                )
        self._bindings.pop(aor, None)

    # --------------------------------------------------------------- lookup

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Return the live bindings of ``aor``, highest q first, most recent on ties."""
        self._purge_aor(aor, now)
        return _by_preference(list(self._bindings.get(aor, {}).values()))

    def bindings_count(self) -> int:
        """How many bindings are stored (lapsed ones count until ``expire`` runs)."""
        return sum(len(bindings) for bindings in self._bindings.values())

    # -------------------------------------------------------------- expiry

    def expire(self, now: float) -> list[Binding]:
        """Remove every binding that has lapsed by ``now`` and return them."""
        removed: list[Binding] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            expires_at, _, aor, key = heapq.heappop(self._deadlines)
            bindings = self._bindings.get(aor)
            binding = bindings.get(key) if bindings else None
            if bindings is None or binding is None or binding.expires_at != expires_at:
                continue  # refreshed or removed since this deadline was pushed
            del bindings[key]
            if not bindings:
                del self._bindings[aor]
            removed.append(binding)
        return removed

    def next_deadline(self) -> float | None:
        """When the next binding lapses (call ``expire`` then), or None."""
        while self._deadlines:
            expires_at, _, aor, key = self._deadlines[0]
            binding = self._bindings.get(aor, {}).get(key)
            if binding is not None and binding.expires_at == expires_at:
                return expires_at
            heapq.heappop(self._deadlines)
        return None

    def _purge_aor(self, aor: str, now: float) -> None:
        bindings = self._bindings.get(aor)
        if bindings is None:
            return
        for key in [key for key, binding in bindings.items() if binding.expires_at <= now]:
            del bindings[key]
        if not bindings:
            del self._bindings[aor]

    def _push_deadline(self, expires_at: float, aor: str, key: _BindingKey) -> None:
        heapq.heappush(self._deadlines, (expires_at, next(self._sequence), aor, key))

    def _compact(self) -> None:
        # Each refresh leaves its old deadline behind. Rebuild the heap from the live
        # bindings when it has doubled since the last rebuild, so memory follows the
        # binding count and the rebuilds cost O(1) per write on average.
        if len(self._deadlines) <= self._compact_above:
            return
        self._deadlines = [
            (binding.expires_at, next(self._sequence), aor, key)
            for aor, bindings in self._bindings.items()
            for key, binding in bindings.items()
        ]
        heapq.heapify(self._deadlines)
        self._compact_above = 2 * len(self._deadlines) + 64
