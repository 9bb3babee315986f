"""Schema-driven fuzz of the JSON API: Schemathesis generates requests from our own OpenAPI schema
(valid and invalid bodies, parameters and uploads) for every operation; none may answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from accounts.api_keys import create_api_key
from accounts.models import ApiKey, User
from quotas.models import Plan, UserQuota
from videos.tests.test_api_access import _job


@pytest.fixture
def wsgi_requests(db, media_root) -> Iterator[None]:
    # As Django's test client does: the request cycle must not close the test's DB connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(db) -> tuple[ApiKey, str]:
    user = User.objects.create_user("fuzz@example.com", "pw-Fuzz-12345")
    # A generous plan so the fuzz reaches the views instead of the rate limit.
    plan = Plan.objects.create(
        name="fuzz",
        monthly_analyses=10_000,
        monthly_video_seconds=10**7,
        max_file_bytes=10**8,
        max_duration_s=3600,
        requests_per_minute=10**6,
    )
    UserQuota.objects.update_or_create(user=user, defaults={"plan": plan})
    _job(user)  # something to list, read and delete
    return create_api_key(user, "fuzz")


# The schema the API serves at /api/v1/schema, built without a request (no database at collection).
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()  # calls go in-process through Django's WSGI handler


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, fuzz_key, wsgi_requests):
    key, plain = fuzz_key
    # A generated DELETE /keys/{pk} may revoke the fuzzer's own key; keep it usable.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=None)
    response = case.call(headers={"Authorization": f"Api-Key {plain}"})
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
