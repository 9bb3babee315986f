"""Health endpoints and metrics against the real database and broker."""

import pytest
from django.urls import reverse


def test_liveness(client):
    response = client.get(reverse("health-live"))
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.postgres
@pytest.mark.redis
def test_readiness_checks_database_and_broker(postgres, redis_broker_url, client):
    response = client.get(reverse("health-ready"))
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readiness_fails_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get(reverse("health-ready"))
    assert response.status_code == 503
    # Which check failed, not the exception's text (hosts, ports, versions): that is logged.
    assert response.json()["checks"] == {"database": "ok", "broker": "unavailable"}


@pytest.mark.redis
@pytest.mark.django_db
def test_metrics_expose_jobs_and_queue_depth(client, redis_broker_url, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get(reverse("metrics")).status_code == 401
    response = client.get(reverse("metrics"), headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'analysis_jobs{status="queued"} 0.0' in text
    assert 'celery_queue_depth{queue="inference"}' in text


@pytest.mark.django_db
def test_metrics_are_closed_without_a_token_unless_opened(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = False
    closed = client.get(reverse("metrics"))
    assert closed.status_code == 403 and b"METRICS_TOKEN" in closed.content
    settings.METRICS_PUBLIC = True
    assert client.get(reverse("metrics")).status_code == 200


def test_deploy_checks_clean_with_production_settings():
    """`manage.py check --deploy` with the prod settings module and production-like env."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": "x" * 64 + "-production-like-secret-key-for-the-deploy-check",
        "DJANGO_ALLOWED_HOSTS": "sentiment.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
