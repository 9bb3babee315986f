"""Authentication (session or API key), ownership and the shared error shape."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.api_keys import create_api_key
from accounts.models import ApiKey
from videos.models import AnalysisJob, Utterance, Video


def _job(owner, status="succeeded") -> AnalysisJob:
    video = Video.objects.create(
        owner=owner,
        file="videos/x/source",
        original_name="a.mp4",
        size=10,
        sha256="0" * 64,
        duration=3.0,
        width=320,
        height=240,
        has_audio=True,
    )
    job = AnalysisJob.objects.create(video=video, owner=owner, status=status)
    Utterance.objects.create(
        job=job,
        index=0,
        start=0.1,
        end=1.2,
        text="hello",
        emotion="joy",
        emotion_scores={"joy": 0.9},
        sentiment="positive",
        sentiment_scores={"positive": 0.8},
    )
    return job


@pytest.mark.django_db
def test_unauthenticated_is_401_with_error_shape():
    response = APIClient().get(reverse("api-analyses"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_api_key_lifecycle(api, user):
    created = api.post(reverse("api-keys"), {"name": "ci"}, format="json")
    assert created.status_code == 201
    plain = created.json()["key"]
    stored = ApiKey.objects.get()
    assert plain not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
    assert "key" not in api.get(reverse("api-keys")).json()[0]  # shown once only

    by_key = APIClient(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    assert by_key.get(reverse("api-analyses")).status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    assert api.delete(reverse("api-key", args=[stored.pk])).status_code == 204
    revoked = by_key.get(reverse("api-analyses"))
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
def test_wrong_api_key_is_401(user):
    _, plain = create_api_key(user, "k")
    tampered = plain[:-2] + ("aa" if not plain.endswith("aa") else "bb")
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {tampered}")
    assert client.get(reverse("api-analyses")).status_code == 401


@pytest.mark.django_db
def test_other_users_job_is_404_everywhere(api, user, other_user, client):
    job = _job(other_user)
    url = reverse("api-analysis", args=[job.pk])
    assert api.get(url).status_code == 404
    assert api.get(url).json()["error"]["code"] == "not_found"
    assert api.delete(url).status_code == 404
    assert AnalysisJob.objects.filter(pk=job.pk).exists()
    assert api.get(reverse("api-analyses")).json()["count"] == 0
    client.force_login(user)
    assert client.get(reverse("job-detail", args=[job.pk])).status_code == 404
    assert client.post(reverse("job-delete", args=[job.pk])).status_code == 404


@pytest.mark.django_db
def test_detail_list_and_filter(api, user):
    done = _job(user)
    running = _job(user, status="running")
    body = api.get(reverse("api-analysis", args=[done.pk])).json()
    assert body["utterances"][0]["text"] == "hello"
    assert body["utterances"][0]["emotion"] == "joy"
    polling = api.get(reverse("api-analysis", args=[running.pk]))
    assert polling["Retry-After"] == "1"
    assert polling.json()["utterances"] is None
    listing = api.get(reverse("api-analyses"), {"status": "running"}).json()
    assert [j["id"] for j in listing["results"]] == [str(running.pk)]
    queued = _job(user, status="queued")
    unfinished = api.get(reverse("api-analyses"), {"status": "queued,running"}).json()
    assert {j["id"] for j in unfinished["results"]} == {str(running.pk), str(queued.pk)}
    bad = api.get(reverse("api-analyses"), {"status": "running,nope"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_status"


@pytest.mark.django_db
def test_direct_upload_needs_s3(api):
    response = api.post(reverse("api-uploads"), {"filename": "a.mp4"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "direct_upload_unavailable"


@pytest.mark.django_db
def test_openapi_schema_and_docs(client, user):
    schema = client.get(reverse("api-schema"), {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/analyses" in paths and "/api/v1/analyses/{id}" in paths
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
