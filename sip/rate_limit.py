"""Per-source flood protection, sans-IO with ``now``.

``SourceRateLimiter`` is a token bucket per source key (e.g. the host a request
came from): it caps the request rate one address can make us work at.
``FailureTracker`` blocks a source after repeated authentication failures,
so that guessing passwords from one address stops after a few tries.

Both forget the least recently seen source when full, so an attacker with many
addresses costs bounded memory; at worst a forgotten source starts afresh.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from sip.errors import LocalProtocolError


class _Bucket:
    __slots__ = ("tokens", "updated_at")

    def __init__(self, tokens: float, updated_at: float) -> None:
        self.tokens = tokens
        self.updated_at = updated_at


class SourceRateLimiter:
    """A token bucket per source key.

    Each source may send ``burst`` requests at once, then ``rate_per_s`` a second
    on average.

    Args:
        rate_per_s: the refill rate, in requests per second.
        burst: the bucket size, in requests.
        max_sources: how many sources to remember; the least recently seen one
            is forgotten to make room.
    """

    __slots__ = ("rate_per_s", "burst", "max_sources", "_buckets")

    def __init__(self, rate_per_s: float, burst: int, max_sources: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1 or max_sources < 1:
            raise LocalProtocolError("rate_per_s, burst and max_sources must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        """Take one token for ``key``; return False when its bucket is empty."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._buckets.popitem(last=False)
            self._buckets[key] = _Bucket(self.burst - 1.0, now)
            return True
        self._buckets.move_to_end(key)
        # A clock that steps back refills nothing rather than draining the bucket.
        elapsed_s = max(0.0, now - bucket.updated_at)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed_s * self.rate_per_s)
        bucket.updated_at = max(bucket.updated_at, now)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def sources_count(self) -> int:
        """How many sources are remembered now."""
        return len(self._buckets)


class _Failures:
    __slots__ = ("times", "blocked_until")

    def __init__(self, max_failures: int) -> None:
        self.times: deque[float] = deque(maxlen=max_failures)
        self.blocked_until: float | None = None


class FailureTracker:
    """Blocks a source after ``max_failures`` failures within ``window_s``.

    The block lasts ``block_s`` from the failure that triggered it. A success
    clears the failure count, but not a block in force: the caller should not
    verify a blocked source's credentials at all (answer 403 or drop instead).

    Args:
        max_failures: how many failures inside the window trigger a block.
        window_s: the sliding window the failures are counted in.
        block_s: how long a block lasts.
        max_sources: how many sources to remember (least recently seen dropped).
    """

    __slots__ = ("max_failures", "window_s", "block_s", "max_sources", "_sources")

    def __init__(
        self, max_failures: int, window_s: float, block_s: float, max_sources: int = 100_000
    ) -> None:
        if max_failures < 1 or window_s <= 0 or block_s <= 0 or max_sources < 1:
            raise LocalProtocolError(
                "max_failures, window_s, block_s and max_sources must be positive"
            )
        self.max_failures = max_failures
        self.window_s = window_s
        self.block_s = block_s
        self.max_sources = max_sources
        self._sources: OrderedDict[str, _Failures] = OrderedDict()

    def record_failure(self, key: str, now: float) -> bool:
        """Count a failed authentication from ``key``; return True if it is now blocked."""
        failures = self._sources.get(key)
        if failures is None:
            if len(self._sources) >= self.max_sources:
                self._sources.popitem(last=False)
            failures = self._sources[key] = _Failures(self.max_failures)
        else:
            self._sources.move_to_end(key)
        failures.times.append(now)
        # The deque keeps the last max_failures times: all of them inside the window
        # means max_failures failures within window_s.
        if len(failures.times) == self.max_failures and now - failures.times[0] < self.window_s:
            failures.blocked_until = now + self.block_s
            failures.times.clear()
        return self.is_blocked(key, now)

    def is_blocked(self, key: str, now: float) -> bool:
        """True while ``key`` is blocked."""
        failures = self._sources.get(key)
        if failures is None or failures.blocked_until is None:
            return False
        if now < failures.blocked_until:
            return True
        failures.blocked_until = None  # served its time; failures count afresh
        if not failures.times:
            del self._sources[key]
        return False

    def record_success(self, key: str) -> None:
        """Forget ``key``'s failures (a block in force stays)."""
        failures = self._sources.get(key)
        if failures is None:
            return
        failures.times.clear()
        if failures.blocked_until is None:
            del self._sources[key]

    def sources_count(self) -> int:
        """How many sources are remembered now."""
        return len(self._sources)
