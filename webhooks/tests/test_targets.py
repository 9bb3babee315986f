"""Callback URLs are checked at submission: http(s) only, public addresses only (unless the
deployment allows private ones), and signatures are what the README tells receivers to check."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from django.urls import reverse

from quotas.models import UsageRecord
from videos.models import AnalysisJob, Video
from webhooks import services
from webhooks.services import CallbackRefused, is_forbidden_address, resolve_target


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared (CGNAT)
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1%lo",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:5",  # local-use NAT64 of 10.0.0.5
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_forbidden_addresses(address):
    assert is_forbidden_address(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"],
)
def test_public_addresses(address):
    assert not is_forbidden_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "93.184.215.14/hook",
        "http://93.184.215.14:99999/",
        "http://user:pw@93.184.215.14/",
        "http://93.184.215.14/a b",
        "http://93.184.215.14/\r\nX-Injected: 1",
        "http://no-such-host.invalid/hook",
        "https://93.184.215.14/" + "a" * 2000,
    ],
)
def test_invalid_urls_are_refused(url):
    with pytest.raises(CallbackRefused) as refused:
        resolve_target(url, allow_private=True)
    assert refused.value.code == "invalid_callback_url" and refused.value.status == 400


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",  # a name is resolved, then checked
        "http://10.0.0.5/hook",
        "https://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f000001/",  # 127.0.0.1 spelt as a number
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:7f00:1::1]/",
    ],
)
def test_private_targets_are_refused_by_default(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(CallbackRefused) as refused:
        services.validate_callback_url(url)
    assert refused.value.code == "callback_url_forbidden"
    assert "public addresses only" in refused.value.message


def test_a_refusal_does_not_reveal_the_address_a_name_resolved_to(settings):
    """Telling which private address a name resolved to would answer DNS questions about our
    own network."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(CallbackRefused) as refused:
        services.validate_callback_url("http://localhost:8000/hook")
    shown = refused.value.message + str(refused.value.details)
    assert "localhost" in shown
    assert "127.0.0.1" not in shown and "::1" not in shown


def test_private_targets_allowed_by_the_setting(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    target = resolve_target("http://localhost:8123/a/b?c=d")
    assert target.port == 8123 and target.path == "/a/b?c=d" and "127.0.0.1" in target.addresses


def test_a_public_literal_passes_without_dns(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    target = resolve_target("https://93.184.215.14/hook")
    assert (target.scheme, target.port, target.path) == ("https", 443, "/hook")
    assert services.validate_callback_url("  ") == ""  # blank: no callback


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"analysis.succeeded"}'
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert services.sign("whsec_x", 1700000000, body) == f"sha256={expected}"
    now = time.time()
    stamp = str(int(now))
    good = services.sign("whsec_x", int(stamp), body)
    assert services.verify_signature("whsec_x", body, stamp, good, now=now)
    assert not services.verify_signature("whsec_y", body, stamp, good, now=now)
    assert not services.verify_signature("whsec_x", body + b" ", stamp, good, now=now)
    assert not services.verify_signature("whsec_x", body, stamp, good, now=now + 3600)  # replay
    assert not services.verify_signature("whsec_x", body, "soon", good, now=now)


# --- At submission, through the API: refused before anything is stored or charged ---


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://93.184.215.14/hook", "invalid_callback_url"),
        ("http://127.0.0.1:9/hook", "callback_url_forbidden"),
        ("http://10.0.0.1/hook", "callback_url_forbidden"),
    ],
)
def test_api_refuses_bad_callback_urls(api, media_root, tmp_path, settings, url, code):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    path = tmp_path / "talk.mp4"
    path.write_bytes(b"\x00" * 1000)
    with path.open("rb") as fh:
        response = api.post(
            reverse("api-analyses"), {"file": fh, "callback_url": url}, format="multipart"
        )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not AnalysisJob.objects.exists() and not Video.objects.exists()
    assert not UsageRecord.objects.exists()


@pytest.mark.django_db
def test_api_stores_an_allowed_callback_url(api, user, media_root, tmp_path, allow_loopback):
    from mlcore import testmedia

    clip = testmedia.make_frame_counter_clip(tmp_path / "clip.mp4", seconds=1.0)
    with clip.open("rb") as fh:
        response = api.post(
            reverse("api-analyses"),
            {"file": fh, "callback_url": "http://127.0.0.1:9/hook"},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    assert response.json()["callback_url"] == "http://127.0.0.1:9/hook"
    assert AnalysisJob.objects.get().callback_url == "http://127.0.0.1:9/hook"
    assert user.webhook_secret.secret.startswith("whsec_")  # ready before the first callback


# --- The signing secret: API and page ---


@pytest.mark.django_db
def test_secret_api_shows_and_rotates(api, user):
    first = api.get(reverse("api-webhook-secret")).json()
    assert first["secret"].startswith("whsec_") and len(first["secret"]) > 40
    assert api.get(reverse("api-webhook-secret")).json()["secret"] == first["secret"]
    rotated = api.post(reverse("api-webhook-secret-rotate"))
    assert rotated.status_code == 201
    assert rotated.json()["secret"] != first["secret"]
    assert services.get_secret(user).secret == rotated.json()["secret"]


@pytest.mark.django_db
def test_secret_page_shows_and_rotates_with_a_redirect(client, user):
    client.force_login(user)
    page = client.get(reverse("api-keys-page")).content.decode()
    secret = services.get_secret(user).secret
    assert f'id="webhook-secret-value" value="{secret}"' in page
    assert client.get(reverse("webhook-secret-rotate")).status_code == 405
    rotated = client.post(reverse("webhook-secret-rotate"))
    assert rotated.status_code == 302 and rotated["Location"].startswith(reverse("api-keys-page"))
    assert services.get_secret(user).secret != secret
