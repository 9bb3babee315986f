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
Withdrawing refunds a job that is still queued and never started and deletes it with its video:
the user left before seeing it. The ledger row stays, refunded, for audit. A job a worker has
started (or finished) is never withdrawn: the token is still valid for an hour, and replaying
the beacon after downloading the results must not make the analysis free."""

from __future__ import annotations

import logging
import re

from django.core.cache import cache
from django.db import transaction

from quotas import services as quotas
from videos.errors import UploadRejected
from videos.models import AnalysisJob, JobStatus

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
    """Refund and delete the job if it is still queued and no worker ever started it; False (and
    nothing changed) otherwise."""
    with transaction.atomic():
        job = (
            AnalysisJob.objects.select_for_update()
            .filter(pk=job_id, status=JobStatus.QUEUED, started_at__isnull=True)
            .select_related("video")
            .first()
        )
        if job is None:
            return False
        quotas.refund_job(job.pk, REFUND_REASON)
        job.video.delete()  # the job with it; the stored file after commit
    log.info("job %s withdrawn: its upload page was left", job_id)
    return True
