"""The project is consistent: system checks and migrations, settings defaults and queues."""

import pytest
from django.core.management import call_command

from config.celery import app


def test_system_check_is_clean():
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_celery_has_default_and_inference_queues():
    assert {q.name for q in app.conf.task_queues} == {"default", "inference"}
    assert app.conf.task_default_queue == "default"
    assert app.conf.worker_prefetch_multiplier == 1


def test_embedded_defaults_need_no_server(tmp_path, monkeypatch):
    """With nothing set, settings pick SQLite under var/, local files, filesystem broker."""
    import importlib

    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    from config.settings import base

    try:
        fresh = importlib.reload(base)
        assert fresh.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
        assert str(fresh.DATABASES["default"]["NAME"]).startswith(str(tmp_path))
        assert fresh.CELERY_BROKER_URL == "filesystem://"
        assert (tmp_path / "broker" / "queue").is_dir()
        assert fresh.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage")
        assert fresh.MEDIA_ROOT == tmp_path / "media"
    finally:
        monkeypatch.undo()
        importlib.reload(base)


def test_environment_switches_to_postgres_redis_and_s3(monkeypatch):
    import importlib

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5432/vs")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://cache.example:6379/0")
    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", "videos")
    from config.settings import base

    try:
        fresh = importlib.reload(base)
        assert fresh.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        assert fresh.DATABASES["default"]["HOST"] == "db.example"
        assert fresh.CELERY_BROKER_URL.startswith("redis://")
        assert fresh.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 3600
        assert fresh.STORAGES["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    finally:
        monkeypatch.undo()
        importlib.reload(base)
