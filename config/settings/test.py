"""Test settings: fast hashing, in-memory mail; services from the environment as in base."""

import uuid

from .base import *  # noqa: F403
from .base import CACHES, STORAGES, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Rate-limit counters are keyed by user id, and ids restart in every test database: a prefix per
# test run keeps an earlier run's counters (still in Redis for a minute) from throttling this one.
CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}}

# Only tests may run an untrained checkpoint (the product refuses to show untrained output).
ANALYSIS_ALLOW_UNTRAINED = env.bool("ANALYSIS_ALLOW_UNTRAINED", default=False)
