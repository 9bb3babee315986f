"""The job page and the upload page in a real browser (Chromium + Selenium) against a live
server: the key-moments strip, the player kept in view and synced with the charts and the
transcript, tooltips, the leave warning on the upload page, and screenshots of the job page
(desktop 1366x900 and phone 390x844) in var/screenshots/ (`python -m videos.screenshots`).

The job is a demo result (videos.demo) on a real spoken clip, so no worker is needed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from videos.demo import make_demo_clip, make_demo_job
from videos.tests.test_browser import SCREENSHOTS, _wait, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DESKTOP = (1366, 900)
PHONE = (390, 844)


@pytest.fixture(scope="session")
def demo_clip(media_dir) -> tuple[Path, list[tuple[float, float]]]:
    return make_demo_clip(media_dir / "weekly-review.mp4")


def _log_in(browser, live_server, client, user) -> None:  # noqa: F811 - the fixture
    """The session cookie of a test-client login stands in for the login form."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.get_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    client.force_login(user)
    browser.get(live_server.url + reverse("account_login"))
    browser.add_cookie(
        {
            "name": settings.SESSION_COOKIE_NAME,
            "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        }
    )


def _viewport(browser, size: tuple[int, int], mobile: bool = False) -> None:  # noqa: F811
    """An exact CSS viewport (window sizes include the browser's frame)."""
    width, height = size
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height,
            "deviceScaleFactor": 2 if mobile else 1,
            "mobile": mobile,
        },
    )


def _player_state(js) -> dict:
    return js(
        "const p = document.getElementById('player'), r = p.getBoundingClientRect();"
        "return {t: p.currentTime, paused: p.paused, top: r.top, bottom: r.bottom, left: r.left,"
        " right: r.right, vh: innerHeight, vw: innerWidth,"
        " mini: p.parentNode.classList.contains('mini')};"
    )


def _in_view(state: dict) -> bool:
    return (
        state["top"] >= 0
        and state["bottom"] <= state["vh"] + 1
        and state["left"] >= 0
        and state["right"] <= state["vw"] + 1
        and state["bottom"] - state["top"] > 50
    )


def test_key_moments_player_sync_and_screenshots(
    live_server,
    client,
    user,
    media_root,
    demo_clip,
    browser,  # noqa: F811 - the fixture
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    job = make_demo_job(user, *demo_clip)
    utterances = list(job.utterances.order_by("index"))
    js = browser.execute_script
    _log_in(browser, live_server, client, user)
    _viewport(browser, DESKTOP)
    browser.get(live_server.url + reverse("job-detail", args=[job.pk]))
    _wait(lambda: js("return !!(window.Chart && Chart.getChart('timeline-chart'))"), 15, "charts")
    _wait(lambda: js("return document.getElementById('player').readyState >= 1"), 30, "metadata")

    # --- The strip at the top: most positive, most negative, the biggest shifts ---
    moments = browser.find_elements(By.CSS_SELECTOR, "#key-moments .moment")
    titles = [m.find_element(By.CSS_SELECTOR, ".moment-title").text for m in moments]
    assert titles[:2] == ["Most positive moment", "Most negative moment"], titles
    # One shift: the change onto the 46%-sure "neutral" line is a weak guess, no key moment.
    assert titles.count("Emotion shift") == 1, titles
    negative = moments[1]
    said = " ".join(negative.text.split()).lower()
    assert "revolting" in said and "sentiment: negative 83%" in said, said
    assert "emotion: neutral → disgust" in said, said  # the change onto it, on the same card
    strip_top = browser.find_element(By.ID, "key-moments").location["y"]
    assert strip_top < browser.find_element(By.ID, "player").location["y"]

    # Clicking a moment plays it, and the charts' playhead follows the player.
    negative.find_element(By.CSS_SELECTOR, "a").click()
    start = utterances[3].start
    _wait(lambda: (s := _player_state(js))["t"] > start + 0.3 and not s["paused"], 10, "playing")
    playheads = js(
        "return ['timeline-chart', 'sentiment-chart', 'voice-emotion-chart', 'face-chart',"
        " 'voice-chart'].map("
        "  id => Chart.getChart(id).$playhead);"
    )
    now = _player_state(js)["t"]
    assert all(p is not None and abs(p - now) < 1.0 for p in playheads), (playheads, now)
    js("document.getElementById('player').pause()")

    # --- Far down the page, a transcript click seeks a player that stays in view ---
    last = browser.find_elements(By.CSS_SELECTOR, "#transcript .utterance")[-1]
    js("arguments[0].scrollIntoView({block: 'center'})", last)
    time.sleep(0.3)
    assert not _in_view(_player_state(js))  # its card is out of view: the test means something
    last.find_element(By.CSS_SELECTOR, "button").click()
    target = utterances[-1].start
    state = _wait(
        lambda: (s := _player_state(js))["mini"] and s["t"] >= target - 0.1 and s, 10, "mini"
    )
    assert _in_view(state), state
    _wait(lambda: "active" in last.get_attribute("class"), 10, "the highlight")
    js("document.getElementById('player').pause()")

    # --- The transcript follows the playback (in its own box, not the page) ---
    js(
        "const box = document.getElementById('transcript-scroll');"
        "box.style.maxHeight = '14rem'; box.scrollTop = box.scrollHeight;"
    )
    page_y = js("return scrollY")
    # A script click: Selenium's own would scroll the page to the strip first.
    js("arguments[0].click()", browser.find_element(By.CSS_SELECTOR, "#key-moments .moment a"))
    second = browser.find_elements(By.CSS_SELECTOR, "#transcript .utterance")[1]

    def second_in_box() -> bool:
        return js(
            "const box = document.getElementById('transcript-scroll').getBoundingClientRect(),"
            " r = arguments[0].getBoundingClientRect();"
            "return arguments[0].classList.contains('active') && r.top >= box.top - 1"
            " && r.bottom <= box.bottom + 1;",
            second,
        )

    _wait(second_in_box, 10, "the transcript to follow")
    assert js("return scrollY") == page_y  # the page itself did not jump
    js("document.getElementById('player').pause()")
    js("document.getElementById('transcript-scroll').style.maxHeight = ''")

    # --- Tooltip: the whole utterance (over 80 characters), beside the bar, not over it ---
    js("window.scrollTo(0, 0)")
    canvas = browser.find_element(By.ID, "timeline-chart")
    js("arguments[0].scrollIntoView({block: 'center'})", canvas)
    time.sleep(0.3)
    bar = js(
        "const c = Chart.getChart('timeline-chart'), b = c.getDatasetMeta(0).data[3];"
        "return {x: (b.x + b.base) / 2, y: b.y, top: b.y - b.height / 2,"
        " bottom: b.y + b.height / 2, w: c.canvas.clientWidth, h: c.canvas.clientHeight};"
    )
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(bar["x"] - bar["w"] / 2), int(bar["y"] - bar["h"] / 2)
    ).perform()
    tip = _wait(
        lambda: js(
            "const t = document.querySelector('#timeline-chart + .chart-tip');"
            "if (!t || t.hidden) return null;"
            "const r = t.getBoundingClientRect(), c = arguments[0].getBoundingClientRect();"
            "return {text: t.textContent, top: r.top - c.top, bottom: r.bottom - c.top};",
            canvas,
        ),
        5,
        "the tooltip",
    )
    assert utterances[3].text in tip["text"] and len(utterances[3].text) > 80, tip
    assert tip["bottom"] <= bar["top"] or tip["top"] >= bar["bottom"], (tip, bar)
    ActionChains(browser).move_by_offset(0, int(bar["h"])).perform()

    # --- Weak predictions are faded: in the transcript and in the charts ---
    weak = browser.find_elements(By.CSS_SELECTOR, "#transcript .badge.weak")
    assert any(" ".join(b.text.split()).lower() == "emotion: neutral 46% sure" for b in weak)
    colors = js("return Chart.getChart('timeline-chart').data.datasets[0].backgroundColor")
    assert colors[4].endswith("59") and not colors[0].endswith("59"), colors  # 46% vs 81%

    # --- Screenshots: desktop and phone, the viewport and the whole page ---
    js("window.scrollTo(0, 0)")
    time.sleep(0.5)
    _save(browser, "job-desktop.png")
    _save_full(browser, "job-desktop-full.png", DESKTOP)
    _viewport(browser, PHONE, mobile=True)
    browser.refresh()
    _wait(lambda: js("return !!(window.Chart && Chart.getChart('timeline-chart'))"), 15, "charts")
    time.sleep(0.5)
    wide = js(  # what sticks out, for the message
        "const right = e => e.getBoundingClientRect().right;"
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => right(e) > innerWidth + 1 && right(e.parentNode) <= innerWidth + 1)"
        ".map(e => e.tagName + '.' + e.className);"
    )
    assert js("return document.documentElement.scrollWidth") <= PHONE[0], wide  # no sideways scroll
    # On a phone the summary comes before the technical "How this video was read" card.
    top = "return document.querySelector(arguments[0]).getBoundingClientRect().top"
    assert js(top, "#summary-title") < js(top, "#channels-title")
    _save(browser, "job-phone.png")
    _save_full(browser, "job-phone-full.png", PHONE, mobile=True)
    # Nothing failed in the page.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def _save(browser, name: str) -> Path:  # noqa: F811
    path = SCREENSHOTS / name
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000
    return path


def _save_full(browser, name: str, size: tuple[int, int], mobile: bool = False) -> Path:  # noqa: F811
    """The whole page: the viewport as tall as the document, then back."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    _viewport(browser, (size[0], min(int(height), 8000)), mobile)
    time.sleep(0.6)  # the charts follow the size
    path = _save(browser, name)
    _viewport(browser, size, mobile)
    return path
