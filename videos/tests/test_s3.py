"""Direct-to-S3 uploads against a real S3-compatible server on loopback (moto's server mode)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import pytest
import requests
from django.db import DatabaseError, connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from videos import services
from videos.jobs import run_analysis
from videos.models import AnalysisJob, DirectUpload, Video
from videos.reaper import clean_expired_uploads
from videos.testing import make_stored_video
from worker.tasks import reap_stuck_jobs as reap_task


def _direct_upload(api, path) -> str:
    slot = api.post(reverse("api-uploads"), {"filename": path.name}, format="json")
    assert slot.status_code == 201, slot.content
    target = slot.json()
    with path.open("rb") as fh:
        sent = requests.post(target["url"], data=target["fields"], files={"file": fh}, timeout=30)
    assert sent.status_code in (200, 201, 204), sent.text
    return target["upload_id"]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_presigned_upload_verified_then_analysed(api, s3_storage, talking_clip, inference_queue):
    upload_id = _direct_upload(api, talking_clip)
    created = api.post(reverse("api-analyses"), {"upload_id": upload_id}, format="json")
    assert created.status_code == 202, created.content
    job_id = created.json()["id"]
    assert [m["args"] for m in inference_queue()] == [[job_id]]
    video = Video.objects.get()
    assert video.original_name == "talking.mp4" and video.has_audio
    assert s3_storage.size(video.file.name) == talking_clip.stat().st_size

    # An upload id is used once.
    again = api.post(reverse("api-analyses"), {"upload_id": upload_id}, format="json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "unknown_upload"

    # The worker's service reads the video back from S3 and stores results.
    run_analysis(job_id)
    job = AnalysisJob.objects.get(pk=job_id)
    assert job.status == "succeeded", job.error_message
    assert job.utterances.exists()

    # Deleting the finished analysis deletes the object in S3.
    key = video.file.name
    assert api.delete(reverse("api-analysis", args=[job_id])).status_code == 204
    assert not s3_storage.exists(key)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_bad_object_is_refused_and_removed(api, s3_storage, tmp_path, inference_queue):
    junk = tmp_path / "movie.mp4"
    junk.write_text("not a video at all\n" * 50)
    upload_id = _direct_upload(api, junk)
    response = api.post(reverse("api-analyses"), {"upload_id": upload_id}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_media"
    assert inference_queue() == []
    assert not Video.objects.exists() and not AnalysisJob.objects.exists()
    assert DirectUpload.objects.get(pk=upload_id).consumed_at is None
    assert not s3_storage.exists(DirectUpload.objects.get(pk=upload_id).key)


@pytest.mark.django_db
def test_analysis_from_unknown_upload_id(api, s3_storage):
    response = api.post(
        reverse("api-analyses"),
        {"upload_id": "00000000-0000-0000-0000-000000000000"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_upload"


@pytest.mark.django_db
def test_player_is_sent_to_a_short_lived_presigned_url(client, user, other_user, s3_storage):
    """On S3 the web app does not proxy the video: the owner's player gets a presigned URL, and
    S3 answers its Range requests."""
    data = bytes(range(256)) * 8
    video = make_stored_video(user, data, duration=1.0, width=16, height=16, has_audio=False)
    job = AnalysisJob.objects.create(video=video, owner=user, status="succeeded")
    url = reverse("job-video", args=[job.pk])

    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(s3_storage.endpoint_url)
    query = parse_qs(urlparse(location).query)
    if "X-Amz-Expires" in query:  # signature v4
        assert query["X-Amz-Expires"] == ["300"]
    else:  # v2: an absolute expiry time
        assert 0 < int(query["Expires"][0]) - time.time() <= 300
    ranged = requests.get(location, headers={"Range": "bytes=100-199"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == data[100:200]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_slot_is_claimed_without_a_lock_held_while_downloading_and_probing(
    api, s3_storage, talking_clip, inference_queue, monkeypatch
):
    """The download and ffprobe (up to 500 MB, many seconds) run outside any transaction: the
    slot is already claimed (a second submit is refused) and its row is not locked meanwhile."""
    upload_id = _direct_upload(api, talking_clip)
    seen = {}

    def probe_and_look(path, limits):
        def other_connection():
            try:
                with transaction.atomic():
                    row = DirectUpload.objects.select_for_update(nowait=True).get(pk=upload_id)
                    seen["claimed"] = row.consumed_at is not None
            except DatabaseError as exc:
                seen["error"] = str(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=other_connection)
        thread.start()
        thread.join()
        seen["in_transaction"] = connection.in_atomic_block
        return real_probe(path, limits)

    real_probe = services.probe
    monkeypatch.setattr(services, "probe", probe_and_look)
    created = api.post(reverse("api-analyses"), {"upload_id": upload_id}, format="json")
    assert created.status_code == 202, created.content
    assert seen == {"claimed": True, "in_transaction": False}
    assert DirectUpload.objects.get(pk=upload_id).consumed_at is not None


@pytest.mark.django_db
def test_slot_is_released_when_nothing_was_uploaded_yet(api, s3_storage):
    slot = api.post(reverse("api-uploads"), {"filename": "later.mp4"}, format="json").json()
    response = api.post(reverse("api-analyses"), {"upload_id": slot["upload_id"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "upload_missing"
    assert DirectUpload.objects.get(pk=slot["upload_id"]).consumed_at is None  # may try again


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_expired_slots_and_their_objects_are_cleaned(
    api, s3_storage, talking_clip, tmp_path, inference_queue
):
    abandoned = _direct_upload(api, talking_clip)  # uploaded, never submitted
    pending = _direct_upload(api, talking_clip)  # still within its hour
    used = _direct_upload(api, talking_clip)
    assert api.post(reverse("api-analyses"), {"upload_id": used}, format="json").status_code == 202
    past = timezone.now() - timedelta(days=2)
    DirectUpload.objects.filter(pk__in=[abandoned, used]).update(expires_at=past)
    keys = {pk: DirectUpload.objects.get(pk=pk).key for pk in (abandoned, pending, used)}

    # What Celery beat runs every minute.
    assert reap_task()["expired_uploads_removed"] == 2
    assert clean_expired_uploads() == 0
    assert set(DirectUpload.objects.values_list("pk", flat=True)) == {UUID(pending)}
    assert not s3_storage.exists(keys[abandoned])
    assert s3_storage.exists(keys[pending])
    assert s3_storage.exists(keys[used])  # it is the analysed video now
    assert Video.objects.get().file.name == keys[used]
