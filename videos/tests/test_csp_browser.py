"""The Content-Security-Policy holds and the product's own pages still work under it: every page a
user or an admin opens is loaded in Chromium, which reports each blocked script, style or request
to its console ("Refused to ..."). None may be blocked; the charts and Swagger UI must render."""

from __future__ import annotations

import pytest
from django.urls import reverse

from videos.demo import make_demo_clip, make_demo_job
from videos.tests.test_browser import _wait, start_chromium
from videos.tests.test_results_browser import _log_in

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def logging_browser():
    """Chromium whose console messages can be read back."""
    driver = start_chromium(console_log=True)
    yield driver
    driver.quit()


def test_the_header_is_sent(client):
    policy = client.get(reverse("account_login"))["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy


def test_no_page_breaks_the_policy(
    live_server, client, user, media_root, logging_browser, tmp_path
):
    from accounts.models import User

    browser, js = logging_browser, logging_browser.execute_script
    job = make_demo_job(user, *make_demo_clip(tmp_path / "demo.mp4"))
    # One login sees the admin too.
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    _log_in(browser, live_server, client, user)
    browser.get_log("browser")  # start clean
    pages = {
        "job": reverse("job-detail", args=[job.pk]),
        "upload": reverse("upload"),
        "dashboard": reverse("dashboard"),
        "api docs": reverse("api-docs"),
        "admin job": reverse("admin:videos_analysisjob_change", args=[job.pk]),
    }
    refused = []
    for name, path in pages.items():
        browser.get(live_server.url + path)
        if name == "job":
            _wait(
                lambda: js("return !!(window.Chart && Chart.getChart('timeline-chart'))"),
                15,
                "charts",
            )
        if name == "api docs":
            _wait(
                lambda: js("return !!document.querySelector('#swagger-ui .info')"), 20, "Swagger UI"
            )
        refused += [
            f"{name}: {entry['message']}"
            for entry in browser.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
        ]
    assert not refused, "\n".join(refused)
