"""The upload page: what it tells before the upload (quota left, limits, an estimate), and what
leaving it mid-upload does: the browser warns, the upload is aborted, and the server creates
and charges nothing for the cut-short request."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.api_keys import create_api_key
from quotas.models import UsageRecord
from videos.models import AnalysisJob, Video
from videos.tests.test_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, SCREENSHOTS, _wait


@pytest.mark.django_db
def test_upload_page_shows_quota_left_and_the_estimate_inputs(client, user, media_root):
    client.force_login(user)
    page = client.get(reverse("upload")).content.decode()
    assert 'id="quota-left"' in page
    assert "20 analyses" in page and "30.0 min of video left this month" in page
    assert 'data-remaining-seconds="1800.0"' in page and 'data-analysis-rate="0.15"' in page
    assert 'data-max-duration="600.0"' in page
    # The styled picker is still the form's own file input (the no-script form posts it).
    assert '<input type="file" name="file" id="id_file"' in page
    assert 'class="picker-button"' in page


@pytest.mark.django_db
def test_upload_page_when_the_month_is_used_up(client, user, media_root):
    from quotas import services as quotas

    quotas.change_plan(user, quotas.get_quota(user).plan)  # the row exists
    quota = quotas.get_quota(user)
    quota.monthly_analyses = 0
    quota.save()
    client.force_login(user)
    page = client.get(reverse("upload")).content.decode()
    assert "You have used this month’s analyses" in page
    assert 'id="upload-submit" disabled' in page


# --- A request cut short: what the server does ---


def _stream_copy(source: Path, path: Path) -> Path:
    """An MPEG-TS copy: a stream format that stays readable when cut, so a partial upload of
    it would pass the media checks. Only the request's own end tells it is incomplete."""
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-i", str(source), "-c", "copy", "-f", "mpegts", str(path)],
        check=True,
    )
    return path


def _multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: video/mp2t\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def _send(live_server, key: str, body: bytes, boundary: str, cut_at: int | None) -> bytes:
    """POST to the API over a raw socket; with `cut_at`, the connection closes after that many
    bytes of the body, as a browser's does when the page that uploads is left."""
    host, port = live_server.thread.host, live_server.thread.port
    head = (
        f"POST {reverse('api-analyses')} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Api-Key {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(head + body[: cut_at if cut_at is not None else len(body)])
        if cut_at is not None:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.postgres
@pytest.mark.redis
def test_a_request_cut_short_creates_and_charges_nothing(
    live_server, user, media_root, talking_clip, tmp_path, inference_queue
):
    _, key = create_api_key(user, "test")
    stream = _stream_copy(talking_clip, tmp_path / "talk.ts")
    data = stream.read_bytes()
    body, boundary = _multipart(data, "talk.ts")

    # Cut inside the file's bytes: the server sees the body end early.
    reply = _send(live_server, key, body, boundary, cut_at=len(body) * 6 // 10)
    time.sleep(0.5)
    assert not reply.startswith(b"HTTP/1.1 202"), reply[:200]
    assert AnalysisJob.objects.count() == 0 and Video.objects.count() == 0
    assert UsageRecord.objects.count() == 0

    # The same first 60% of the stream, sent as a whole request, is a video the server takes:
    # what refused the cut request was its missing end, not the media checks.
    partial, boundary = _multipart(data[: len(data) * 6 // 10], "talk.ts")
    reply = _send(live_server, key, partial, boundary, cut_at=None)
    assert reply.startswith(b"HTTP/1.1 202"), reply[:400]
    assert AnalysisJob.objects.count() == 1 and UsageRecord.objects.count() == 1


# --- Leaving once the bytes have all arrived: the beacon withdraws the upload ---

TOKEN = "0f8c7d2e-5b1a-4c3d-9e8f-123456789abc"


def _submit(api, path: Path, token: str):
    with path.open("rb") as fh:
        return api.post(
            reverse("api-analyses"), {"file": fh}, format="multipart", HTTP_X_UPLOAD_TOKEN=token
        )


@pytest.mark.django_db
def test_an_upload_abandoned_while_checked_makes_no_job(
    api, user, media_root, talking_clip, inference_queue
):
    from videos import abandon

    abandon.abandon(user, TOKEN)  # the beacon came while the server was still checking
    response = _submit(api, talking_clip, TOKEN)
    assert response.status_code == 400 and response.json()["error"]["code"] == "upload_abandoned"
    assert AnalysisJob.objects.count() == 0 and Video.objects.count() == 0
    assert UsageRecord.objects.count() == 0 and inference_queue() == []
    assert list(media_root.rglob("source")) == []  # the stored copy went with it
    # Another upload (another token) from the same page goes through.
    assert _submit(api, talking_clip, TOKEN.replace("0f8c", "1f8c")).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_job_made_just_before_the_beacon_is_withdrawn_and_refunded(
    client, user, media_root, talking_clip, inference_queue
):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user)
    response = _submit(api, talking_clip, TOKEN)
    assert response.status_code == 202
    job_id = response.json()["id"]
    record = UsageRecord.objects.get()
    assert record.refunded_at is None

    client.force_login(user)
    beacon = client.post(reverse("upload-abandon"), {"token": TOKEN})
    assert beacon.status_code == 204
    assert not AnalysisJob.objects.filter(pk=job_id).exists() and Video.objects.count() == 0
    record.refresh_from_db()
    assert record.refunded_at is not None and record.refund_reason == "upload_abandoned"
    # A repeated beacon, or one for an upload that made nothing, changes nothing.
    assert client.post(reverse("upload-abandon"), {"token": TOKEN}).status_code == 204


@pytest.mark.django_db
def test_the_beacon_needs_a_login_and_a_token(client, user):
    assert client.post(reverse("upload-abandon"), {"token": TOKEN}).status_code == 302
    client.force_login(user)
    assert client.post(reverse("upload-abandon"), {"token": "x"}).status_code == 400
    assert client.get(reverse("upload-abandon")).status_code == 405


# --- In the browser: the leave warning, and leaving aborts the upload ---


@pytest.fixture
def big_clip(media_dir) -> Path:
    """A few MB of valid video: slow enough to leave mid-upload with a throttled network."""
    path = media_dir / "big-talk.mp4"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i",
             "testsrc2=size=640x360:rate=25:duration=8", "-f", "lavfi", "-i",
             "sine=frequency=220:duration=8", "-c:v", "libx264", "-preset", "ultrafast",
             "-b:v", "8M", "-c:a", "aac", "-shortest", str(path)],
            check=True,
        )  # fmt: skip
    return path


@pytest.fixture
def browser():
    """As test_browser's, but leaving the leave warning to the test: WebDriver accepts a
    beforeunload prompt by itself; over WebDriver BiDi, told to ignore it, it shows it as an
    alert the test answers."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from conftest import require

    require(bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), "Chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    options.enable_bidi = True
    options.set_capability(
        "unhandledPromptBehavior", {"beforeUnload": "ignore", "default": "ignore"}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.postgres
@pytest.mark.slow
def test_leaving_mid_upload_warns_and_aborts(
    live_server, client, user, media_root, big_clip, browser
):
    from allauth.account.models import EmailAddress
    from selenium.webdriver.common.by import By

    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)
    browser.get(live_server.url + reverse("account_login"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": cookie})
    js = browser.execute_script

    browser.get(live_server.url + reverse("upload"))
    assert "analyses" in browser.find_element(By.ID, "quota-left").text
    # 1 MB/s up: the file takes seconds, time enough to leave in the middle.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )
    browser.find_element(By.ID, "id_file").send_keys(str(big_clip))
    estimate = _wait(lambda: browser.find_element(By.ID, "file-estimate").text, 10, "estimate")
    assert "0:08" in estimate and "analysis" in estimate.lower(), estimate
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "upload.png"))
    browser.find_element(By.ID, "upload-submit").click()
    _wait(lambda: 5 <= float(js("return document.getElementById('upload-progress').value")) < 40,
          20, "the upload under way")  # fmt: skip
    # The bar moves smoothly: many small steps, none a jump.
    seen = []
    for _ in range(15):
        seen.append(float(js("return document.getElementById('upload-progress').value")))
        time.sleep(0.1)
    steps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert len(set(seen)) >= 8 and min(steps) >= 0 and max(steps) < 15, seen
    assert "left" in browser.find_element(By.ID, "upload-detail").text  # time left

    # Leaving: the browser asks first (beforeunload); staying keeps the upload going.
    browser.find_element(By.LINK_TEXT, "Dashboard").click()
    alert = _wait(lambda: _alert(browser), 5, "the leave warning")
    alert.dismiss()
    assert browser.current_url.endswith(reverse("upload"))
    assert js("return document.getElementById('upload-status').hidden") is False

    # Leaving for real aborts the upload: no job, nothing charged, even after a while.
    browser.find_element(By.LINK_TEXT, "Dashboard").click()
    _wait(lambda: _alert(browser), 5, "the leave warning").accept()
    _wait(lambda: browser.current_url.endswith(reverse("dashboard")), 15, "the dashboard")
    unthrottled = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", unthrottled)
    time.sleep(3)
    assert AnalysisJob.objects.filter(owner=user).count() == 0
    assert UsageRecord.objects.filter(user=user).count() == 0
    assert "No analyses yet." in browser.page_source


def _alert(browser):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = browser.switch_to.alert
        alert.text  # noqa: B018 - raises when there is none
        return alert
    except NoAlertPresentException:
        return None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["running", "succeeded", "failed"])
def test_a_beacon_never_withdraws_a_job_a_worker_started(
    client, user, media_root, talking_clip, inference_queue, status
):
    """The token stays valid for an hour: replaying the beacon after the results were read must
    not refund (or delete) the analysis."""
    from django.utils import timezone
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user)
    job_id = _submit(api, talking_clip, TOKEN).json()["id"]
    AnalysisJob.objects.filter(pk=job_id).update(status=status, started_at=timezone.now())
    client.force_login(user)
    assert client.post(reverse("upload-abandon"), {"token": TOKEN}).status_code == 204
    job = AnalysisJob.objects.get(pk=job_id)
    assert job.status == status
    assert UsageRecord.objects.get(job_id=job_id).refunded_at is None


@pytest.mark.django_db(transaction=True)
def test_the_form_refuses_an_oversized_declared_length_before_reading_the_body(
    live_server, client, user
):
    """The page is sent back (413, the limit said) while the body is still on its way: a form
    post's body would otherwise be spooled in full before any size check (the CSRF check reads
    it first)."""
    from urllib.parse import urlsplit

    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    declared = 2 * settings.MAX_UPLOAD_BYTES
    host = urlsplit(live_server.url)
    head = (
        f"POST {reverse('upload')} HTTP/1.1\r\nHost: {host.netloc}\r\nCookie: {cookie}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {declared}\r\n\r\n--xyz\r\n"
    )
    with socket.create_connection((host.hostname, host.port), timeout=10) as sock:
        sock.sendall(head.encode())  # a few bytes of the body, then nothing more
        answer = b""
        while b"</html>" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 413 " in status_line, answer[:300]
    from videos.services import upload_limits

    limit_mb = upload_limits(user)[0] / (1024 * 1024)
    assert f"larger than the {limit_mb:g} MB limit".encode() in answer
