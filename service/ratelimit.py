"""A per-client token bucket for the public intake: small, in-process, no extra service.

Each client may send ``burst`` requests at once, then one more every ``60 / per_minute`` seconds.
With N workers each keeps its own buckets, so the effective limit is up to N times higher; put a
shared limiter (reverse proxy) in front when that matters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucketLimiter:
    def __init__(
        self, *, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go ahead (a token is spent), else the seconds to wait for one."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._prune(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def retry_after(self, client: str) -> int:
        """``take`` rounded up to whole seconds, as the Retry-After header wants."""
        wait = self.take(client)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def _prune(self, now: float) -> None:
        """Forget clients whose bucket has refilled: they are indistinguishable from new ones."""
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
