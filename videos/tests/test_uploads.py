"""Every upload is checked before a job is queued; bad input is a 400 with a code."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mlcore import testmedia
from videos.models import AnalysisJob, Video


def _post(api, path):
    with open(path, "rb") as fh:
        return api.post(reverse("api-analyses"), {"file": fh}, format="multipart")


def _assert_refused(response, code):
    """A 400 with the code, and nothing stored or queued."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert AnalysisJob.objects.count() == 0
    assert Video.objects.count() == 0


@pytest.mark.django_db
def test_empty_file(api, media_root, tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _assert_refused(_post(api, path), "empty_file")


@pytest.mark.django_db
def test_text_file_named_mp4(api, media_root, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    response = _post(api, path)
    _assert_refused(response, "not_media")
    # The user's file is named, not our temp file; FFmpeg's own words stay in the log.
    message = response.json()["error"]["message"]
    assert message.startswith("notes.mp4 ") and "upload-" not in message
    assert "Invalid data" not in message


@pytest.mark.django_db
def test_truncated_mp4(api, media_root, talking_clip, tmp_path):
    path = tmp_path / "cut.mp4"
    data = talking_clip.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    response = _post(api, path)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"truncated", "not_media", "decode_failed"}
    assert AnalysisJob.objects.count() == 0


@pytest.mark.django_db
def test_index_without_media_data(api, media_root, talking_clip, tmp_path):
    """3 kB of ftyp + moov: refused at upload, not a charged "no speech" success."""
    path = testmedia.make_index_only(talking_clip, tmp_path / "holiday.mp4")
    _assert_refused(_post(api, path), "no_media_data")
    assert "holiday.mp4" in _post(api, path).json()["error"]["message"]


@pytest.mark.django_db
def test_audio_only(api, media_root, tmp_path):
    path = testmedia.make_audio_only(tmp_path / "voice.m4a")
    _assert_refused(_post(api, path), "no_video_stream")


@pytest.mark.django_db
def test_over_the_size_limit(api, media_root, talking_clip, settings):
    settings.MAX_UPLOAD_BYTES = talking_clip.stat().st_size - 1
    _assert_refused(_post(api, talking_clip), "file_too_large")


@pytest.mark.django_db
def test_over_the_duration_limit(api, media_root, talking_clip, settings):
    settings.MAX_VIDEO_SECONDS = 1.0
    _assert_refused(_post(api, talking_clip), "too_long")


@pytest.mark.django_db
def test_missing_file_field(api):
    response = api.post(reverse("api-analyses"), {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_good_upload_is_stored_and_queued(api, media_root, talking_clip, inference_queue):
    response = _post(api, talking_clip)
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"].endswith(f"/api/v1/analyses/{body['id']}")
    assert body["status"] == "queued"
    # Enqueued once, on the inference queue of the real broker, after the commit.
    assert [m["args"] for m in inference_queue()] == [[body["id"]]]
    video = Video.objects.get()
    assert video.original_name == "talking.mp4"
    assert video.size == talking_clip.stat().st_size
    assert video.has_audio and video.width == 320 and video.duration > 2
    assert "talking" not in video.file.name  # the user's name is never a storage path
    assert (media_root / video.file.name).read_bytes() == talking_clip.read_bytes()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_deleting_the_video_deletes_its_file(api, media_root, talking_clip, inference_queue):
    job_id = _post(api, talking_clip).json()["id"]
    stored = media_root / Video.objects.get().file.name
    assert stored.exists()
    # A queued job is canceled first, then deleted.
    assert api.delete(reverse("api-analysis", args=[job_id])).status_code == 204
    assert AnalysisJob.objects.get().status == "canceled"
    assert api.delete(reverse("api-analysis", args=[job_id])).status_code == 204
    assert not AnalysisJob.objects.exists() and not Video.objects.exists()
    assert not stored.exists()
