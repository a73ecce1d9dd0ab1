"""Who the client is behind the operator's proxies, and an in-process token bucket.

The service's limits use the database-backed bucket (``triage.cases.throttle.SharedTokenBucket``),
one limit for all workers; ``TokenBucketLimiter`` has the same ``retry_after`` and serves where one
process is all there is (tests, tools). ``client_address`` follows uvicorn's ``--forwarded-allow-ips``:
X-Forwarded-For counts only when the direct peer is a trusted proxy, and the client is then the
rightmost entry that is not itself a trusted proxy: every proxy appends the address it saw, so the
entries left of the last untrusted one are whatever the client chose to send.
"""

from __future__ import annotations

import ipaddress
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


class TrustedProxies:
    """The proxies named in ``forwarded_allow_ips``: addresses, networks, or "*" for any."""

    def __init__(self, spec: str) -> None:
        items = [part.strip() for part in spec.split(",") if part.strip()]
        self.any = "*" in items
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.names: set[str] = set()  # non-IP peers such as a unix socket path or "testclient"
        for item in items:
            if item == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.names.add(item)

    def __contains__(self, host: str) -> bool:
        if self.any:
            return True
        if host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def __bool__(self) -> bool:
        return self.any or bool(self.networks) or bool(self.names)


def client_address(peer: str | None, forwarded_for: list[str], trusted: TrustedProxies) -> str:
    """The client's address: the peer, unless it is a trusted proxy that forwarded the request.

    ``forwarded_for`` holds every X-Forwarded-For header in order (several are joined, as RFC 7230
    allows). Walking from the right, trusted proxies are skipped and the first other entry is the
    client; when every entry is trusted, the leftmost is.
    """
    host = peer or "unknown"
    if not trusted or host not in trusted:
        return host
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:100]
    return hops[0][:100] if hops else host
