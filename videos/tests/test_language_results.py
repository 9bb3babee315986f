"""The spoken language and translations as the page, the API and the CSV show them."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from videos.models import AnalysisJob, JobStatus, Utterance
from videos.testing import make_stored_video

SCORES = {"anger": 0.05, "disgust": 0.05, "fear": 0.05, "joy": 0.6, "neutral": 0.1}
SCORES |= {"sadness": 0.1, "surprise": 0.05}
SENTIMENT = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}


@pytest.fixture
def german_job(user, media_root) -> AnalysisJob:
    video = make_stored_video(user, original_name="interview.mp4", duration=12.0)
    job = AnalysisJob.objects.create(
        video=video,
        owner=user,
        status=JobStatus.SUCCEEDED,
        language="de",
        language_probability=0.97,
        summary={"speech_detected": True, "utterance_count": 2, "speech_duration": 6.0},
        channels={
            "text": {
                "used": True,
                "model": "meld-text-minilm-v2",
                "context": {"previous": 1, "following": 1},
                "transcription": "whisper-base",
                "languages": [
                    {"start": 0.5, "end": 3.5, "language": "de", "probability": 0.97},
                    {"start": 5.0, "end": 8.0, "language": "pt", "probability": 0.21},
                ],
                "note": "1 utterance(s) in German were read through Whisper's English translation",
            }
        },
    )
    Utterance.objects.create(
        job=job, index=0, start=0.5, end=3.5, text="I am very happy today.",
        original_text="Ich bin heute sehr glücklich.", translated=True, language="de",
        language_probability=0.97, emotion="joy", emotion_scores=SCORES, sentiment="positive",
        sentiment_scores=SENTIMENT,
    )  # fmt: skip
    Utterance.objects.create(
        job=job, index=1, start=5.0, end=8.0, text="Hmm la la", language="pt",
        language_probability=0.21,
    )  # fmt: skip
    return job


def test_the_page_names_the_language_and_shows_the_original_words(client, user, german_job):
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[german_job.pk])).content.decode()
    assert "Spoken language" in page and "German" in page and "97% sure" in page
    assert "1 utterance read through Whisper's English translation" in page
    assert "Spoken in German: Ich bin heute sehr glücklich." in page
    assert "I am very happy today." in page
    # The uncertain stretch says how unsure the identification was, and has no text label.
    assert "Portuguese, 21% sure" in page
    # Which Whisper wrote the transcript, and every identified stretch, in the channel box.
    assert "transcript: whisper-base" in page
    assert "each utterance read with 1 before and 1 after it" in page
    assert "spoken: German 0:00–0:03 (97%), Portuguese 0:05–0:08 (21%)" in page
    assert "no text label" in page


def test_the_api_and_csv_carry_language_and_translation(client, user, german_job):
    client.force_login(user)
    body = client.get(reverse("job-results-json", args=[german_job.pk])).json()
    assert (body["language"], body["language_probability"]) == ("de", 0.97)
    first, second = body["utterances"]
    assert first["translated"] is True
    assert first["original_text"] == "Ich bin heute sehr glücklich."
    assert (first["language"], first["emotion"]) == ("de", "joy")
    assert second["emotion"] is None and second["emotion_scores"] is None
    assert (second["language"], second["language_probability"]) == ("pt", 0.21)
    rows = list(csv.DictReader(io.StringIO(client.get(
        reverse("job-results-csv", args=[german_job.pk])
    ).content.decode())))  # fmt: skip
    assert rows[0]["original_text"] == "Ich bin heute sehr glücklich."
    assert (rows[0]["translated"], rows[0]["language"]) == ("yes", "de")
    assert (rows[1]["emotion"], rows[1]["language_probability"]) == ("", "0.2100")
