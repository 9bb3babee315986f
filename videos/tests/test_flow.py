"""The whole flow on real services: upload -> Redis -> a real Celery worker -> PostgreSQL."""

from __future__ import annotations

import csv
import io
import time

import pytest
from django.urls import reverse
from django.utils.html import escape

from videos.exports import results_csv
from videos.jobs import run_analysis
from videos.models import AnalysisJob, Utterance

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _poll_until_finished(fetch, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = fetch()
        if body["status"] in {"succeeded", "failed", "canceled"}:
            return body
        time.sleep(2)  # the API's Retry-After; every second would brush the plan's 60 requests/min
    raise AssertionError(f"job not finished after {timeout_s}s: {body}")


def _assert_results(body: dict, duration: float) -> None:
    assert body["status"] == "succeeded", body["error"]
    assert body["progress"] == 100 and body["model_version"]
    utterances = body["utterances"]
    assert utterances, body
    words = " ".join(u["text"] for u in utterances).lower()
    assert "wonderful" in words or "terrible" in words, words
    for u in utterances:
        assert 0 <= u["start"] < u["end"] <= duration + 0.5
        assert u["emotion"] in u["emotion_scores"]
        assert abs(sum(u["emotion_scores"].values()) - 1) < 1e-3
        assert u["sentiment"] in {"negative", "neutral", "positive"}
    assert body["summary"]["dominant_emotion"]


def test_api_upload_to_results(postgres, celery_worker, api, media_root, talking_clip):
    with talking_clip.open("rb") as fh:
        created = api.post(reverse("api-analyses"), {"file": fh}, format="multipart")
    assert created.status_code == 202, created.content
    url = created["Location"]
    body = _poll_until_finished(lambda: api.get(url).json())
    _assert_results(body, body["video"]["duration"])
    job = AnalysisJob.objects.get(pk=body["id"])
    assert job.attempts == 1
    assert set(job.stage_timings) >= {"transcribe", "inference"}

    # Idempotent: a redelivered message leaves one set of results.
    count = Utterance.objects.filter(job=job).count()
    run_analysis(str(job.pk))
    assert Utterance.objects.filter(job=job).count() == count


def test_web_form_upload_to_results(
    postgres, celery_worker, client, user, media_root, talking_clip
):
    client.force_login(user)
    with talking_clip.open("rb") as fh:
        response = client.post(reverse("upload"), {"file": fh})
    assert response.status_code == 302
    job = AnalysisJob.objects.get(owner=user)
    assert response["Location"] == reverse("job-detail", args=[job.pk])

    def fetch() -> dict:
        job.refresh_from_db()
        return {"status": job.status}

    _poll_until_finished(fetch)
    page = client.get(response["Location"]).content.decode()
    assert job.status == "succeeded", job.error_message
    first = job.utterances.first()
    assert first.text.strip() and escape(first.text.strip()) in page
    assert first.emotion in page


def test_a_talking_face_reads_every_channel_through_api_csv_and_page(
    postgres, celery_worker, api, client, user, media_root, talking_face_clip
):
    """Real footage of a face with speech: the face, voice and combined readings reach the API
    (and its schema), the CSV and the page, and the result says which channels ran."""
    with talking_face_clip.open("rb") as fh:
        created = api.post(reverse("api-analyses"), {"file": fh}, format="multipart")
    assert created.status_code == 202, created.content
    body = _poll_until_finished(lambda: api.get(created["Location"]).json())
    _assert_results(body, body["video"]["duration"])
    assert body["channels_used"] == ["text", "face", "voice", "combined"]
    assert body["channels"]["face"]["model"].startswith("mobilenetv2-rafdb-fer")
    assert body["summary"]["face"]["frames_with_face"] >= 0.95 * body["summary"]["face"]["frames"]
    assert len(body["face_track"]) >= body["video"]["duration"]  # >= 1 sampled frame a second
    for u in body["utterances"]:
        assert u["face"]["coverage"] >= 0.9 and u["face"]["emotion"]
        assert u["voice"]["pitch_median_hz"] > 0 and u["voice"]["speaking_rate_wps"] > 0
        # espeak-ng's synthetic voice: measured, no emotion read from it, and said so.
        assert u["voice"]["emotion"] is None and "synthetic" in u["voice"]["emotion_note"]
        assert u["combined"]["channels"] == ["text", "face"]
    assert body["channels"]["voice"]["emotion_model"].startswith("voice-emotion-whisper")
    # One voice and one face on screen while it talks: one speaker, the face tied to it.
    assert [s["name"] for s in body["speakers"]] == ["Speaker 1"]
    assert body["speakers"][0]["face_person"] is not None
    assert {u["speaker"] for u in body["utterances"]} == {1} and body["speaker_turns"]

    job = AnalysisJob.objects.get(pk=body["id"])
    rows = list(csv.DictReader(io.StringIO(results_csv(job))))
    assert len(rows) == len(body["utterances"])
    assert rows[0]["face_emotion"] == body["utterances"][0]["face"]["emotion"]
    assert float(rows[0]["voice_pitch_median_hz"]) > 0
    assert rows[0]["combined_channels"] == "text+face"
    assert rows[0]["voice_emotion"] == "" and rows[0]["voice_joy"] == ""

    client.force_login(user)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "How this video was read" in page and "mobilenetv2-rafdb-fer" in page
    assert 'id="face-chart"' in page and '<span class="kind">Face:</span>' in page
    assert "Voice: " in page and "trained on acted" in page

    schema = api.get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    utterance = schema["components"]["schemas"]["Utterance"]["properties"]
    assert {"face", "voice", "combined"} <= set(utterance)
    voice = schema["components"]["schemas"]["Voice"]["properties"]
    assert {"emotion", "emotion_scores", "arousal", "sentiment", "emotion_note"} <= set(voice)
