"""Request rates per client address (before authentication) and per API key (after it), on
the limits library: a sliding-window counter per address or key, kept in this process
(memory://) or in Redis (redis://...), where every service process of the site shares it.

A store that cannot be reached fails open for the rate (logged once a minute): the failed-key
lockout, kept in the database (store.auth_failures), still holds.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from digital_contrast.config import Settings

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.address_limit: RateLimitItem = parse(settings.rate_limit_address)
        self.key_limit: RateLimitItem = parse(settings.rate_limit_key)
        options = {}
        if settings.rate_limit_storage.startswith(("redis://", "rediss://")):
            # One namespace per database: the processes of one installation share counts,
            # another installation on the same Redis never sees them.
            options["key_prefix"] = f"dc-{settings.database_identity}"
        self._limiter = SlidingWindowCounterRateLimiter(
            storage_from_string(settings.rate_limit_storage, **options))
        self._warned_at = 0.0

    def address_wait(self, address: str) -> int | None:
        """None when the address may go on, else the seconds to wait."""
        return self._wait(self.address_limit, "address", address)

    def key_wait(self, key_id: int) -> int | None:
        return self._wait(self.key_limit, "key", str(key_id))

    def _wait(self, item: RateLimitItem, *identifiers: str) -> int | None:
        try:
            if self._limiter.hit(item, *identifiers):
                return None
            reset = self._limiter.get_window_stats(item, *identifiers).reset_time
        except Exception as exc:  # the store is down: never refuse a request over it
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("RATE_LIMIT_STORE_UNAVAILABLE: request rates are not limited (%s)",
                            type(exc).__name__)
            return None
        return max(1, math.ceil(reset - time.time()))
