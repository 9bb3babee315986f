"""Concurrent submissions on the real PostgreSQL never exceed the monthly allowance."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from quotas import services
from quotas.models import Plan, UsageRecord
from quotas.tests.helpers import post_clip, submit
from videos.models import AnalysisJob, Video

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

THREADS = 20


@pytest.mark.django_db(transaction=True)
def test_20_concurrent_submissions_with_5_left(
    postgres, inference_queue, media_root, clip, make_user, monkeypatch
):
    plan = Plan.objects.create(
        name="Seven",
        monthly_analyses=7,
        monthly_video_seconds=3600,
        max_file_bytes=10 * 1024 * 1024,
        max_duration_s=60,
        requests_per_minute=1000,
    )
    user = make_user(plan)
    # 2 of 7 used already this month, by jobs since deleted: their rows still count -> 5 left.
    for _ in range(2):
        UsageRecord.objects.create(
            user=user, job_uuid=uuid.uuid4(), video_seconds=3.0, created=timezone.now()
        )

    # Every thread saves its video and job, then all charge at the same moment; counting is
    # made slower so that, without the row lock, they would all count before anyone inserts.
    barrier = threading.Barrier(THREADS, timeout=120)
    real_charge, real_usage = services.charge_analysis, services.period_usage

    def charge_together(*args, **kwargs):
        barrier.wait()
        return real_charge(*args, **kwargs)

    def slow_usage(*args, **kwargs):
        usage = real_usage(*args, **kwargs)
        time.sleep(0.05)
        return usage

    monkeypatch.setattr(services, "charge_analysis", charge_together)
    monkeypatch.setattr(services, "period_usage", slow_usage)

    def attempt(i: int):
        try:
            return submit(user, clip)
        except services.QuotaExceeded as exc:
            return exc
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(attempt, range(THREADS)))
    monkeypatch.undo()

    accepted = [o for o in outcomes if isinstance(o, AnalysisJob)]
    refused = [o for o in outcomes if isinstance(o, services.QuotaExceeded)]
    assert len(accepted) == 5 and len(refused) == 15, outcomes
    for exc in refused:
        assert exc.code == "quota_exceeded"
        assert exc.details["exceeded"] == "analyses"
        assert exc.details["limit"] == 7 and exc.details["used"] == 7

    # The ledger matches the jobs: 5 new rows, one per accepted job, plus the 2 older ones.
    accepted_ids = {job.pk for job in accepted}
    rows = UsageRecord.objects.filter(user=user, refunded_at__isnull=True)
    assert rows.count() == 7
    assert {r.job_id for r in rows if r.job_id} == accepted_ids
    assert {r.job_uuid for r in rows if r.job_id} == accepted_ids
    assert set(AnalysisJob.objects.filter(owner=user).values_list("pk", flat=True)) == accepted_ids
    assert Video.objects.filter(owner=user).count() == 5
    # Refused uploads left no files behind, and only accepted jobs were queued.
    stored = list((media_root / "videos" / str(user.pk)).glob("*/source"))
    assert len(stored) == 5
    queued = {m["args"][0] for m in inference_queue() if m["task"] == "worker.tasks.analyze_video"}
    assert queued == {str(pk) for pk in accepted_ids}

    # Over the limit through the API: 429 with the shared error shape and what was exceeded.
    client = APIClient()
    client.force_authenticate(user)
    response = post_clip(client, clip)
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "7 of your 7 analyses" in error["message"]
    _, resets_at = services.period_bounds()
    assert error["details"] == {
        "exceeded": "analyses",
        "limit": 7,
        "used": 7,
        "requested": 1,
        "resets_at": services.iso(resets_at),
    }
    assert AnalysisJob.objects.filter(owner=user).count() == 5
