"""Liveness, readiness (database + broker) and Prometheus metrics for the monitoring system."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)


@never_cache
def live(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is checked (a restart would not help otherwise)."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: database unavailable", exc_info=True)
        return False
    return True


def _broker_ok() -> bool:
    from kombu import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=2,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: broker unavailable", exc_info=True)
        return False
    return True


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    # Which dependency is down, never the exception's text (hosts, versions): that is logged.
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    body = {
        "status": "ok" if all(checks.values()) else "unavailable",
        "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()},
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)


def queue_depths() -> dict[str, int]:
    """Messages waiting per Celery queue (Redis lists; files for the filesystem broker)."""
    from config.celery import app

    depths = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in app.conf.task_queues:
            try:
                depths[queue.name] = channel.queue_declare(queue.name, passive=True).message_count
            except Exception:  # noqa: BLE001 - a queue nobody declared yet is empty
                depths[queue.name] = 0
    return depths


class JobCollector:
    """Read at scrape time from the database (the source of truth) and the broker."""

    def collect(self):
        from django.db.models import Count

        from videos.models import AnalysisJob, JobStatus

        by_status = dict(
            AnalysisJob.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        jobs = GaugeMetricFamily("analysis_jobs", "Analysis jobs by status", labels=["status"])
        for status in JobStatus.values:
            jobs.add_metric([status], by_status.get(status, 0))
        yield jobs

        stage = GaugeMetricFamily(
            "analysis_stage_seconds_mean",
            "Mean seconds per engine stage over the last 100 succeeded jobs",
            labels=["stage"],
        )
        recent = AnalysisJob.objects.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at")
        totals: dict[str, list[float]] = {}
        for timings in recent.values_list("stage_timings", flat=True)[:100]:
            for name, seconds in (timings or {}).items():
                totals.setdefault(name, []).append(float(seconds))
        for name, values in sorted(totals.items()):
            stage.add_metric([name], sum(values) / len(values))
        yield stage

        depth = GaugeMetricFamily("celery_queue_depth", "Messages waiting", labels=["queue"])
        try:
            for name, count in queue_depths().items():
                depth.add_metric([name], count)
        except Exception:  # noqa: BLE001 - broker down: readiness reports it; omit the gauge
            return
        yield depth


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    elif not settings.METRICS_PUBLIC:  # job counts and queue depths are nobody's business
        return HttpResponse(
            "metrics are off: set METRICS_TOKEN (or METRICS_PUBLIC=true)\n",
            status=403,
            content_type="text/plain",
        )
    registry = CollectorRegistry()
    registry.register(JobCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
