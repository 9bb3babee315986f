"""API keys: hashed at rest, verified in constant time, last use recorded to the minute."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.api_keys import create_api_key, revoke_api_key, verify_api_key
from accounts.models import ApiKey, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_pair():
    user = User.objects.create_user("keys@example.com", "pw-Keys-12345")
    return create_api_key(user, "ci")


def test_only_a_hash_is_stored(key_pair):
    key, plain = key_pair
    stored = ApiKey.objects.get(pk=key.pk)
    assert plain.split("_", 2)[2] not in stored.key_hash
    assert verify_api_key(plain) == key
    assert verify_api_key(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    revoke_api_key(key)
    assert verify_api_key(plain) is None


def test_last_use_is_written_at_most_once_a_minute(key_pair, django_assert_num_queries):
    key, plain = key_pair
    first = verify_api_key(plain).last_used_at
    with django_assert_num_queries(1):  # the lookup only: no write within the minute
        assert verify_api_key(plain).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    assert verify_api_key(plain).last_used_at > first - timedelta(seconds=1)
    assert ApiKey.objects.get(pk=key.pk).last_used_at >= first
    assert ApiKey.objects.get(pk=key.pk).last_used_at <= timezone.now()
