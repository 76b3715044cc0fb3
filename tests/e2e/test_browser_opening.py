"""The waiting room before the sale opens, and the page in English, in headless Chromium.

A short service whose sale opens three hours after the module is collected (the e2e lock
may keep it waiting a while): a person who signs up through
the page waits in a room that counts down to the opening and explains that everyone who
arrives before it is put in a random order when it opens. The language toggle switches the
page to English and the choice outlives a reload; a browser that prefers English gets
English from the start. Screenshots: docs/screenshots/15-waiting-room-before-opening.png,
16-waiting-room-english.png.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_browser import SHOTS, VIEWPORT, WAIT_MS, Tab, browser  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow

OPENS_IN = timedelta(hours=3)
SERVICE_SETTINGS = {"sale_opens_at": (datetime.now(timezone.utc) + OPENS_IN).isoformat()}


@pytest.fixture(scope="module")
def service(browser, sqlite_service):  # noqa: F811
    deadline = time.monotonic() + 150
    while "Encore is selling on" not in sqlite_service.log_path.read_text(errors="replace"):
        if sqlite_service.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"our service never came up; see {sqlite_service.log_path}")
        time.sleep(1)
    return sqlite_service


def test_the_waiting_room_counts_down_to_the_opening_in_korean_and_english(browser, service):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:6]
    with service.client() as http:
        status = http.get("/api/queue/status").json()
    assert status["opened"] is False and status["opens_at"], status
    tab = Tab(browser, service.url, "early")
    english = None
    try:
        tab.goto()
        tab.wait_hash(r"#/login$")
        tab.sign_up(f"early{suffix}", "early-password-1", "서연")
        tab.page.click("#signup-button")
        tab.wait_hash(r"#/queue$")
        tab.page.wait_for_selector("#queue-opening:not([hidden])")
        tab.page.wait_for_selector('#queue-state[data-state="before_opening"]')
        seconds = int(tab.page.get_attribute("#queue-opening-clock", "data-seconds"))
        assert 0 < seconds <= OPENS_IN.total_seconds(), seconds
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", tab.page.inner_text("#queue-opening-clock"))
        assert "오픈 일시 " in tab.page.inner_text("#queue-opening-at")
        tab.page.wait_for_function(
            "(s) => Number(document.getElementById('queue-opening-clock').dataset.seconds) < s", arg=seconds, timeout=5_000
        )  # it counts down by itself
        explained = tab.page.inner_text("#queue-opening")
        assert "예매 오픈까지" in explained and "무작위" in explained, explained
        assert "Sales" not in explained, "one language at a time"
        tab.shot("15-waiting-room-before-opening.png")

        # the toggle: English, kept over a reload, then back to Korean
        tab.page.click("#lang-toggle")
        tab.page.wait_for_function("() => document.documentElement.lang === 'en'")
        explained = tab.page.inner_text("#queue-opening")
        assert "Sales open in" in explained and "random order" in explained and "무작위" not in explained, explained
        assert tab.page.inner_text("#lang-toggle") == "한국어"
        assert "KST" in tab.page.inner_text("#show-time")
        assert tab.page.inner_text("#queue-opening-at").startswith("Opens ")
        tab.shot("16-waiting-room-english.png")
        tab.page.reload()
        tab.page.wait_for_selector("#queue-opening:not([hidden])")
        assert "Waiting room" in tab.page.inner_text("#view") and "대기실" not in tab.page.inner_text("#view")
        tab.page.click("#lang-toggle")
        tab.page.wait_for_function("() => document.documentElement.lang === 'ko'")
        assert "대기실" in tab.page.inner_text("#view")

        # a browser that prefers English gets English from the start
        english = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="Asia/Seoul")
        english.set_default_timeout(WAIT_MS)
        page = english.new_page()
        page.goto(f"{service.url}/")
        page.wait_for_selector("#login-button")
        text = page.inner_text("#view")
        assert "Log in" in text and "로그인" not in text, text
        assert tab.errors == [], tab.errors
    finally:
        if english is not None:
            english.close()
        tab.close()
