"""Per-user API rate limit from the user's plan, counted in the cache (Redis in production/CI).

DRF's throttle reads the request history, decides and writes it back: two requests at once both
read the same history and both pass (20 parallel clients got 200 of 200 requests through a
60/min limit). So each user's read-decide-write runs under a lock shared by every web process:
a Redis lock with the Redis cache, an flock on a file beside the file cache (the embedded
default, one machine), a process lock with the in-memory cache."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import redis
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache
from redis import RedisError
from rest_framework.throttling import SimpleRateThrottle

from quotas import services

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 5.0  # a lock outlives no request's bookkeeping; a crashed holder frees it
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@functools.lru_cache(maxsize=4)
def _redis_client(location: str) -> redis.Redis:
    return redis.Redis.from_url(location, socket_connect_timeout=2, socket_timeout=2)


@contextlib.contextmanager
def user_lock(cache, key: str) -> Iterator[None]:
    """Exclusive access to one user's request history across every web process."""
    if isinstance(cache, RedisCache):
        location = cache._servers[0]  # the LOCATION the cache itself connects to
        lock_name = cache.make_key(f"{key}:lock")
        with _redis_client(location).lock(
            lock_name, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S
        ):
            yield
    elif isinstance(cache, FileBasedCache):
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        path = Path(cache._dir) / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:  # locmem and the like: one process's memory, so one process's lock
        with _process_locks_guard:
            lock = _process_locks.setdefault(key, threading.Lock())
        with lock:
            yield


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
            with user_lock(self.cache, self.get_cache_key(request, view)):
                return super().allow_request(request, view)
        except RedisError:  # LockError (a lock not got in LOCK_TIMEOUT_S) is one too
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
