"""Per-user API rate limit from the plan, counted in the real Redis cache."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.api_keys import create_api_key
from quotas import services
from quotas.models import UserQuota
from quotas.throttling import PlanRateThrottle

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_cache(redis_broker_url) -> RedisCache:
    """The default cache is Redis (from CELERY_BROKER_URL, as in CI and production)."""
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    return cache


def _key_client(user) -> APIClient:
    _, plain = create_api_key(user, "test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


@pytest.mark.django_db
def test_requests_over_the_plans_rate_are_429_with_retry_after(redis_cache, make_user, make_plan):
    plan = make_plan("Three rpm", requests_per_minute=3)
    user, other = make_user(plan), make_user(plan)
    client = _key_client(user)
    for _ in range(3):
        assert client.get(reverse("api-usage")).status_code == 200
    response = client.get(reverse("api-usage"))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # The counter lives in Redis, keyed by the user...
    key = PlanRateThrottle.cache_format % {"scope": "plan", "ident": user.pk}
    assert len(redis_cache.get(key)) == 3
    # ...so another key of the same user shares the budget, and another user has their own.
    assert _key_client(user).get(reverse("api-analyses")).status_code == 429
    assert _key_client(other).get(reverse("api-usage")).status_code == 200


@pytest.mark.django_db
def test_a_new_rate_applies_at_once_and_keeps_retry_after(redis_cache, make_user, make_plan):
    user = make_user(make_plan("Two rpm", requests_per_minute=2))
    client = _key_client(user)
    for _ in range(2):
        assert client.get(reverse("api-usage")).status_code == 200
    assert client.get(reverse("api-usage")).status_code == 429
    UserQuota.objects.filter(user=user).update(requests_per_minute=4)  # admin override
    assert services.requests_per_minute(user) == 4
    assert client.get(reverse("api-usage")).status_code == 200
    # Lowered below the recent history: still refused, still told when to come back.
    UserQuota.objects.filter(user=user).update(requests_per_minute=1)
    response = client.get(reverse("api-usage"))
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.django_db
def test_an_unreachable_cache_does_not_take_the_api_down(settings, make_user, make_plan):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    client = _key_client(make_user(make_plan("One rpm", requests_per_minute=1)))
    assert [client.get(reverse("api-usage")).status_code for _ in range(2)] == [200, 200]


def _parallel_allowed(user, clients: int = 20, each: int = 10) -> int:
    """`clients` threads each asking `each` times at once, as parallel API clients would: how
    many requests the throttle let through."""
    import threading
    from types import SimpleNamespace

    from django.db import connection

    start = threading.Barrier(clients)
    allowed: list[bool] = []

    def client() -> None:
        try:
            start.wait()
            for _ in range(each):
                allowed.append(PlanRateThrottle().allow_request(SimpleNamespace(user=user), None))
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(allowed) == clients * each
    return sum(allowed)


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_under_20_parallel_clients(redis_cache, make_user, make_plan):
    user = make_user(make_plan("Sixty rpm", requests_per_minute=60))
    assert _parallel_allowed(user) == 60


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_in_parallel_on_the_embedded_file_cache(
    settings, tmp_path, make_user, make_plan
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    user = make_user(make_plan("Sixty rpm", requests_per_minute=60))
    assert _parallel_allowed(user) == 60
