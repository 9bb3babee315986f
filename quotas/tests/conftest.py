"""Fixtures for quotas: users on a chosen plan, API clients and one real generated clip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from accounts.models import User
from mlcore import testmedia
from quotas import services
from quotas.models import Plan

MB = 1024 * 1024


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A real 3.5 s talking clip (320x240, ~330 KB), made once per test run."""
    folder = tmp_path_factory.mktemp("quotas-media")
    return testmedia.make_talking_clip(folder / "clip.mp4", ["Hello there, this is a test."])


@pytest.fixture
def make_plan(db) -> Callable[..., Plan]:
    def make(name: str = "Test", **limits: int) -> Plan:
        values = {
            "monthly_analyses": 10,
            "monthly_video_seconds": 3600,
            "max_file_bytes": 100 * MB,
            "max_duration_s": 600,
            "requests_per_minute": 1000,
            **limits,
        }
        return Plan.objects.create(name=name, **values)

    return make


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    counter = iter(range(1_000_000))

    def make(plan: Plan | None = None, **extra: object) -> User:
        user = User.objects.create_user(
            f"user{next(counter)}@example.com", "pw-User-12345", **extra
        )
        if plan is not None:
            services.change_plan(user, plan)
        return user

    return make


@pytest.fixture
def user(make_user, make_plan) -> User:
    return make_user(make_plan())
