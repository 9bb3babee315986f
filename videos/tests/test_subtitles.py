"""Subtitles (WebVTT and SRT): one cue per utterance with its words and labels, from the page
and the API, and as the job page's <track>."""

from __future__ import annotations

import pytest
from django.urls import reverse

from videos import subtitles
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.testing import make_stored_video

pytestmark = pytest.mark.django_db


def _utterance(index: int, start: float, end: float, text: str, **fields) -> Utterance:
    values = {"emotion": "joy", "sentiment": "positive"} | fields
    return Utterance(index=index, start=start, end=end, text=text, **values)


@pytest.fixture
def job(user, media_root) -> AnalysisJob:
    video = make_stored_video(user, original_name="team talk.mp4", duration=4000.0)
    job = AnalysisJob.objects.create(video=video, owner=user, status=JobStatus.SUCCEEDED)
    rows = [
        _utterance(0, 1.0, 3.25, "This is wonderful news."),
        _utterance(1, 5.5, 9.0, "Tom & <b>Jerry</b> --> said\n\nno", emotion="anger",
                   sentiment="negative", voice={"emotion": "fear", "arousal": 0.9}),
        _utterance(2, 3661.5, 3663.004, "Ça va très bien.", emotion="", sentiment="",
                   face={"emotion": "happy"}, voice={"emotion": "joy"}),
        _utterance(3, 3670.0, 3670.0, "Hola amigos", emotion="", sentiment="",
                   original_text="Hola amigos", translated=False),
        _utterance(4, 3680.0, 3682.0, "Hello friends", original_text="Hola amigos",
                   translated=True, emotion="joy", sentiment="positive"),
    ]  # fmt: skip
    for row in rows:
        row.job = job
    Utterance.objects.bulk_create(rows)
    return job


EXPECTED_VTT = """WEBVTT

1
00:00:01.000 --> 00:00:03.250
This is wonderful news.
[joy · positive]

2
00:00:05.500 --> 00:00:09.000
Tom &amp; &lt;b&gt;Jerry&lt;/b&gt; -&gt; said no
[anger · negative · voice: fear]

3
01:01:01.500 --> 01:01:03.004
Ça va très bien.
[no text label · face: happy · voice: joy]

4
01:01:10.000 --> 01:01:10.001
Hola amigos
[no text label]

5
01:01:20.000 --> 01:01:22.000
Hola amigos
(Hello friends)
[joy · positive]
"""


def test_webvtt(job):
    body, content_type = subtitles.job_subtitles(job, "vtt")
    assert content_type == "text/vtt; charset=utf-8"
    assert body == EXPECTED_VTT


def test_srt(job):
    body, content_type = subtitles.job_subtitles(job, "srt")
    assert content_type == "application/x-subrip; charset=utf-8"
    blocks = body.strip().split("\n\n")
    assert len(blocks) == 5
    assert (
        blocks[0] == "1\n00:00:01,000 --> 00:00:03,250\nThis is wonderful news.\n[joy · positive]"
    )
    # SRT has no markup escapes; the line structure is what must not break.
    assert blocks[1].splitlines()[2] == "Tom & <b>Jerry</b> -> said no"
    assert blocks[2].splitlines()[1] == "01:01:01,500 --> 01:01:03,004"


def test_no_utterances_is_a_valid_file(user, media_root):
    video = make_stored_video(user)
    job = AnalysisJob.objects.create(video=video, owner=user, status=JobStatus.SUCCEEDED)
    assert subtitles.job_subtitles(job, "vtt")[0] == "WEBVTT\n"
    assert subtitles.job_subtitles(job, "srt")[0] == ""


def test_page_urls(client, user, job):
    client.force_login(user)
    inline = client.get(reverse("job-subtitles-vtt", args=[job.pk]))
    assert inline.status_code == 200 and inline["Content-Type"] == "text/vtt; charset=utf-8"
    assert inline["Content-Disposition"].startswith("inline")  # for the <track>
    assert inline.content.decode() == EXPECTED_VTT
    download = client.get(reverse("job-subtitles-srt", args=[job.pk]), {"download": "1"})
    assert download["Content-Type"] == "application/x-subrip; charset=utf-8"
    assert download["Content-Disposition"] == 'attachment; filename="team talk-subtitles.srt"'
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    vtt_url = reverse("job-subtitles-vtt", args=[job.pk])
    assert f'<track kind="subtitles" default src="{vtt_url}"' in page
    assert f'href="{vtt_url}?download=1" download' in page
    assert f'href="{reverse("job-subtitles-srt", args=[job.pk])}?download=1" download' in page


def test_page_urls_are_the_owners_only(client, other_user, job):
    client.force_login(other_user)
    assert client.get(reverse("job-subtitles-vtt", args=[job.pk])).status_code == 404


def test_api_urls(api, job, other_user):
    vtt = api.get(reverse("api-analysis-subtitles-vtt", args=[job.pk]), HTTP_ACCEPT="text/vtt")
    assert vtt.status_code == 200 and vtt["Content-Type"] == "text/vtt; charset=utf-8"
    assert vtt.content.decode() == EXPECTED_VTT
    srt = api.get(reverse("api-analysis-subtitles-srt", args=[job.pk]))
    assert srt.status_code == 200 and srt.content.decode().startswith("1\n00:00:01,000")
    assert srt["Content-Disposition"] == 'attachment; filename="team talk-subtitles.srt"'

    job.status = JobStatus.RUNNING
    job.save()
    refused = api.get(reverse("api-analysis-subtitles-vtt", args=[job.pk]), HTTP_ACCEPT="text/vtt")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_results"

    api.force_authenticate(other_user)
    missing = api.get(reverse("api-analysis-subtitles-vtt", args=[job.pk]))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_api_schema_lists_the_new_endpoints(api):
    schema = api.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert (
        "text/vtt"
        in paths["/api/v1/analyses/{id}/subtitles.vtt"]["get"]["responses"]["200"]["content"]
    )
    assert "post" in paths["/api/v1/analyses/{id}/rerun"]
    assert "get" in paths["/api/v1/webhook-secret"]
    assert "post" in paths["/api/v1/webhook-secret/rotate"]
    analysis = schema["components"]["schemas"]["Analysis"]["properties"]
    assert {"callback_url", "callback_deliveries", "rerun_of"} <= set(analysis)
    assert "refunded in full" in paths["/api/v1/analyses/{id}"]["delete"]["description"]
