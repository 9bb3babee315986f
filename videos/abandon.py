"""Leaving the upload page aborts the upload, also once its bytes have all arrived.

The page sends its upload with a random token (header `X-Upload-Token`). When the page is left
before the job page opens, it aborts the request and sends a beacon naming the token. A request
cut short never makes a job (Django drops a file part without its end), but the last bytes may
have arrived: the server may be checking the video, or have just created the job. So both sides
write first and read second, in the shared cache:

- the beacon marks the token abandoned, then withdraws the job made from it, if any;
- the upload, after creating its job, records the job under the token, then withdraws it if the
  token is marked abandoned (and refuses to start when it already is).

Whichever comes second sees the other's write, so an abandoned upload never keeps a job.
Withdrawing cancels the job (a worker that took it stops), refunds it and deletes it with its
video: the user left before seeing it. The ledger row stays, refunded, for audit."""

from __future__ import annotations

import logging
import re

from django.core.cache import cache

from quotas import services as quotas
from videos import services
from videos.errors import UploadRejected
from videos.models import AnalysisJob

log = logging.getLogger(__name__)

TOKEN = re.compile(r"^[A-Za-z0-9-]{16,64}$")
TTL_S = 3600  # longer than any upload's checks take
REFUND_REASON = "upload_abandoned"


def _key(kind: str, user_id: object, token: str) -> str:
    return f"upload-{kind}:{user_id}:{token}"


def valid_token(token: str | None) -> str | None:
    return token if token and TOKEN.match(token) else None


def refuse_if_abandoned(user, token: str | None) -> None:
    """Before creating a job: an upload whose page was left makes none."""
    if token and cache.get(_key("abandoned", user.pk, token)):
        raise UploadRejected("upload_abandoned", "The upload was abandoned: its page was left.")


def job_created(user, token: str | None, job: AnalysisJob) -> bool:
    """After the job's transaction committed. True if the page was left meanwhile (the job is
    withdrawn)."""
    if not token:
        return False
    cache.set(_key("job", user.pk, token), str(job.pk), TTL_S)
    if cache.get(_key("abandoned", user.pk, token)):
        return withdraw(job.pk)
    return False


def abandon(user, token: str) -> bool:
    """The page was left. True if a job made from the upload was withdrawn."""
    cache.set(_key("abandoned", user.pk, token), True, TTL_S)
    job_id = cache.get(_key("job", user.pk, token))
    return withdraw(job_id) if job_id else False


def withdraw(job_id: object) -> bool:
    job = AnalysisJob.objects.filter(pk=job_id).select_related("video").first()
    if job is None:
        return False
    # Refund first: the refund keeps its first reason, and cancel_job refunds as "canceled".
    quotas.refund_job(job.pk, REFUND_REASON)
    services.cancel_job(job)
    job.video.delete()  # the job with it; the stored file after commit
    log.info("job %s withdrawn: its upload page was left", job_id)
    return True
