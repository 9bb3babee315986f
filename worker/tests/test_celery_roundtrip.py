"""A message through the real Redis broker, run by a real worker, writing to real PostgreSQL."""

import time
import uuid

import pytest
from django.db import transaction

from worker.models import WorkerHeartbeat
from worker.tasks import ping


def _wait_for_heartbeat(token: str, timeout_s: float = 30) -> WorkerHeartbeat:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = WorkerHeartbeat.objects.filter(token=token).first()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no heartbeat {token} within {timeout_s}s")


@pytest.mark.postgres
@pytest.mark.redis
def test_round_trip_through_redis_and_worker_to_postgres(postgres, celery_worker):
    token = uuid.uuid4().hex
    ping.delay(token)
    beat = _wait_for_heartbeat(token)
    assert beat.hostname


@pytest.mark.postgres
@pytest.mark.redis
def test_enqueue_on_commit_sends_nothing_for_a_rolled_back_transaction(postgres, celery_worker):
    rolled_back, committed = uuid.uuid4().hex, uuid.uuid4().hex
    with pytest.raises(RuntimeError), transaction.atomic():
        ping.delay_on_commit(rolled_back)
        raise RuntimeError("roll back")
    with transaction.atomic():
        ping.delay_on_commit(committed)
    _wait_for_heartbeat(committed)
    assert not WorkerHeartbeat.objects.filter(token=rolled_back).exists()
