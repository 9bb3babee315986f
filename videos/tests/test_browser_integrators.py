"""In a real browser (Chromium + Selenium, fixtures from test_browser): the cancel confirm dialog
states the refund policy and a canceled analysis runs again; creating an API key redirects, so a
reload makes no second key; the job page plays the subtitles as a <track>."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from quotas import services as quotas
from videos import services
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.testing import make_stored_video
from videos.tests.test_browser import _wait, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def logged_in(live_server, user, browser, client):  # noqa: F811 - the imported fixture
    """The browser holds the user's session (the login form has its own test)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)
    browser.get(live_server.url + reverse("account_login"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": cookie})
    return browser


def _severe_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_cancel_states_the_policy_refunds_and_runs_again(
    live_server, user, logged_in, media_root, inference_queue
):
    from selenium.webdriver.common.by import By

    driver = logged_in
    # A 5-minute video, 4 seconds into its analysis: the case in the issue.
    video = make_stored_video(user, original_name="talk.mp4", duration=300.0)
    job = AnalysisJob.objects.create(
        video=video, owner=user, status=JobStatus.RUNNING, stage="transcribe", progress=4
    )
    quotas.charge_analysis(user, job, video)
    assert quotas.usage_summary(user).used == quotas.Usage(1, 300.0)

    driver.get(live_server.url + reverse("job-detail", args=[job.pk]))
    cancel = driver.find_element(By.CSS_SELECTOR, "#delete-form button[type=submit]")
    assert cancel.text == "Cancel analysis"
    cancel.click()
    dialog = _wait(lambda: _alert(driver), 10, "the confirm dialog")
    assert dialog.text == f"Stop this analysis? {services.CANCEL_POLICY}"
    assert "refunded in full" in dialog.text and "already running" in dialog.text
    dialog.dismiss()  # "Cancel" in the dialog: nothing happens
    assert AnalysisJob.objects.get(pk=job.pk).status == JobStatus.RUNNING

    driver.find_element(By.CSS_SELECTOR, "#delete-form button[type=submit]").click()
    _wait(lambda: _alert(driver), 10, "the confirm dialog").accept()
    _wait(lambda: driver.find_elements(By.ID, "job-canceled"), 15, "the canceled page")
    assert "does not count against your monthly allowance" in driver.page_source
    assert AnalysisJob.objects.get(pk=job.pk).status == JobStatus.CANCELED
    assert quotas.usage_summary(user).used == quotas.Usage(0, 0)  # the 5 minutes are back

    driver.find_element(By.CSS_SELECTOR, "#rerun-form button[type=submit]").click()
    new = _wait(lambda: AnalysisJob.objects.filter(rerun_of=job).first(), 15, "the new job")
    _wait(
        lambda: driver.current_url.endswith(reverse("job-detail", args=[new.pk])),
        15,
        "the new job's page",
    )
    assert driver.find_element(By.ID, "job-status").text in {"Queued", "Running"}
    assert new.video_id == job.video_id
    assert quotas.usage_summary(user).used == quotas.Usage(1, 300.0)
    assert [m["args"] for m in inference_queue()] == [[str(new.pk)]]
    assert [e for e in _severe_errors(driver) if e["source"] != "network"] == []


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def test_creating_a_key_redirects_so_a_reload_makes_no_second_key(live_server, user, logged_in):
    from selenium.webdriver.common.by import By

    driver = logged_in
    page = live_server.url + reverse("api-keys-page")
    driver.get(page)
    driver.find_element(By.NAME, "name").send_keys("nightly batch")
    driver.find_element(By.CSS_SELECTOR, "#create-title + form button[type=submit]").click()
    shown = _wait(lambda: driver.find_elements(By.ID, "new-key"), 15, "the new key")
    assert driver.current_url == page  # the GET after the redirect, not the POST's answer
    plain = shown[0].get_attribute("value")
    assert plain.startswith("vs_") and user.api_keys.count() == 1

    driver.refresh()  # a GET: no "resubmit the form?" and no second key
    _wait(lambda: driver.find_elements(By.ID, "keys"), 15, "the key list")
    assert not driver.find_elements(By.ID, "new-key")  # shown once only
    assert plain not in driver.page_source
    assert user.api_keys.count() == 1
    assert "nightly batch" in driver.find_element(By.ID, "keys").text
    secret = driver.find_element(By.ID, "webhook-secret-value")
    assert secret.get_attribute("value").startswith("whsec_")
    # Masked until asked for: dots on screen (over a shoulder, in a screen share).
    assert secret.get_attribute("type") == "password"
    reveal = driver.find_element(By.CSS_SELECTOR, "[data-reveal=webhook-secret-value]")
    reveal.click()
    assert secret.get_attribute("type") == "text" and reveal.text == "Hide"
    reveal.click()
    assert secret.get_attribute("type") == "password"


def test_job_page_plays_the_subtitles_track(live_server, user, logged_in, media_root, talking_clip):
    driver = logged_in
    video = make_stored_video(
        user, talking_clip.read_bytes(), original_name="talk.mp4", duration=6.0
    )
    job = AnalysisJob.objects.create(
        video=video, owner=user, status=JobStatus.SUCCEEDED, stage="done", progress=100,
        summary={"speech_detected": True, "utterance_count": 2, "speech_duration": 4.0,
                 "dominant_emotion": "joy", "dominant_sentiment": "positive"},
    )  # fmt: skip
    Utterance.objects.create(
        job=job, index=0, start=0.5, end=2.5, text="Wonderful <news> & more", emotion="joy",
        sentiment="positive", emotion_scores={"joy": 0.9}, sentiment_scores={"positive": 0.8},
    )  # fmt: skip
    Utterance.objects.create(job=job, index=1, start=3.0, end=5.0, text="Hmm", emotion="")

    driver.get(live_server.url + reverse("job-detail", args=[job.pk]))
    cues = _wait(
        lambda: driver.execute_script(
            "const t = document.getElementById('player').textTracks[0];"
            " return t && t.cues && t.cues.length"
            " ? [t.mode, Array.from(t.cues, c =>"
            "     [c.startTime, c.endTime, c.getCueAsHTML().textContent])] : null;"
        ),
        30,
        "the subtitle cues",
    )
    mode, texts = cues
    assert mode == "showing"  # `default`: on without the viewer choosing it
    # As shown: the escaped "<news>" is text, not a tag.
    assert texts == [
        [0.5, 2.5, "Wonderful <news> & more\n[joy · positive]"],
        [3, 5, "Hmm\n[no text label]"],
    ]
    assert [e for e in _severe_errors(driver) if e["source"] != "network"] == []
