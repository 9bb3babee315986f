"""Speakers of a finished analysis: shown per utterance and per speaker in the API, the page,
CSV and subtitles, and named by their owner (API PATCH and the page's form)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from videos import subtitles
from videos.exports import results_csv
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.testing import make_stored_video

pytestmark = pytest.mark.django_db


def _speaker(i: int, talk: float, share: float, emotion: str) -> dict:
    reading = {"emotion": emotion, "sentiment": "neutral"}
    return {
        "id": i,
        "name": f"Speaker {i}",
        "talk_s": talk,
        "share": share,
        "utterance_count": 1,
        "text": reading,
        "face": {"emotion": emotion, "frames": 4} if i == 1 else None,
        "voice": reading | {"mean_arousal": 0.4, "pitch_median_hz": 120.0},
        "combined": reading,
        "face_person": 1 if i == 1 else None,
        "face_note": "Face track 1 is on screen ..." if i == 1 else "No face was seen ...",
    }


def _job(owner, status=JobStatus.SUCCEEDED) -> AnalysisJob:
    video = make_stored_video(owner, original_name="interview.mp4", duration=10.0)
    job = AnalysisJob.objects.create(
        video=video,
        owner=owner,
        status=status,
        speakers=[_speaker(1, 3.0, 0.6, "joy"), _speaker(2, 2.0, 0.4, "anger")],
        speaker_turns=[
            {"start": 0.5, "end": 3.5, "speaker": 1},
            {"start": 4.0, "end": 6.0, "speaker": 2},
        ],
        channels={"speakers": {"used": True, "model": "campplus-zh-en-common", "count": 2,
                               "method": "...", "note": "2 speakers told apart by voice."}},
    )  # fmt: skip
    for index, (start, end, text, who, emotion) in enumerate(
        [(0.5, 3.5, "Welcome to the show.", 1, "joy"), (4.0, 6.0, "Glad to be here.", 2, "anger")]
    ):
        Utterance.objects.create(
            job=job, index=index, start=start, end=end, text=text, speaker=who,
            emotion=emotion, sentiment="neutral",
            emotion_scores={emotion: 0.9}, sentiment_scores={"neutral": 0.8},
        )  # fmt: skip
    return job


@pytest.fixture
def job(user, media_root) -> AnalysisJob:
    return _job(user)


def test_the_api_lists_speakers_turns_and_each_utterances_speaker(api, job):
    body = api.get(reverse("api-analysis", args=[job.pk])).json()
    assert [s["name"] for s in body["speakers"]] == ["Speaker 1", "Speaker 2"]
    assert body["speakers"][0]["face_person"] == 1 and body["speakers"][1]["face"] is None
    assert [u["speaker"] for u in body["utterances"]] == [1, 2]
    assert body["speaker_turns"][1] == {"start": 4.0, "end": 6.0, "speaker": 2}


def test_speakers_are_named_through_the_api_and_the_names_show_everywhere(api, job):
    url = reverse("api-analysis-speakers", args=[job.pk])
    response = api.patch(url, {"names": {"1": "  Ann  Lee ", "2": "Tom & <Jerry>"}}, format="json")
    assert response.status_code == 200, response.content
    assert [s["name"] for s in response.json()] == ["Ann Lee", "Tom & <Jerry>"]
    body = api.get(reverse("api-analysis", args=[job.pk])).json()
    assert [s["name"] for s in body["speakers"]] == ["Ann Lee", "Tom & <Jerry>"]

    job.refresh_from_db()
    vtt, _ = subtitles.job_subtitles(job, "vtt")
    assert "<v Ann Lee>Welcome to the show.</v>\n<v Ann Lee>[joy · neutral]</v>" in vtt
    assert "<v Tom &amp; &lt;Jerry&gt;>Glad to be here.</v>" in vtt
    srt, _ = subtitles.job_subtitles(job, "srt")
    assert "Ann Lee: Welcome to the show.\n[joy · neutral]" in srt
    rows = list(csv.DictReader(io.StringIO(results_csv(job))))
    assert [(r["speaker"], r["speaker_name"]) for r in rows] == [
        ("1", "Ann Lee"),
        ("2", "Tom & <Jerry>"),
    ]

    # An empty name gives the speaker its number back.
    api.patch(url, {"names": {"2": ""}}, format="json")
    job.refresh_from_db()
    assert job.speaker_names == {"1": "Ann Lee"}


def test_renaming_refuses_what_it_cannot_do(api, job, user, other_user, media_root):
    url = reverse("api-analysis-speakers", args=[job.pk])
    unknown = api.patch(url, {"names": {"3": "Zoe"}}, format="json")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_speaker"
    long = api.patch(url, {"names": {"1": "x" * 61}}, format="json")
    assert long.status_code == 400 and long.json()["error"]["code"] == "invalid_request"
    not_dict = api.patch(url, {"names": ["Ann"]}, format="json")
    assert not_dict.status_code == 400
    queued = _job(user, status=JobStatus.QUEUED)
    early = api.patch(
        reverse("api-analysis-speakers", args=[queued.pk]), {"names": {"1": "A"}}, format="json"
    )
    assert early.status_code == 409 and early.json()["error"]["code"] == "no_results"
    theirs = _job(other_user)
    other = api.patch(
        reverse("api-analysis-speakers", args=[theirs.pk]), {"names": {"1": "A"}}, format="json"
    )
    assert other.status_code == 404
    job.refresh_from_db()
    assert job.speaker_names == {}


def test_the_page_shows_who_speaks_and_its_form_names_them(client, user, job):
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[job.pk]))
    html = page.content.decode()
    assert 'id="speakers"' in html and 'name="name-1" value="Speaker 1"' in html
    assert '<span class="speaker-tag">Speaker 2:</span>' in html
    assert page.context["chart_data"]["speakers"] == ["Speaker 1", "Speaker 2"]
    assert [u["speaker"] for u in page.context["chart_data"]["utterances"]] == [
        "Speaker 1",
        "Speaker 2",
    ]

    response = client.post(reverse("job-speakers", args=[job.pk]), {"name-1": "Ann"})
    assert response.status_code == 302 and response["Location"].endswith("#speakers")
    html = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'name="name-1" value="Ann"' in html and '<span class="speaker-tag">Ann:</span>' in html

    refused = client.post(reverse("job-speakers", args=[job.pk]), {"name-9": "Nobody"}, follow=True)
    assert "No speaker 9" in refused.content.decode()


def test_one_speaker_gets_no_speaker_tags_in_the_transcript(client, user, media_root):
    job = _job(user)
    job.speakers = job.speakers[:1]
    job.save()
    job.utterances.update(speaker=1)
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[job.pk]))
    assert 'class="speaker-tag"' not in page.content.decode()
    assert page.context["chart_data"]["speakers"] == []
