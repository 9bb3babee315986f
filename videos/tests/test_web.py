"""The web pages through Django's test client: owner checks, downloads, Range requests, API keys."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from accounts.api_keys import create_api_key, verify_api_key
from accounts.models import ApiKey
from mlcore.labels import EMOTIONS, SENTIMENTS
from quotas.services import usage_summary
from videos.exports import CSV_COLUMNS
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.streaming import RangeNotSatisfiable, parse_range
from videos.testing import make_stored_video

pytestmark = pytest.mark.django_db

VIDEO_BYTES = bytes(range(256)) * 40  # 10240 bytes, every offset recognisable


def _scores(labels: tuple[str, ...], top: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(labels) - 1)
    return {label: (p if label == top else rest) for label in labels}


def _make_job(owner, status: str = JobStatus.SUCCEEDED, **fields) -> AnalysisJob:
    video = make_stored_video(owner, VIDEO_BYTES, original_name="team meeting.mp4", duration=12.5)
    return AnalysisJob.objects.create(video=video, owner=owner, status=status, **fields)


@pytest.fixture
def finished_job(user, media_root) -> AnalysisJob:
    job = _make_job(
        user,
        stage="done",
        progress=100,
        summary={
            "speech_detected": True,
            "message": "2 utterances analysed.",
            "utterance_count": 2,
            "speech_duration": 7.0,
            "dominant_emotion": "joy",
            "dominant_sentiment": "positive",
            "emotion_distribution": _scores(EMOTIONS, "joy", 0.61),
            "sentiment_distribution": _scores(SENTIMENTS, "positive", 0.7),
        },
    )
    texts = [
        ("This is wonderful news.", "joy", "positive"),
        ("=HYPERLINK(evil)", "anger", "negative"),
    ]
    for index, (text, emotion, sentiment) in enumerate(texts):
        Utterance.objects.create(
            job=job,
            index=index,
            start=1.0 + 5 * index,
            end=4.5 + 5 * index,
            text=text,
            emotion=emotion,
            emotion_scores=_scores(EMOTIONS, emotion, 0.82),
            sentiment=sentiment,
            sentiment_scores=_scores(SENTIMENTS, sentiment, 0.64),
        )
    return job


@pytest.fixture
def owner_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def other_client(client, other_user):
    client.force_login(other_user)
    return client


OWNED_PAGES = ["job-detail", "job-video", "job-results-json", "job-results-csv"]


@pytest.mark.parametrize("name", ["dashboard", "upload", "api-keys-page", "api-guide"])
def test_pages_need_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("name", OWNED_PAGES)
def test_another_users_job_is_404(other_client, finished_job, name):
    assert other_client.get(reverse(name, args=[finished_job.pk])).status_code == 404
    delete = other_client.post(reverse("job-delete", args=[finished_job.pk]))
    assert delete.status_code == 404
    assert AnalysisJob.objects.filter(pk=finished_job.pk).exists()


def test_nav_and_dashboard(owner_client, finished_job, other_user):
    _make_job(other_user)  # someone else's: never listed
    running = _make_job(finished_job.owner, status=JobStatus.RUNNING, stage="transcribe")
    running.progress = 37
    running.save()
    page = owner_client.get(reverse("dashboard")).content.decode()
    for label in ("Dashboard", "Upload", "API keys", "API guide", "Log out"):
        assert f">{label}<" in page
    assert 'aria-current="page">Dashboard' in page
    assert page.count("<tr data-job=") == 2  # own jobs only
    running_api = reverse("api-analysis", args=[running.pk])
    # Polled by dashboard.js: every page of the unfinished jobs, not page 1 of all of them.
    assert f'<tr data-job="{running.pk}" data-api-url="{running_api}" data-live>' in page
    assert f'data-list-url="{reverse("api-analyses")}?status=queued,running"' in page
    assert 'value="37"' in page and "0:12" in page  # progress and duration
    assert 'class="badge emotion-joy"' in page  # dominant emotion of the finished job
    limits = usage_summary(finished_job.owner).limits
    assert f"<strong>0</strong> of {limits.analyses} used" in page  # quota meter (no charges here)
    assert f"of {limits.video_seconds / 60:g} used" in page
    assert reverse("upload") in page


def test_upload_page_renders_limits_and_works_without_js(owner_client, settings, media_root):
    settings.MAX_UPLOAD_BYTES = 3 * 1024 * 1024
    page = owner_client.get(reverse("upload")).content.decode()
    assert f'data-max-bytes="{3 * 1024 * 1024}"' in page  # below the Free plan's 200 MB
    assert 'enctype="multipart/form-data"' in page and "csrfmiddlewaretoken" in page
    assert 'data-api-analyses="/api/v1/analyses"' in page

    # The plain form (no JavaScript) reports a refused file in the page.
    bogus = ContentFile(b"not a video at all\n" * 50, name="notes.mp4")
    response = owner_client.post(reverse("upload"), {"file": bogus})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert not AnalysisJob.objects.exists()


def test_running_job_page_polls_the_api(owner_client, user, media_root):
    job = _make_job(user, status=JobStatus.RUNNING, stage="transcribe", progress=42)
    page = owner_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert f'data-api-url="{reverse("api-analysis", args=[job.pk])}"' in page
    assert 'data-finished="false"' in page
    assert "Transcribing the speech" in page and 'value="42"' in page
    labels = json.loads(page.split('id="stage-labels" type="application/json">')[1].split("<")[0])
    assert labels["inference"] == "Recognising emotions"
    assert 'http-equiv="refresh"' not in page  # no reloading: JavaScript polls
    assert "Cancel analysis" in page


def test_failed_job_says_why(owner_client, user, media_root):
    job = _make_job(
        user,
        status=JobStatus.FAILED,
        stage="failed",
        error_code="no_video_stream",
        error_message="The file has no video stream.",
    )
    page = owner_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'role="alert"' in page and "The file has no video stream." in page
    assert reverse("job-results-csv", args=[job.pk]) not in page


def test_results_page(owner_client, finished_job):
    response = owner_client.get(reverse("job-detail", args=[finished_job.pk]))
    page = response.content.decode()
    assert f'src="{reverse("job-video", args=[finished_job.pk])}"' in page
    assert page.count('class="utterance"') == 2
    assert "This is wonderful news." in page
    assert 'class="badge emotion-joy"' in page and "82%" in page and "64%" in page
    for canvas in ("timeline-chart", "sentiment-chart", "distribution-chart"):
        assert f'<canvas id="{canvas}"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page and "cdn" not in page.lower()
    data = response.context["chart_data"]
    assert [u["emotion"] for u in data["utterances"]] == ["joy", "anger"]
    assert data["utterances"][0]["polarity"] == pytest.approx(0.64 - 0.18)
    assert data["duration"] == 12.5 and data["emotions"] == list(EMOTIONS)
    assert reverse("job-results-json", args=[finished_job.pk]) in page


def test_a_silent_video_shows_its_face_timeline(owner_client, user, media_root):
    """No speech: the page shows what the face channel read, not an empty success."""
    track = [
        {
            "time": t / 2,
            "faces": 1,
            "box": [0.3, 0.2, 0.6, 0.7],
            "scores": _scores(EMOTIONS, "joy", 0.8),
        }
        for t in range(8)
    ] + [{"time": 4.0, "faces": 0, "box": None, "scores": None}]
    job = _make_job(
        user,
        stage="done",
        progress=100,
        summary={
            "speech_detected": False,
            "message": "No speech detected: the language model had nothing to classify. "
            "The face channel read 8 frames with a face: see the face timeline.",
            "utterance_count": 0,
            "face": {
                "frames": 9,
                "frames_with_face": 8,
                "coverage": 8 / 9,
                "max_faces": 1,
                "dominant_emotion": "joy",
                "mean_emotion_scores": _scores(EMOTIONS, "joy", 0.8),
            },
        },
        channels={
            "text": {"used": False, "model": "meld-text-minilm-v1", "note": "No speech."},
            "face": {
                "used": True,
                "model": "mobilenetv2-rafdb-fer + blazeface",
                "frames": 9,
                "frames_with_face": 8,
                "note": "",
            },
            "voice": {"used": False, "method": "pyin", "note": "The video has no audio track."},
        },
        face_track=track,
    )
    response = owner_client.get(reverse("job-detail", args=[job.pk]))
    page = response.content.decode()
    assert '<canvas id="face-chart"' in page and 'id="face-summary"' in page
    assert "a face in 8 of 9 sampled frames" in page and "The video has no audio track." in page
    assert [f["emotion"] for f in response.context["chart_data"]["face_track"]] == ["joy"] * 8
    api_body = owner_client.get(reverse("api-analysis", args=[job.pk])).json()
    assert api_body["channels_used"] == ["face"]
    # Face-only results can be downloaded (the JSON holds the face timeline); CSV and subtitles,
    # one row or cue per utterance, would be empty and are not offered.
    assert 'id="face-json"' in page and "results.csv" not in page
    download = owner_client.get(reverse("job-results-json", args=[job.pk]))
    assert download.status_code == 200 and len(json.loads(download.content)["face_track"]) == 9


def test_results_json_download(owner_client, finished_job):
    response = owner_client.get(reverse("job-results-json", args=[finished_job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="team meeting-analysis.json"'
    body = json.loads(response.content)
    assert body["id"] == str(finished_job.pk) and body["status"] == "succeeded"
    assert body["summary"]["dominant_emotion"] == "joy"
    assert [u["text"] for u in body["utterances"]][0] == "This is wonderful news."
    assert body["utterances"][1]["emotion_scores"]["anger"] == pytest.approx(0.82)


def test_results_csv_download(owner_client, finished_job):
    response = owner_client.get(reverse("job-results-csv", args=[finished_job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "team meeting-analysis.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2
    first, second = rows
    assert first["text"] == "This is wonderful news."
    assert (first["start"], first["end"]) == ("1.000", "4.500")
    assert first["emotion"] == "joy" and first["emotion_confidence"] == "0.8200"
    assert first["sentiment"] == "positive" and first["sentiment_confidence"] == "0.6400"
    assert first["emotion_joy"] == "0.8200" and first["emotion_fear"] == "0.0300"
    assert second["text"] == "'=HYPERLINK(evil)"  # defused for spreadsheets


@pytest.mark.parametrize("name", ["job-results-json", "job-results-csv"])
def test_no_download_before_success(owner_client, user, media_root, name):
    job = _make_job(user, status=JobStatus.RUNNING)
    assert owner_client.get(reverse(name, args=[job.pk])).status_code == 404


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_video_whole_file(owner_client, finished_job):
    response = owner_client.get(reverse("job-video", args=[finished_job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(VIDEO_BYTES))
    assert _body(response) == VIDEO_BYTES


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, len(VIDEO_BYTES) - 1),  # open-ended, as players ask
        ("bytes=-40", len(VIDEO_BYTES) - 40, len(VIDEO_BYTES) - 1),  # the last 40 bytes
        ("bytes=10200-99999", 10200, len(VIDEO_BYTES) - 1),  # end past the file: clipped
    ],
)
def test_video_range(owner_client, finished_job, header, first, last):
    url = reverse("job-video", args=[finished_job.pk])
    response = owner_client.get(url, headers={"Range": header})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(VIDEO_BYTES)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert _body(response) == VIDEO_BYTES[first : last + 1]


def test_video_range_not_satisfiable(owner_client, finished_job):
    url = reverse("job-video", args=[finished_job.pk])
    response = owner_client.get(url, headers={"Range": f"bytes={len(VIDEO_BYTES)}-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(VIDEO_BYTES)}"


def test_parse_range_edge_cases():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-0", 100) == (0, 0)
    assert parse_range("bytes=0-9,20-29", 100) is None  # several ranges: the whole file
    assert parse_range("items=0-9", 100) is None
    assert parse_range("bytes=-500", 100) == (0, 99)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=50-10", 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-0", 100)


def test_api_keys_create_list_revoke(owner_client, user):
    page = owner_client.get(reverse("api-keys-page"))
    assert page.status_code == 200 and "No keys yet." in page.content.decode()

    # Post/Redirect/Get: the POST makes the key and redirects; the GET after it shows the key.
    created = owner_client.post(reverse("api-keys-page"), {"name": "nightly batch"})
    assert created.status_code == 302 and created["Location"] == reverse("api-keys-page")
    assert ApiKey.objects.filter(user=user).count() == 1
    shown = owner_client.get(created["Location"])
    assert "no-store" in shown["Cache-Control"]  # the page holding the secret is not cached
    html = shown.content.decode()
    plain = html.split('id="new-key" value="')[1].split('"')[0]
    key = ApiKey.objects.get(user=user)
    assert verify_api_key(plain) == key  # the shown key works
    assert 'data-copy="new-key"' in html and "nightly batch" in html
    assert "new_api_key" not in owner_client.session  # gone from the session once shown

    listing = owner_client.get(reverse("api-keys-page")).content.decode()
    assert plain not in listing  # shown once only
    assert f"vs_{key.prefix}_" in listing

    assert owner_client.get(reverse("api-key-revoke", args=[key.pk])).status_code == 405
    revoked = owner_client.post(reverse("api-key-revoke", args=[key.pk]), follow=True)
    assert revoked.status_code == 200 and "revoked" in revoked.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert verify_api_key(plain) is None


def test_api_key_name_is_required(owner_client, user):
    response = owner_client.post(reverse("api-keys-page"), {"name": ""})
    assert response.status_code == 400
    assert 'id="name-errors"' in response.content.decode()
    assert not ApiKey.objects.filter(user=user).exists()


def test_cannot_revoke_another_users_key(other_client, user):
    key, _ = create_api_key(user, "mine")
    assert other_client.post(reverse("api-key-revoke", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_forms_carry_csrf_tokens_and_posts_need_them(user, finished_job):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    pages = ["upload", "api-keys-page", "dashboard", "api-guide"]
    urls = [reverse(name) for name in pages] + [reverse("job-detail", args=[finished_job.pk])]
    for url in urls:
        page = browser.get(url).content.decode()
        assert page.count("<form") == page.count("csrfmiddlewaretoken"), url
    key, _ = create_api_key(user, "mine")
    assert browser.post(reverse("api-key-revoke", args=[key.pk])).status_code == 403
    assert browser.post(reverse("job-delete", args=[finished_job.pk])).status_code == 403
    assert AnalysisJob.objects.filter(pk=finished_job.pk).exists()


def test_api_guide_uses_the_request_base_url(owner_client, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "vs.example.org"]
    page = owner_client.get(reverse("api-guide"), HTTP_HOST="vs.example.org").content.decode()
    assert "export BASE=http://vs.example.org" in page
    assert 'curl -H "Authorization: Api-Key $KEY" -F file=@talk.mp4 $BASE/api/v1/analyses' in page
    assert "http://vs.example.org/api/v1/docs" in page


def test_a_missing_analysis_gets_the_sites_not_found_page(other_client, finished_job):
    """Another account's (or a deleted) analysis: a 404 in the site's own page, saying why and
    leading back, not a bare "Not Found"."""
    response = other_client.get(reverse("job-detail", args=[finished_job.pk]))
    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Not found</h1>" in page and "Video Sentiment" in page
    assert "deleted" in page and reverse("dashboard") in page


def test_the_server_error_page_stands_alone(rf):
    """500.html needs no context (Django renders it without one): it must render on its own."""
    from django.views.defaults import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
