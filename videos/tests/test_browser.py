"""The whole product in a real browser (Chromium + Selenium) against a live server and a real
Celery worker: sign up, verify, log in, upload a spoken clip through the page, watch the progress,
read the results, seek the video. One flow, to keep the suite fast; screenshots go to
var/screenshots/ for people to look at."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from conftest import require

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]
EMAIL = "browser@example.com"
PASSWORD = "a-Long-and-Unusual-pw-42"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

# Records every value the upload progress bar takes, in sessionStorage, so the job page (after the
# navigation) can tell that the XHR reported upload progress.
RECORD_UPLOAD_PROGRESS = """
sessionStorage.setItem("uploadProgress", "[]");
const bar = document.getElementById("upload-progress");
new MutationObserver(() => {
  const seen = JSON.parse(sessionStorage.getItem("uploadProgress"));
  if (bar.hasAttribute("value")) seen.push(Number(bar.getAttribute("value")));
  sessionStorage.setItem("uploadProgress", JSON.stringify(seen));
}).observe(bar, {attributes: true, attributeFilter: ["value"]});
"""


def start_chromium(*, console_log: bool = False):
    """Headless Chromium through chromedriver; `console_log`: its console can be read back
    (`driver.get_log("browser")`)."""
    require(
        bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
        "Chromium and chromedriver (apt-get install chromium chromium-driver)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()


def _wait(predicate, timeout_s: float, what: str, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _submit(driver, fields: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for name, value in fields.items():
        field = driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def _screenshot(driver, name: str, width: int = 1280) -> Path:
    """The whole page: the window is made as tall as the document first."""
    driver.set_window_size(width, 900)
    time.sleep(0.4)  # the layout and the charts follow the width
    height = driver.execute_script("window.scrollTo(0, 0); return document.body.scrollHeight")
    driver.set_window_size(width, max(600, min(int(height) + 140, 6000)))
    time.sleep(0.4)
    path = SCREENSHOTS / name
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000
    return path


def test_signup_upload_progress_results_and_seek(
    live_server, celery_worker, media_root, talking_face_clip, browser, mailoutbox
):
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    js = browser.execute_script

    # --- Sign up, verify the address from the mail, log in ---
    browser.get(base + reverse("account_signup"))
    _submit(browser, {"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD})
    _wait(lambda: mailoutbox, 15, "the verification mail")
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", mailoutbox[-1].body)
    assert link, mailoutbox[-1].body
    browser.get(base + link.group(1))
    _submit(browser, {})  # "Confirm"
    _wait(lambda: reverse("account_login") in browser.current_url, 15, "the login page")
    _submit(browser, {"login": EMAIL, "password": PASSWORD})
    _wait(lambda: browser.current_url.endswith(reverse("dashboard")), 15, "the dashboard")
    assert "No analyses yet." in browser.page_source

    # --- Upload through the page (XHR with progress), straight to the job page ---
    browser.find_element(By.LINK_TEXT, "Upload").click()
    _wait(lambda: browser.current_url.endswith(reverse("upload")), 15, "the upload page")
    js(RECORD_UPLOAD_PROGRESS)
    browser.find_element(By.ID, "id_file").send_keys(str(talking_face_clip))
    assert "talking-face.mp4" in browser.find_element(By.ID, "file-chosen").text
    browser.find_element(By.ID, "upload-submit").click()
    _wait(lambda: "/analyses/" in browser.current_url, 60, "the job page")
    js("window.sameDocument = true")  # gone if the page reloads
    progress_seen = js("return JSON.parse(sessionStorage.getItem('uploadProgress'))")
    assert progress_seen and progress_seen[-1] == 100, progress_seen

    # --- Live stage and progress, without reloading, until the results appear ---
    states: list[tuple[str, str]] = []

    def finished() -> bool:
        state = js(
            "const s = document.getElementById('job-status'),"
            " p = document.getElementById('job-progress');"
            " return [s ? s.textContent : '', p ? String(p.value) : ''];"
        )
        if not states or states[-1] != tuple(state):
            states.append(tuple(state))
        return bool(browser.find_elements(By.ID, "results")) or state[0] in {"Failed", "Canceled"}

    _wait(finished, 300, "the analysis to finish", interval_s=0.5)
    assert js("return window.sameDocument === true"), "the job page reloaded"
    status = browser.find_element(By.ID, "job-status").text
    assert status == "Succeeded", (status, browser.find_elements(By.ID, "job-error"))
    assert any(s in {"Queued", "Running"} for s, _ in states), states  # it was live
    assert any(s == "Running" and p not in {"", "0"} for s, p in states), states

    # --- Results: transcript, charts, summary ---
    utterances = browser.find_elements(By.CSS_SELECTOR, "#transcript .utterance")
    assert utterances
    words = " ".join(u.text for u in utterances).lower()
    assert "wonderful" in words or "terrible" in words, words
    assert browser.find_element(By.ID, "dominant-emotion").text.strip()
    # Which channels read the video, and the face channel beside the words.
    channels = browser.find_element(By.ID, "channels").text
    assert "Face" in channels and "mobilenetv2-rafdb-fer" in channels and "Voice" in channels
    assert browser.find_elements(By.CSS_SELECTOR, "#transcript .face-badge")
    for canvas in ("timeline-chart", "sentiment-chart", "distribution-chart", "face-chart"):
        drawn = js(
            "const c = document.getElementById(arguments[0]), chart = Chart.getChart(c);"
            " return chart && [chart.config.type, c.width, chart.data.datasets[0].data.length];",
            canvas,
        )
        assert drawn and drawn[1] > 0 and drawn[2] > 0, (canvas, drawn)

    # --- The player streams the owner's video (Range) and an utterance click seeks it ---
    _wait(lambda: js("return document.getElementById('player').readyState >= 1"), 30, "metadata")
    assert js("return document.getElementById('player').duration") > 1
    target = utterances[-1].find_element(By.CSS_SELECTOR, "button")
    start = float(target.get_attribute("data-start"))
    # Park the player near the end first, so the click has somewhere to move it from.
    js("const p = document.getElementById('player'); p.pause(); p.currentTime = p.duration - 0.2;")
    _wait(
        lambda: js("return document.getElementById('player').currentTime") > start + 2, 10, "park"
    )
    target.click()
    (position,) = _wait(
        lambda: (
            (t := js("return document.getElementById('player').currentTime")) < start + 2 and [t]
        ),
        10,
        "the seek",
    )
    assert start - 0.1 <= position <= start + 2.0, (start, position)
    # The utterance being played is highlighted in the transcript.
    _wait(lambda: "active" in utterances[-1].get_attribute("class"), 10, "the highlight")
    js("document.getElementById('player').pause()")
    _screenshot(browser, "results.png")
    _screenshot(browser, "results-phone.png", width=390)

    # --- Dashboard lists the finished analysis ---
    browser.set_window_size(1280, 900)
    browser.get(base + reverse("dashboard"))
    row = browser.find_element(By.CSS_SELECTOR, "#jobs tbody tr")
    assert "talking-face.mp4" in row.text and "Succeeded" in row.text and "100%" in row.text
    assert row.find_elements(By.CSS_SELECTOR, ".badge[class*='emotion-']")
    _screenshot(browser, "dashboard.png")

    # No script failed on the way, and the only failed request was the expected one: the page
    # asked for a direct-to-S3 slot, got 409 (local storage here) and fell back to multipart.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [e for e in errors if e["source"] != "network"] == [], errors
    network = [e["message"] for e in errors if e["source"] == "network"]
    assert len(network) == 1 and "/api/v1/uploads" in network[0] and "409" in network[0], errors


def test_upload_goes_straight_to_s3_when_configured(
    live_server, user, s3_storage, browser, client, talking_clip, inference_queue
):
    """With S3 storage the page uploads the file to the presigned POST target (not through us),
    then submits the upload id. S3 is moto's server here; no worker needed."""
    from allauth.account.models import EmailAddress
    from selenium.webdriver.common.by import By

    from videos.models import AnalysisJob, DirectUpload

    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)  # the session cookie stands in for the login form tested above
    browser.get(live_server.url + reverse("account_login"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": cookie})

    browser.get(live_server.url + reverse("upload"))
    browser.find_element(By.ID, "id_file").send_keys(str(talking_clip))
    browser.find_element(By.ID, "upload-submit").click()
    _wait(lambda: "/analyses/" in browser.current_url, 60, "the job page")
    job = AnalysisJob.objects.get(owner=user)
    assert browser.current_url.endswith(reverse("job-detail", args=[job.pk]))
    upload = DirectUpload.objects.get(owner=user)
    assert upload.consumed_at is not None and job.video.file.name == upload.key
    assert s3_storage.size(upload.key) == talking_clip.stat().st_size
    assert [m["args"] for m in inference_queue()] == [[str(job.pk)]]
