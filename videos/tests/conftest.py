"""Fixtures for the videos app: users, API clients and generated media (never committed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from mlcore import testmedia

SENTENCES = [
    "I can't believe you did that, this is wonderful news.",
    "Why would you ever say something so terrible to me?",
]


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user("owner@example.com", "pw-Owner-12345")


@pytest.fixture
def other_user(db) -> User:
    return User.objects.create_user("other@example.com", "pw-Other-12345")


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos-media")


@pytest.fixture(scope="session")
def talking_clip(media_dir) -> Path:
    """A real clip: moving test pattern + espeak-ng speech of two sentences."""
    return testmedia.make_talking_clip(media_dir / "talking.mp4", SENTENCES)
