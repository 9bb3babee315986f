"""Delivering callbacks to a real HTTP receiver on loopback: the signature, retries with backoff
(the receiver answers 500, then 200), the record of every attempt in the API and the admin, and
the refusal of private targets when the setting is off. One test runs the whole path through a
real Celery worker and the real Redis broker."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from videos.jobs import fail_job
from videos.models import JobStatus
from videos.services import cancel_job
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from worker.tasks import deliver_webhook

pytestmark = pytest.mark.django_db


def _ended_with_callback(make_job, url: str) -> WebhookDelivery:
    """A running job canceled: its callback is recorded, not yet sent."""
    job = make_job(callback_url=url, status=JobStatus.RUNNING, started_at=timezone.now())
    assert cancel_job(job)
    return WebhookDelivery.objects.get(job=job)


def _make_due(delivery: WebhookDelivery) -> None:
    """Skip the backoff wait (the worker test below waits for real)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def _check_signature(request, user) -> None:
    secret = services.get_secret(user).secret
    stamp = request.headers["X-Timestamp"]
    assert abs(int(stamp) - time.time()) < 60
    assert request.headers["X-Signature"] == services.sign(secret, int(stamp), request.body)
    assert services.verify_signature(secret, request.body, stamp, request.headers["X-Signature"])


def test_a_job_ending_queues_one_signed_summary(make_job, user, receiver, allow_loopback):
    delivery = _ended_with_callback(make_job, receiver.url)
    assert (delivery.event, delivery.status, delivery.url) == (
        "analysis.canceled",
        DeliveryStatus.PENDING,
        receiver.url,
    )
    assert services.attempt_delivery(delivery.pk) is None  # delivered: nothing more to do
    (request,) = receiver.received
    assert request.path == "/hooks/vs?x=1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Webhook-Id"] == str(delivery.pk)
    assert request.headers["X-Webhook-Event"] == "analysis.canceled"
    _check_signature(request, user)
    document = request.json()
    assert document["event"] == "analysis.canceled" and document["delivery_id"] == str(delivery.pk)
    analysis = document["analysis"]
    assert analysis["id"] == str(delivery.job_id) and analysis["status"] == "canceled"
    assert analysis["video"]["original_name"] == "talk.mp4"
    assert "utterances" not in analysis and "callback_deliveries" not in analysis
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at
    assert delivery.attempt_count == 1 and delivery.last_status_code == 200


def test_a_succeeded_job_sends_its_summary(make_job, receiver, allow_loopback):
    from mlcore.inference import AnalysisResult
    from videos.jobs import save_results

    job = make_job(callback_url=receiver.url, status=JobStatus.RUNNING, task_id="t1")
    summary = {"speech_detected": False, "message": "No speech was detected in this video."}
    result = AnalysisResult([], summary, "meld-text-minilm-v1", ["text"], True, 300.0)
    assert save_results(str(job.pk), result, task_id="t1")
    delivery = WebhookDelivery.objects.get(job=job)
    assert delivery.event == "analysis.succeeded"
    analysis = json.loads(delivery.body)["analysis"]
    assert analysis["status"] == "succeeded" and analysis["summary"] == summary
    assert analysis["url"] == f"/api/v1/analyses/{job.pk}"  # SITE_URL unset: a path


def test_site_url_makes_links_absolute(make_job, receiver, allow_loopback):
    allow_loopback.SITE_URL = "https://vs.example.org"
    delivery = _ended_with_callback(make_job, receiver.url)
    url = json.loads(delivery.body)["analysis"]["url"]
    assert url == f"https://vs.example.org/api/v1/analyses/{delivery.job_id}"


def test_no_callback_url_no_delivery(make_job):
    job = make_job()
    assert cancel_job(job)
    fail_job(str(make_job().pk), "internal_error", "boom")
    assert not WebhookDelivery.objects.exists()


def test_a_failed_job_sends_its_error(make_job, receiver, allow_loopback):
    job = make_job(callback_url=receiver.url)
    fail_job(str(job.pk), "not_media", "talk.mp4 is not a video.")
    delivery = WebhookDelivery.objects.get(job=job)
    assert delivery.event == "analysis.failed"
    assert json.loads(delivery.body)["analysis"]["error"] == {
        "code": "not_media",
        "message": "talk.mp4 is not a video.",
    }


def test_retries_with_backoff_until_the_receiver_says_yes(make_job, user, receiver, allow_loopback):
    allow_loopback.WEBHOOK_RETRY_BASE_S = 30
    receiver.script = [500, 503, 200]
    delivery = _ended_with_callback(make_job, receiver.url)
    assert services.attempt_delivery(delivery.pk) == 30  # base x 2^0
    assert services.attempt_delivery(delivery.pk) is None  # not due yet: nothing sent
    assert len(receiver.received) == 1
    _make_due(delivery)
    assert services.attempt_delivery(delivery.pk) == 60  # base x 2^1
    _make_due(delivery)
    assert services.attempt_delivery(delivery.pk) is None
    assert [r.body for r in receiver.received] == [delivery.body.encode()] * 3  # the same bytes
    for request in receiver.received:
        _check_signature(request, user)
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert [(a.number, a.status_code, a.error) for a in attempts] == [
        (1, 500, "HTTP 500"),
        (2, 503, "HTTP 503"),
        (3, 200, ""),
    ]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_count == 3


def test_attempts_are_bounded(make_job, receiver, allow_loopback):
    allow_loopback.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.script = [500]
    delivery = _ended_with_callback(make_job, receiver.url)
    for _ in range(2):
        assert services.attempt_delivery(delivery.pk) is not None
        _make_due(delivery)
    assert services.attempt_delivery(delivery.pk) is None  # the third was the last
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 3
    _make_due(delivery)
    assert services.attempt_delivery(delivery.pk) is None
    assert len(receiver.received) == 3


def test_backoff_doubles_and_is_capped(settings):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_RETRY_MAX_S = 30, 200
    assert [services.backoff_s(n) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 200, 200]


def test_a_slow_receiver_times_out_and_is_retried(make_job, receiver, allow_loopback):
    allow_loopback.WEBHOOK_TIMEOUT_S = 0.3
    receiver.script = [("sleep", 1.0), 200]
    delivery = _ended_with_callback(make_job, receiver.url)
    assert services.attempt_delivery(delivery.pk) is not None
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and "timed out" in attempt.error.lower()
    _make_due(delivery)
    assert services.attempt_delivery(delivery.pk) is None
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED


def test_redirects_are_not_followed(make_job, receiver, allow_loopback):
    receiver.script = [("redirect", "http://169.254.169.254/latest/meta-data/")]
    delivery = _ended_with_callback(make_job, receiver.url)
    assert services.attempt_delivery(delivery.pk) is not None  # a failure, retried
    assert len(receiver.received) == 1
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 302 and "redirects are not followed" in attempt.error


def test_nobody_listening_is_a_retried_error(make_job, allow_loopback):
    from worker.processes import free_port

    delivery = _ended_with_callback(make_job, f"http://127.0.0.1:{free_port()}/hook")
    assert services.attempt_delivery(delivery.pk) is not None
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and "ConnectionRefused" in attempt.error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_target_refused_again_at_delivery(make_job, receiver, settings, host):
    """Accepted at submission (setting on, or a name that resolved to a public address then),
    refused when the attempt is made: no request leaves, and it is not retried."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    url = receiver.url.replace("127.0.0.1", host)
    delivery = _ended_with_callback(make_job, url)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # as a rebinding name would look
    assert services.attempt_delivery(delivery.pk) is None
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 1
    assert "public addresses only" in delivery.last_error
    assert delivery.attempts.get().status_code is None


def test_connection_goes_to_the_checked_address(receiver, allow_loopback, monkeypatch):
    """The name is resolved once, checked, and that address is the one connected to: a second
    lookup (DNS rebinding) is never made."""
    target = services.resolve_target(receiver.url.replace("127.0.0.1", "localhost"))
    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(host, *args, **kwargs):
        try:
            ipaddress.ip_address(host)  # connecting to an address "resolves" the literal
        except ValueError:
            pytest.fail(f"{host} was resolved a second time")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr("socket.getaddrinfo", numeric_only)
    status = services.post(target, b"{}", {"Content-Type": "application/json"}, 2.0, 5.0)
    assert status == 200 and receiver.received[0].headers["Host"].startswith("localhost")


def test_deliveries_in_the_api_and_the_admin(make_job, user, api, receiver, allow_loopback):
    receiver.script = [500, 200]
    delivery = _ended_with_callback(make_job, receiver.url)
    services.attempt_delivery(delivery.pk)
    _make_due(delivery)
    services.attempt_delivery(delivery.pk)

    body = api.get(reverse("api-analysis", args=[delivery.job_id])).json()
    assert body["callback_url"] == receiver.url
    (shown,) = body["callback_deliveries"]
    assert shown["id"] == str(delivery.pk) and shown["status"] == "delivered"
    assert shown["event"] == "analysis.canceled" and shown["attempt_count"] == 2
    assert [(a["number"], a["status_code"], a["error"]) for a in shown["attempts"]] == [
        (1, 500, "HTTP 500"),
        (2, 200, ""),
    ]
    listed = api.get(reverse("api-analyses")).json()["results"][0]
    assert listed["callback_url"] == receiver.url and listed["callback_deliveries"] is None

    admin = User.objects.create_superuser("admin@example.com", "pw-Admin-12345")
    staff = Client()
    staff.force_login(admin)
    page = staff.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "HTTP 500" in html and "analysis.canceled" in html
    listing = staff.get(
        reverse("admin:webhooks_webhookdelivery_changelist"), {"status__exact": "delivered"}
    )
    assert listing.status_code == 200 and receiver.url in listing.content.decode()
    job_page = staff.get(reverse("admin:videos_analysisjob_change", args=[delivery.job_id]))
    assert job_page.status_code == 200 and receiver.url in job_page.content.decode()


def test_lost_deliveries_are_sent_again(make_job, receiver, allow_loopback, monkeypatch):
    sent = []
    monkeypatch.setattr(services, "send", sent.append)
    delivery = _ended_with_callback(make_job, receiver.url)
    assert services.resend_lost_deliveries() == 0  # just made: not lost
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timezone.timedelta(hours=1)
    )
    assert services.resend_lost_deliveries() == 1 and sent == [delivery.pk]


def test_callbacks_have_a_queue_of_their_own():
    """Analyses never wait behind a slow receiver: callbacks go to `webhooks`, which scripts/run
    and compose serve with a worker of its own."""
    from config.celery import app

    assert deliver_webhook.name == "worker.tasks.deliver_webhook"
    assert app.amqp.router.route({}, deliver_webhook.name)["queue"].name == "webhooks"
    assert app.amqp.router.route({}, "worker.tasks.analyze_video")["queue"].name == "inference"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_through_a_real_worker_500_then_200(
    postgres, celery_worker, make_job, user, api, receiver, allow_loopback
):
    """Cancel a running job through the API; the worker delivers, retries after the backoff,
    and records it."""
    receiver.script = [500, 200]
    job = make_job(callback_url=receiver.url, status=JobStatus.RUNNING, started_at=timezone.now())
    assert api.delete(reverse("api-analysis", args=[job.pk])).status_code == 204
    first, second = receiver.wait_for(2, timeout_s=60)
    for request in (first, second):
        _check_signature(request, user)
        assert request.json()["analysis"]["status"] == JobStatus.CANCELED
    assert first.body == second.body
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.get(job=job)
        if delivery.status == DeliveryStatus.DELIVERED:
            break
        time.sleep(0.1)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    attempts = list(delivery.attempts.all())
    assert [a.status_code for a in attempts] == [500, 200]
    # The second attempt waited for the backoff (0.2 s here).
    assert (attempts[1].started_at - attempts[0].started_at).total_seconds() >= 0.2


def test_a_job_canceled_before_it_ran_sends_nothing(make_job, receiver, allow_loopback):
    """Submit-and-cancel costs nothing, so it must not buy a request to any address."""
    job = make_job(callback_url=receiver.url)
    assert cancel_job(job)
    assert not WebhookDelivery.objects.filter(job=job).exists()


@pytest.fixture
def trickler():
    """A receiver that answers one header line every 0.3 s and never finishes: each read is
    quick, so only a deadline on the whole request stops it."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                give_up = time.monotonic() + 6  # then answer: a client without a deadline waits
                while not stop.is_set() and time.monotonic() < give_up:
                    try:
                        conn.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        break
                    time.sleep(0.3)
                with contextlib.suppress(OSError):
                    conn.sendall(b"Content-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    server.close()


def test_a_trickling_receiver_is_cut_off_at_the_deadline(make_job, trickler, allow_loopback):
    allow_loopback.WEBHOOK_TIMEOUT_S = 1.0  # every read is answered well within this
    allow_loopback.WEBHOOK_DEADLINE_S = 1.5
    delivery = _ended_with_callback(make_job, trickler)
    started = time.monotonic()
    assert services.attempt_delivery(delivery.pk) is not None  # a failure, retried
    assert time.monotonic() - started < 5
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "no complete answer within 1.5 s" in attempt.error
    delivery.refresh_from_db()
    assert delivery.attempt_count == 1 and delivery.status == DeliveryStatus.PENDING


def test_a_time_limit_is_recorded_as_an_attempt(make_job, receiver, allow_loopback, monkeypatch):
    """Celery raises SoftTimeLimitExceeded inside the task: the attempt is still recorded."""
    from celery.exceptions import SoftTimeLimitExceeded

    def over_time(*args: object, **kwargs: object) -> int:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, "post", over_time)
    delivery = _ended_with_callback(make_job, receiver.url)
    assert services.attempt_delivery(delivery.pk) is not None
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.number == 1 and "time limit" in attempt.error


def test_lost_attempts_count_and_end_the_delivery(make_job, receiver, allow_loopback, monkeypatch):
    """A worker killed mid-attempt records nothing: the attempt was counted when claimed, the
    reaper records it as lost, and the resends stop at WEBHOOK_MAX_ATTEMPTS."""
    allow_loopback.WEBHOOK_MAX_ATTEMPTS = 2
    sent = []
    monkeypatch.setattr(services, "send", sent.append)
    delivery = _ended_with_callback(make_job, receiver.url)

    def lose_an_attempt() -> None:
        assert services._claim(delivery.pk) is not None  # claimed, then the worker died
        long_ago = timezone.now() - timezone.timedelta(hours=1)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=long_ago)

    lose_an_attempt()
    assert services.resend_lost_deliveries() == 1 and sent == [delivery.pk]
    lose_an_attempt()
    assert services.resend_lost_deliveries() == 0 and sent == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 2
    errors = [a.error for a in delivery.attempts.order_by("number")]
    assert errors == [services.LOST_ATTEMPT_ERROR] * 2
    assert services.resend_lost_deliveries() == 0  # ended: never sent again


def test_the_lease_outlives_the_task(make_job, receiver, allow_loopback):
    """A claimed attempt keeps its delivery longer than the task can run, so no second attempt
    starts beside a live one."""
    from worker.tasks import deliver_webhook

    assert services.lease_s() > deliver_webhook.time_limit >= deliver_webhook.soft_time_limit
    delivery = _ended_with_callback(make_job, receiver.url)
    assert services._claim(delivery.pk) == 1
    assert services._claim(delivery.pk) is None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timezone.timedelta(seconds=2)
    )
    assert services.attempt_delivery(delivery.pk) is None and receiver.received == []
