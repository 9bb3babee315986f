"""The project is consistent: system checks and migrations, settings defaults and queues."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from config.celery import app


def test_system_check_is_clean():
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_celery_has_default_inference_and_webhooks_queues():
    assert {q.name for q in app.conf.task_queues} == {"default", "inference", "webhooks"}
    assert app.conf.task_default_queue == "default"
    assert app.conf.worker_prefetch_multiplier == 1


def test_embedded_defaults_need_no_server(tmp_path, monkeypatch):
    """With nothing set, settings pick SQLite under var/, local files, filesystem broker."""
    import importlib

    for name in (
        "DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME", "CACHE_URL", "REDIS_URL"
    ):  # fmt: skip
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
        # Rate-limit counters shared by every web process (not per-process memory).
        cache = fresh.CACHES["default"]
        assert cache["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
        assert cache["LOCATION"] == str(tmp_path / "cache")
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


ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter with the settings module scripts/run uses and nothing configured.
_PRODUCT_CHECK = """
import json
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client

call_command("migrate", verbosity=0)
call_command("collectstatic", "--noinput", verbosity=0)
client = Client(HTTP_HOST="localhost")
missing = client.get("/api/v1/no-such-thing")
page = client.get("/no-such-page")
print(json.dumps({
    "debug": settings.DEBUG,
    "home": client.get("/").status_code,
    "css": client.get(static("css/app.css")).status_code,
    "api_404": [missing.status_code, missing["Content-Type"], missing.content.decode()],
    "page_404": [page.status_code, page["Content-Type"]],
}))
"""


@pytest.mark.slow
def test_the_product_runs_with_debug_off_on_embedded_defaults(tmp_path):
    """scripts/run's settings: DEBUG off, static files still served, API errors as JSON."""
    module = re.search(r"DJANGO_SETTINGS_MODULE:-([\w.]+)", (ROOT / "scripts/run").read_text())
    unset = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "REDIS_URL", "DJANGO_DEBUG"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DJANGO_SETTINGS_MODULE=module.group(1), VAR_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", _PRODUCT_CHECK],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["home"] == 200 and seen["css"] == 200
    status, content_type, body = seen["api_404"]
    assert (status, content_type) == (404, "application/json")
    assert json.loads(body) == {"error": {"code": "not_found", "message": "Not found."}}
    assert seen["page_404"] == [404, "text/html; charset=utf-8"]


def test_api_server_errors_are_json_in_the_error_shape(rf):
    from config.urls import handler500

    response = resolve_handler(handler500)(rf.get("/api/v1/analyses"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"
    assert "<html" in resolve_handler(handler500)(rf.get("/dashboard")).content.decode().lower()


def resolve_handler(dotted: str):
    from django.utils.module_loading import import_string

    return import_string(dotted)


def test_deployment_files_ship_no_secret():
    compose = (ROOT / "compose.yaml").read_text()
    line = next(x for x in compose.splitlines() if "DJANGO_SECRET_KEY:" in x)
    assert "${DJANGO_SECRET_KEY:?" in line  # compose refuses to start without one
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_without_a_secret_key_one_is_made_once_and_kept(tmp_path, monkeypatch):
    """No DJANGO_SECRET_KEY: a random key in var/secret_key (this user only), the same on every
    start, never the old public default."""
    import importlib
    import stat

    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    from config.settings import base

    try:
        first = importlib.reload(base).SECRET_KEY
        kept = tmp_path / "secret_key"
        assert len(first) >= 50 and first != "dev-insecure-change-me"
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert importlib.reload(base).SECRET_KEY == first  # a restart keeps sessions valid
        monkeypatch.setenv("DJANGO_SECRET_KEY", "from-the-environment")
        assert importlib.reload(base).SECRET_KEY == "from-the-environment"
    finally:
        monkeypatch.undo()
        importlib.reload(base)


SHOW_SETTINGS = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


def _run_without_settings(command: list[str]) -> subprocess.CompletedProcess:
    from django.conf import settings as django_settings

    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_DEBUG")
    }
    return subprocess.run(
        command, check=False, cwd=django_settings.BASE_DIR, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("entry", ["manage.py", "config/wsgi.py", "config/asgi.py"])
def test_entry_points_default_to_debug_off(entry):
    """gunicorn or manage.py started without DJANGO_SETTINGS_MODULE must not run with DEBUG on."""
    if entry == "manage.py":
        command = [sys.executable, "manage.py", "shell", "-c", SHOW_SETTINGS]
    else:
        module = entry.removesuffix(".py").replace("/", ".")
        command = [sys.executable, "-c", f"import {module}; {SHOW_SETTINGS}"]
    out = _run_without_settings(command)
    assert out.stdout.split()[-2:] == ["config.settings.base", "False"], out.stderr[-2000:]


def test_the_celery_app_defaults_to_debug_off():
    code = "import config.celery, os; print(os.environ['DJANGO_SETTINGS_MODULE'])"
    out = _run_without_settings([sys.executable, "-c", code])
    assert out.stdout.strip() == "config.settings.base", out.stderr[-2000:]
