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


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> bytes:
    """A multipart body with `file` parts named exactly as given (Django's test client would
    strip everything up to the last slash before sending)."""
    body = b""
    for filename, content in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: video/mp4\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


@pytest.mark.django_db
def test_several_file_parts_are_refused(api, media_root, talking_clip):
    data = talking_clip.read_bytes()
    response = api.post(
        reverse("api-analyses"),
        _multipart([("a.mp4", data), ("b.mp4", data)]),
        content_type="multipart/form-data; boundary=b0undary",
    )
    _assert_refused(response, "too_many_files")


@pytest.mark.django_db
def test_several_file_parts_are_refused_by_the_web_form(client, user, media_root, talking_clip):
    client.force_login(user)
    with talking_clip.open("rb") as one, talking_clip.open("rb") as two:
        response = client.post(reverse("upload"), {"file": [one, two]})
    assert response.status_code == 400
    assert "one file" in response.content.decode()
    assert not AnalysisJob.objects.exists()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_name_with_markup_is_kept_and_escaped(
    api, client, user, media_root, talking_clip, inference_queue
):
    name = "<script>alert(1)</script>.mp4"
    response = api.post(
        reverse("api-analyses"),
        _multipart([(name, talking_clip.read_bytes())]),
        content_type="multipart/form-data; boundary=b0undary",
    )
    assert response.status_code == 202, response.content
    stored = Video.objects.get().original_name
    # Whole (slashes become look-alikes: a name is never a path), not cut to "script>.mp4".
    assert stored == "<script>alert(1)<\u2215script>.mp4"
    client.force_login(user)
    page = client.get(reverse("dashboard")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;\u2215script&gt;.mp4" in page
    assert "<script>alert(1)" not in page
