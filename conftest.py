"""Shared fixtures: the real services (PostgreSQL, Redis) and a real Celery worker.

A test that needs a service fails in CI (CI=true) when the service is unreachable, and is skipped
only on a developer's machine that lacks it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connection

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} not available on this machine")


@pytest.fixture
def api(user):
    """A DRF test client authenticated as the test's `user` (each app's conftest defines it)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploaded files go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def postgres(db) -> None:
    """The test runs against the real PostgreSQL (DATABASE_URL=postgres://...)."""
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_broker_url() -> str:
    url = settings.CELERY_BROKER_URL
    require(
        url.startswith("redis://") and redis_reachable(url),
        "Redis broker (CELERY_BROKER_URL=redis://...)",
    )
    return url


@pytest.fixture
def celery_worker(redis_broker_url: str, transactional_db) -> Iterator[object]:
    """A real Celery worker (celery's testing worker, in a thread) consuming all queues from
    the real Redis broker. Tests using it must use committed data (transactional_db)."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.control.purge()  # a stale message from an earlier run must not leak into this test
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["default", "inference", "webhooks"],
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture
def inference_queue(redis_broker_url: str):
    """Reads (without consuming) the task messages waiting on the real `inference` queue."""
    import base64
    import json

    import redis

    client = redis.Redis.from_url(redis_broker_url)
    client.delete("inference")

    def messages() -> list[dict]:
        found = []
        for raw in client.lrange("inference", 0, -1):
            envelope = json.loads(raw)
            body = json.loads(base64.b64decode(envelope["body"]))
            found.append({"task": envelope["headers"]["task"], "args": body[0]})
        return found

    yield messages
    client.delete("inference")


@pytest.fixture(autouse=True)
def fresh_rate_limit_counters(settings) -> None:
    """Every test counts API requests from zero: user ids restart in each test database, so a
    counter an earlier test left in the cache (for up to a minute) would throttle this one."""
    import uuid

    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}
    }


@pytest.fixture
def app_on_broker() -> Iterator[Callable[[str | None], None]]:
    """Points this process's Celery producer (what `enqueue_analysis` sends with) at another
    broker for the test, then back."""
    from config.celery import app

    original = app.conf.get("broker_write_url")

    def switch(url: str | None) -> None:
        # The write URL, because a CELERY_BROKER_URL environment variable outranks broker_url.
        app.conf.broker_write_url = url
        # The connection and producer pools are built once, from the broker URL at first use.
        app._pool = None
        app.amqp._producer_pool = None

    yield switch
    switch(original)
