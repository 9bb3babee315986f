"""Creating, checking and revoking API keys (hashed at rest, shown once)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiKey, User

KEY_PREFIX = "vs"
LAST_USED_PRECISION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(user: User, name: str) -> tuple[ApiKey, str]:
    """Returns the stored key and the plain key, which is never stored and can't be shown again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user=user, name=name, prefix=prefix, key_hash=_hash(secret))
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


def verify_api_key(plain: str) -> ApiKey | None:
    """The active key matching `plain`, with its last-used time recorded (to the minute);
    None otherwise."""
    parts = plain.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key = ApiKey.objects.active().select_related("user").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(parts[2])):
        return None
    if not key.user.is_active:
        return None
    now = timezone.now()
    # A minute's precision is enough, and spares a database write on every poll.
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def revoke_api_key(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
