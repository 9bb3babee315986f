"""Per-user API rate limit from the user's plan, counted in the cache (Redis in production/CI)."""

from __future__ import annotations

import logging
import math

from django.core.cache import caches
from redis import RedisError
from rest_framework.throttling import SimpleRateThrottle

from quotas import services

log = logging.getLogger(__name__)


class PlanRateThrottle(SimpleRateThrottle):
    """`requests_per_minute` of the user's plan (or override), keyed by user id: all of a
    user's API keys and their browser session share one budget, so extra keys buy nothing.
    Anonymous requests are not counted here (the API refuses them with 401 anyway)."""

    scope = "plan"
    cache_alias = "default"

    def __init__(self) -> None:
        # The rate depends on the user, so it is set per request in allow_request.
        self.cache = caches[self.cache_alias]

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}

    def allow_request(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return True
        self.num_requests = services.requests_per_minute(request.user)
        self.duration = 60
        self.rate = f"{self.num_requests}/min"
        try:
            return super().allow_request(request, view)
        except RedisError:
            # A rate limit protects the service; an unreachable cache must not take it down.
            log.warning("rate limit cache unreachable; request allowed", exc_info=True)
            return True

    def wait(self) -> float:
        """Seconds until one more request fits in the window. Exact for a sliding window, and
        never None (DRF's estimate is None when a plan was lowered below the recent history,
        which would drop the Retry-After header)."""
        if self.num_requests == 0 or len(self.history) < self.num_requests:
            return float(self.duration if self.num_requests == 0 else 0)
        # history is newest first: the request at index num_requests-1 has to leave the window.
        leaves_at = self.history[self.num_requests - 1] + self.duration
        return max(1.0, math.ceil(leaves_at - self.now))
