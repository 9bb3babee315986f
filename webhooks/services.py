"""Callbacks to integrators: checking the target, signing, delivering and retrying.

When a job submitted with a `callback_url` ends (succeeded, failed or canceled), its summary is
POSTed there, signed with its owner's secret:

    X-Timestamp: <unix seconds>
    X-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

Targets must be http(s) and resolve only to public addresses, unless the setting
WEBHOOK_ALLOW_PRIVATE_TARGETS is on. The check runs at submission and again before every attempt,
and the connection goes to the address that was checked, so a name that changes its answer (DNS
rebinding) cannot redirect a callback to our own network."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from videos.errors import ServiceError
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSecret

if TYPE_CHECKING:
    from accounts.models import User
    from videos.models import AnalysisJob

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2000
SECRET_PREFIX = "whsec_"
USER_AGENT = "VideoSentiment-Webhook/1"
# A claimed attempt holds its delivery for the task's hard time limit plus this margin, so a
# duplicate message (or the reaper) never starts a second attempt beside a live one.
LEASE_MARGIN_S = 30
# NAT64 prefixes carry an IPv4 address in their last 32 bits (RFC 6052, RFC 8215).
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class CallbackRefused(ServiceError):
    """The callback URL is malformed, or points somewhere we do not send requests."""

    status = 400


# --- The target ---


@dataclass(frozen=True)
class Target:
    """A checked callback URL: where to connect (the checked addresses) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


def _invalid(message: str) -> CallbackRefused:
    return CallbackRefused("invalid_callback_url", message)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and that a gateway would connect to:
    IPv4-mapped, 6to4 (2002::/16), Teredo (2001::/32: server and client) and NAT64."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    found.extend(ip.teredo or ())
    if any(ip in net for net in NAT64_NETWORKS):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_forbidden_address(address: str) -> bool:
    """True for anything but a public unicast address: loopback, private, link-local, shared
    (CGNAT), reserved, multicast, unspecified, also when an IPv6 address carries one inside
    (IPv4-mapped, 6to4, Teredo, NAT64: Python 3.11 does not look inside them by itself)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    candidates = [ip, *_embedded_ipv4(ip)] if isinstance(ip, ipaddress.IPv6Address) else [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates = [ip.ipv4_mapped]  # ::ffff:8.8.8.8 is 8.8.8.8, whatever IPv6 calls it
    return any(not c.is_global or c.is_multicast for c in candidates)


def resolve_target(url: str, *, allow_private: bool | None = None) -> Target:
    """Parse `url`, resolve its host and check every address it resolves to.

    Raises CallbackRefused: `invalid_callback_url` (not http(s), malformed, unresolvable) or
    `callback_url_forbidden` (a loopback, private, link-local or reserved address)."""
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"The callback URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise _invalid("The callback URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(f"The callback URL is malformed: {exc}.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("The callback URL must be an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise _invalid("Credentials in the callback URL are not supported; check the signature.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _invalid(f"The callback host {parts.hostname} could not be resolved.") from exc
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise _invalid(f"The callback host {parts.hostname} has no address.")
    if not allow_private and any(is_forbidden_address(a) for a in addresses):
        # The address itself is not told: it would answer DNS questions about our network.
        raise CallbackRefused(
            "callback_url_forbidden",
            f"The callback host {parts.hostname} resolves to a loopback, private, "
            "link-local or reserved address; callbacks go to public addresses only.",
            details={"host": parts.hostname},
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses)


def validate_callback_url(url: str) -> str:
    """The URL to store on a job ("" for none), or CallbackRefused (a 400 in the API)."""
    url = (url or "").strip()
    if url:
        resolve_target(url)
    return url


# --- Secrets and signatures ---


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def get_secret(user: User) -> WebhookSecret:
    """The user's signing secret, made on first use."""
    found, _ = WebhookSecret.objects.get_or_create(
        user=user, defaults={"secret": _new_secret(), "created": timezone.now()}
    )
    return found


def rotate_secret(user: User) -> WebhookSecret:
    """A new secret; callbacks signed from now on (retries included) use it."""
    found, _ = WebhookSecret.objects.update_or_create(
        user=user, defaults={"secret": _new_secret(), "created": timezone.now()}
    )
    return found


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>`; the timestamp binds the signature to
    its time, so a captured request cannot be replayed later."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does (documented in the README): recompute and compare in constant time,
    and refuse timestamps more than `tolerance_s` away from now."""
    if not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


# --- Events ---


def build_body(job: AnalysisJob, event: str, delivery_id: uuid.UUID) -> str:
    """The job summary (the API's document without the per-utterance results), as JSON."""
    from videos.serializers import AnalysisSerializer

    analysis = dict(AnalysisSerializer(job).data)
    for key in ("utterances", "face_track", "callback_deliveries"):
        analysis.pop(key, None)
    document = {
        "event": event,
        "delivery_id": str(delivery_id),
        "created": timezone.now(),
        "analysis": analysis,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"))


def notify_job_finished(job_id: object) -> WebhookDelivery | None:
    """A job just ended: record its callback and send it once the ending transaction commits.

    Call it in (or right after) the transaction that ended the job; None when it has no
    callback_url or has not ended."""
    from videos.models import AnalysisJob, JobStatus

    job = AnalysisJob.objects.select_related("video").filter(pk=job_id).first()
    if job is None or not job.callback_url or not job.is_finished:
        return None
    if job.status == JobStatus.CANCELED and job.started_at is None:
        # Canceled before any work: the integrator canceled it themselves and it cost nothing,
        # so a callback would be a free request to any address (submit, cancel, repeat).
        return None
    event = f"analysis.{job.status}"
    delivery_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(
        id=delivery_id,
        job=job,
        url=job.callback_url,
        event=event,
        body=build_body(job, event, delivery_id),
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: send(delivery_id))
    return delivery


def send(delivery_id: object) -> None:
    """Hand one attempt to the worker. A broker that refuses leaves the delivery pending: the
    reaper (resend_lost_deliveries) sends it again."""
    from worker.tasks import deliver_webhook

    try:
        deliver_webhook.delay(str(delivery_id))
    except Exception:  # noqa: BLE001 - any publish failure: kombu, redis, socket errors
        log.exception(
            "webhook %s: the broker refused the message; the reaper will resend it", delivery_id
        )


# --- Delivery ---


def backoff_s(attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based): base x 2^(attempt-1), capped."""
    return min(settings.WEBHOOK_RETRY_MAX_S, settings.WEBHOOK_RETRY_BASE_S * 2 ** (attempt - 1))


def _pinned(addresses: tuple[str, ...], deadline: float):
    """A replacement for socket.create_connection that connects to the checked addresses only,
    whatever the host name resolves to now (TLS still checks the certificate for the name), and
    never waits past `deadline` (time.monotonic()) however many addresses there are."""

    def create_connection(address, timeout=None, source_address=None):
        port = address[1]
        error: OSError | None = None
        for ip in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                return socket.create_connection(
                    (ip, port), min(timeout or left, left), source_address
                )
            except OSError as exc:
                error = exc
        raise error or TimeoutError("no address answered in time")

    return create_connection


def post(
    target: Target, body: bytes, headers: dict[str, str], timeout_s: float, deadline_s: float
) -> int:
    """POST `body` to the target's checked addresses; the response status. Redirects are not
    followed (a redirect could lead anywhere). `timeout_s` bounds each connect and read;
    `deadline_s` the whole request (connect, headers and body): a receiver that trickles its
    answer a byte at a time is cut off at the deadline (TimeoutError)."""
    deadline = time.monotonic() + deadline_s
    timeout = min(timeout_s, deadline_s)
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    conn._create_connection = _pinned(target.addresses, deadline)  # http.client's own hook
    expired = threading.Event()

    def cut_off() -> None:  # a blocked read returns once its socket is shut down
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(deadline_s, cut_off)
    watchdog.daemon = True
    watchdog.start()
    too_late = TimeoutError(f"no complete answer within {deadline_s:g} s")
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # the answer's body is not used
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise too_late from exc
        raise
    finally:
        watchdog.cancel()
        conn.close()
    if expired.is_set():  # http.client reads a cut-off header block as complete: it is not
        raise too_late
    return response.status


def _headers(delivery: WebhookDelivery, secret: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": str(delivery.pk),
        "X-Webhook-Event": delivery.event,
        "X-Timestamp": str(timestamp),
        "X-Signature": sign(secret, timestamp, body),
    }


def lease_s() -> float:
    """How long a claimed attempt holds its delivery: longer than the task may live."""
    return settings.WEBHOOK_TASK_TIME_LIMIT_S + LEASE_MARGIN_S


def _claim(delivery_id: object) -> int | None:
    """Take the delivery for one attempt, unless it is done, not due, or another worker has it.
    The attempt is counted as it is claimed, so one that never finishes (a killed worker, a time
    limit) still uses up one of WEBHOOK_MAX_ATTEMPTS. Returns the attempt's number, or None."""
    now = timezone.now()
    # One second of slack: the retry's countdown and next_attempt_at come from the same clock.
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=1))
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(due)
        .update(
            attempt_count=F("attempt_count") + 1,
            next_attempt_at=now + timedelta(seconds=lease_s()),
        )
    )
    if not claimed:
        return None
    # Nobody else can claim it until the lease ends, so the count read back is this attempt's.
    number = WebhookDelivery.objects.filter(pk=delivery_id).values_list("attempt_count", flat=True)
    return number.first()


def _attempt(delivery: WebhookDelivery) -> tuple[int | None, str, bool]:
    """Send the delivery once: (HTTP status or None, error or "", whether retrying is futile)."""
    status_code = None
    try:
        # Again at every attempt: the name may resolve elsewhere now (DNS rebinding).
        target = resolve_target(delivery.url)
        body = delivery.body.encode()
        secret = get_secret(delivery.job.owner).secret
        status_code = post(
            target,
            body,
            _headers(delivery, secret, body),
            settings.WEBHOOK_TIMEOUT_S,
            settings.WEBHOOK_DEADLINE_S,
        )
    except CallbackRefused as exc:
        return None, exc.message, True  # retrying would not change our answer
    except (OSError, http.client.HTTPException) as exc:  # refused, timeout, TLS, bad answer
        return None, (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__), False
    except SoftTimeLimitExceeded:
        return None, "the attempt hit the delivery task's time limit", False
    if 300 <= status_code < 400:
        return status_code, f"HTTP {status_code}: redirects are not followed", False
    if not 200 <= status_code < 300:
        return status_code, f"HTTP {status_code}", False
    return status_code, "", False


def attempt_delivery(delivery_id: object) -> float | None:
    """Make one attempt and record it, whatever happens to it. Returns the seconds to wait before
    the next attempt, or None when there is none to make (delivered, given up, or not this
    message's to make)."""
    number = _claim(delivery_id)
    if number is None:
        return None
    delivery = WebhookDelivery.objects.select_related("job__owner").filter(pk=delivery_id).first()
    if delivery is None:  # the job was deleted meanwhile
        return None
    started_at, started = timezone.now(), time.monotonic()
    status_code, error, final = _attempt(delivery)
    retry_in = None
    fields: dict[str, object] = {
        "last_status_code": status_code,
        "last_error": error[:500],
        "next_attempt_at": None,
    }
    if not error:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now())
    elif final or number >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields["status"] = DeliveryStatus.FAILED
    else:
        retry_in = backoff_s(number)
        fields["next_attempt_at"] = timezone.now() + timedelta(seconds=retry_in)
    try:
        with transaction.atomic():
            WebhookAttempt.objects.create(
                delivery=delivery,
                number=number,
                started_at=started_at,
                duration_ms=int(1000 * (time.monotonic() - started)),
                status_code=status_code,
                error=error[:500],
            )
            WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    except IntegrityError:  # the job (and its deliveries) was deleted during the attempt
        return None
    if error:
        log.info("webhook %s attempt %d to %s: %s", delivery.pk, number, delivery.url, error)
    return retry_in


LOST_ATTEMPT_ERROR = "the attempt never finished (its worker stopped or hit a time limit)"


def _record_lost_attempt(delivery: WebhookDelivery, *, give_up: bool) -> None:
    """An attempt was claimed and never recorded: record it as failed, and end the delivery
    when it was the last one allowed."""
    with transaction.atomic():
        if (
            delivery.attempt_count
            and not delivery.attempts.filter(number=delivery.attempt_count).exists()
        ):
            WebhookAttempt.objects.create(
                delivery=delivery,
                number=delivery.attempt_count,
                started_at=delivery.next_attempt_at - timedelta(seconds=lease_s()),
                error=LOST_ATTEMPT_ERROR,
            )
        fields: dict[str, object] = {"last_error": LOST_ATTEMPT_ERROR, "last_status_code": None}
        if give_up:
            fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        else:
            fields["next_attempt_at"] = timezone.now()
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            **fields
        )


def resend_lost_deliveries(lost_after_s: float = 600) -> int:
    """Pending deliveries whose next attempt is long overdue lost their message (a worker or
    broker restart): send them again. Called by the reaper; a duplicate finds them claimed."""
    now = timezone.now()
    lost = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lt=now - timedelta(seconds=lost_after_s)
    )
    ids = []
    for delivery in lost[:1000]:
        # A claimed attempt whose lease ran out without a record was lost mid-attempt; one
        # whose next attempt was due (a retry) lost its message before it started.
        attempt_lost = (
            delivery.attempt_count > 0
            and not delivery.attempts.filter(number=delivery.attempt_count).exists()
        )
        if attempt_lost:
            give_up = delivery.attempt_count >= settings.WEBHOOK_MAX_ATTEMPTS
            _record_lost_attempt(delivery, give_up=give_up)
            if give_up:
                continue
        else:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now)
        ids.append(delivery.pk)
    for delivery_id in ids:
        send(delivery_id)
    return len(ids)
