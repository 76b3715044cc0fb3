"""Two people and an admin drive the real web page in headless Chromium (Playwright for Python).

The story, on the real service (Ray Serve, actors, SQLite) with a 10-second hold:

1. Two people sign up through the page and wait in the waiting room behind a small crowd
   (admission is slowed to one person a second so that "N people ahead of you" is real).
2. Both pick the same seat and press "hold" at the same moment: exactly one gets the hold,
   pays through a mock provider's checkout page and sees the booking confirmed; the other is
   told the seat was taken.
3. The other picks another seat, lets the hold run out and sees it expire, then sees the
   seat available again on the seat map.
4. Both look at "my bookings"; an admin made with the operator command logs in through the
   page and finds every one of those events in the booking log (#log-table).

Each screen is saved to docs/screenshots/NN-name.png.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Person, make_admin

pytestmark = pytest.mark.slow

HOLD_SECONDS = 10
# One admission a second: the crowd that joins first is really ahead of the two browsers.
SERVICE_SETTINGS = {"hold_seconds": HOLD_SECONDS, "queue_admit_per_second": 1}

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "docs" / "screenshots"
FAILURES = Path(tempfile.gettempdir()) / "encore-browser-failures"  # what the pages showed when a run failed
WAIT_MS = 30_000  # the machine is small and shared: every wait is generous
VIEWPORT = {"width": 1280, "height": 900}
CROWD = 5  # people who join the queue just before the two browsers (a few seconds of line)

CONTESTED_SEAT = 24  # A구역 1열 25번 (VIP): both people want it
OTHER_SEAT = 130  # A구역 3열 31번: the one the loser holds and lets expire
CONTESTED_LABEL = "A구역 1열 25번"
OTHER_LABEL = "A구역 3열 31번"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright; never a downloaded browser.

    Module-scoped and listed before the service fixture, so a missing browser is reported
    before a service is started for nothing.
    """
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def service(browser, sqlite_service):
    """The SQLite service, once it is certain that port's answers come from *this* service.

    A previous service's leftover proxy can still answer /healthz for a moment after its run
    released the lock, and the shared fixture then returns before ours is up. Wait for our
    own `encore serve` to say it is selling, then prove the port writes into our database.
    """
    deadline = time.monotonic() + 150
    while "Encore is selling on" not in sqlite_service.log_path.read_text(errors="replace"):
        if sqlite_service.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"our service never came up; see {sqlite_service.log_path}")
        time.sleep(1)
    probe = f"probe{uuid.uuid4().hex[:8]}"
    with sqlite_service.client() as http:
        created = http.post("/api/members", json={"username": probe, "password": "probe-password-1", "nickname": probe})
    assert created.status_code == 201, created.text
    path = sqlite_service.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        found = db.execute("SELECT COUNT(*) FROM members WHERE username = ?", (probe,)).fetchone()[0]
    assert found == 1, f"port {sqlite_service.url} is served by another service, not ours ({path})"
    return sqlite_service


class Tab:
    """One person's browser context and page, with the JavaScript errors it collected."""

    def __init__(self, browser, base_url: str, who: str):
        self.who = who
        self.base_url = base_url
        self.context = browser.new_context(viewport=VIEWPORT, locale="ko-KR", timezone_id="Asia/Seoul")
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"{who}: {error}"))

    def goto(self, hash_: str = "") -> None:
        self.page.goto(f"{self.base_url}/{hash_}")

    def shot(self, name: str) -> Path:
        path = SHOTS / name
        # let a pending canvas redraw (one per animation frame) land first
        self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def member_id(self) -> int:
        return int(self.page.get_attribute("#member-nickname", "data-member-id"))

    def wait_hash(self, pattern: str) -> None:
        self.page.wait_for_url(re.compile(pattern), timeout=WAIT_MS)

    def sign_up(self, username: str, password: str, nickname: str) -> None:
        self.page.fill("#signup-username", username)
        self.page.fill("#signup-password", password)
        self.page.fill("#signup-nickname", nickname)

    def wait_seat_map(self) -> None:
        self.page.wait_for_selector('#seat-canvas[data-ready="true"]')

    def seat_status(self, seat_id: int) -> str | None:
        return self.page.evaluate("(id) => window.encore.seatStatus(id)", seat_id)

    def select(self, seat_id: int) -> None:
        assert self.page.evaluate("(id) => window.encore.selectSeat(id)", seat_id) is True
        self.page.wait_for_function(
            "(id) => document.getElementById('selected-seats').dataset.seatIds === String(id)", arg=seat_id
        )

    def zoom(self, section: str) -> None:
        assert self.page.evaluate("(name) => window.encore.zoom(name)", section) is True
        self.page.wait_for_selector(f'#seat-canvas[data-view="{section}"]')

    def hover_seat(self, seat_id: int) -> None:
        """Point the mouse at a seat on the canvas, as a person would, and wait for its tooltip."""
        point = self.page.evaluate("(id) => window.encore.seatPoint(id)", seat_id)
        box = self.page.locator("#seat-canvas").bounding_box()
        self.page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
        self.page.wait_for_selector("#seat-tooltip:not([hidden])")

    def message_code(self) -> str:
        return self.page.get_attribute("#message", "data-code") or ""

    def close(self) -> None:
        self.context.close()


def canvas_painted(page) -> int:
    """How many seat-coloured pixels the seat map has: a blank canvas has none."""
    return page.evaluate(
        """() => {
            const canvas = document.getElementById('seat-canvas');
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 16) if (data[i] > 0) painted += 1;
            return painted;
        }"""
    )


def stored_booking_number(service, booking_id: str) -> str:
    """The booking number as the store keeps it (its sequence number, migration 4)."""
    from domain.booking import booking_number

    path = service.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        seq, created_at = db.execute("SELECT seq, created_at FROM bookings WHERE booking_id = ?", (booking_id,)).fetchone()
    return booking_number(seq, created_at)


def log_rows(page) -> list[dict]:
    """Every row of the log view, following #log-next to the last page."""
    rows: list[dict] = []
    while True:
        page.wait_for_function(
            "() => { const t = document.getElementById('log-table');"
            " return t.dataset.page !== '0' && t.getAttribute('aria-busy') === 'false'; }"
        )
        rows += page.eval_on_selector_all(
            "#log-table tbody tr[data-type]",
            """rows => rows.map(r => ({
                type: r.dataset.type,
                booking_id: r.dataset.bookingId,
                member: r.dataset.memberId,
                username: r.cells[3].textContent.trim(),
                at: r.cells[0].textContent.trim(),
                detail: r.cells[5].textContent.trim(),
                seats: r.cells[4].textContent.trim(),
            }))""",
        )
        next_button = page.locator("#log-next")
        if next_button.is_disabled():
            return rows
        page_before = page.get_attribute("#log-table", "data-page")
        next_button.click()
        page.wait_for_function(
            "(before) => document.getElementById('log-table').dataset.page !== before", arg=page_before
        )


def test_two_people_one_seat_in_the_browser(browser, service):
    started = time.monotonic()
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = service.url
    suffix = uuid.uuid4().hex[:6]
    alice = Tab(browser, url, "alice")
    bob = Tab(browser, url, "bob")
    admin_tab = Tab(browser, url, "admin")
    tabs = [alice, bob, admin_tab]
    try:
        # ---- log in page, then sign up through it (straight after a crowd joins the queue)
        for tab in (alice, bob):
            tab.goto()
            tab.wait_hash(r"#/login$")
            tab.page.wait_for_selector("#signup-button")
        alice.sign_up(f"alice{suffix}", "alice-password-1", "앨리스")
        bob.sign_up(f"bob{suffix}", "bob-password-1", "민준")
        # Korean first, one language at a time; the show is named in the header of every screen
        view_text = alice.page.inner_text("#view")
        assert "로그인" in view_text and "Log in" not in view_text, view_text
        with service.client() as http:
            show = http.get("/api/show").json()
            venue = http.get("/api/venue").json()
        alice.page.wait_for_selector("#show-strip:not([hidden])")
        assert show["title"] in alice.page.inner_text("#show-title")
        assert "년" in alice.page.inner_text("#show-time") and "오후" in alice.page.inner_text("#show-time")
        alice.shot("01-login.png")

        crowd = [Person(service) for _ in range(CROWD)]
        for person in crowd:
            assert person.http.post("/api/queue").status_code == 200
        alice.page.click("#signup-button")
        bob.page.click("#signup-button")

        # ---- the waiting room: people really are ahead
        alice.wait_hash(r"#/queue$")
        alice.page.wait_for_selector("#queue-ahead[data-ahead]", state="attached")
        ahead = int(alice.page.get_attribute("#queue-ahead", "data-ahead"))
        assert ahead >= 1, "the crowd that joined first should be ahead"
        assert alice.page.get_attribute("#queue-state", "data-state") == "waiting"
        assert "앞에" in alice.page.inner_text("#queue-ahead-text")
        assert alice.page.get_attribute(".show-card", "data-show") == show["title"]
        assert re.search(r"#\d+", alice.page.inner_text("#queue-ticket")), "the ticket shows the place number"
        alice.shot("02-waiting-room.png")

        # ---- both are admitted to the seat map
        for tab in (alice, bob):
            tab.wait_hash(r"#/seats$")
            tab.wait_seat_map()
            assert tab.seat_status(CONTESTED_SEAT) == "A"
            assert tab.seat_status(OTHER_SEAT) == "A"
        alice_id, bob_id = alice.member_id(), bob.member_id()
        assert canvas_painted(alice.page) > 10_000, "the seat map canvas is blank"
        # the grades with their prices, and each section's chip: grade, price, seats left
        grades = {g["name"]: g for g in venue["grades"]}
        legend = alice.page.inner_text("#grade-legend")
        for grade in grades.values():
            assert f"{grade['name']}석" in legend and f"{grade['price']:,}원" in legend, legend
        section_a = next(s for s in venue["sections"] if s["name"] == "A")
        vip = grades[section_a["grade"]]
        chip_a = alice.page.inner_text('#zoom-bar .chip[data-section="A"]')
        assert f"{vip['name']}석" in chip_a and f"{vip['price']:,}원" in chip_a and "잔여 1,000석" in chip_a, chip_a
        left_before = bob.page.evaluate("() => window.encore.seatsLeft('A')")
        assert left_before == 1000
        for tab in (alice, bob):
            tab.select(CONTESTED_SEAT)
        assert alice.page.inner_text("#selected-seats").strip().startswith(CONTESTED_LABEL)
        assert alice.page.get_attribute("#selected-total", "data-amount") == str(vip["price"] + venue["booking_fee"])
        alice.shot("03-seat-map.png")
        alice.zoom("A")
        alice.shot("04-seat-map-section.png")

        # ---- the race: both press "hold" for the same seat at once
        for tab in (alice, bob):
            tab.page.wait_for_selector("#hold-button:not([disabled])")
        alice.page.evaluate("() => document.getElementById('hold-button').click()")
        bob.page.evaluate("() => document.getElementById('hold-button').click()")

        def outcome(tab: Tab) -> str:
            tab.page.wait_for_function(
                "() => location.hash.startsWith('#/bookings/') ||"
                " ['seat_unavailable', 'seat_taken'].includes(document.getElementById('message').dataset.code)"
            )
            return "won" if "#/bookings/" in tab.page.url else "lost"

        results = {tab.who: outcome(tab) for tab in (alice, bob)}
        assert sorted(results.values()) == ["lost", "won"], f"exactly one hold must win: {results}"
        winner, loser = (alice, bob) if results["alice"] == "won" else (bob, alice)
        winner_id, loser_id = (alice_id, bob_id) if winner is alice else (bob_id, alice_id)
        winner_name, loser_name = (f"alice{suffix}", f"bob{suffix}") if winner is alice else (f"bob{suffix}", f"alice{suffix}")

        # ---- the winner: checkout page with the countdown, the provider's page, confirmed
        winner.page.wait_for_selector('#booking-status[data-status="held"]')
        winner_booking = winner.page.get_attribute("#booking-card", "data-booking-id")
        winner.page.wait_for_selector("#countdown[data-seconds]")
        assert 0 < int(winner.page.get_attribute("#countdown", "data-seconds")) <= HOLD_SECONDS
        assert winner.page.get_attribute("#booking-seats", "data-seat-ids") == str(CONTESTED_SEAT)
        # the checkout: the seat, its grade and price, the total = the grade prices (+ the fee)
        seat_row = winner.page.locator(f'#booking-seats tr[data-seat-id="{CONTESTED_SEAT}"]')
        assert seat_row.get_attribute("data-grade") == vip["name"] and seat_row.get_attribute("data-price") == str(vip["price"])
        assert CONTESTED_LABEL in seat_row.inner_text() and f"{vip['price']:,}원" in seat_row.inner_text()
        total = vip["price"] + venue["booking_fee"]
        assert winner.page.get_attribute("#booking-total", "data-amount") == str(total)
        assert f"{total:,}원" in winner.page.inner_text("#booking-total")
        providers = winner.page.eval_on_selector_all("#provider-select option", "os => os.map(o => [o.value, o.textContent])")
        assert {("mockpay", "카카오페이"), ("fakecard", "신용카드")} <= {tuple(p) for p in providers}, providers
        winner.page.select_option("#provider-select", "fakecard")
        winner.shot("05-checkout.png")
        winner.page.click("#pay-button")
        winner.page.wait_for_url(re.compile(r"/pg/fakecard/checkout/"))
        winner.page.wait_for_selector("#checkout #pay-button:not([disabled])")
        assert CONTESTED_LABEL in winner.page.inner_text(".seats")
        assert winner.page.inner_text("#provider-name") == "신용카드"
        assert winner.page.get_attribute("#amount", "data-amount") == str(total)
        winner.shot("06-provider-checkout.png")
        winner.page.click("#checkout #pay-button")
        winner.wait_hash(r"#/bookings/")
        winner.page.wait_for_selector('#booking-status[data-status="confirmed"]')
        winner.page.wait_for_selector('#payment-status[data-status="succeeded"]')
        assert winner.page.get_attribute("#booking-card", "data-booking-id") == winner_booking
        # the booking number shown is the one stored for this booking
        stored_number = stored_booking_number(service, winner_booking)
        assert re.fullmatch(r"T\d{4}-\d{4,}-\d{2}", stored_number), stored_number
        assert winner.page.inner_text("#booking-number") == stored_number
        assert "신용카드" in winner.page.inner_text("#payment-status")
        winner.shot("07-confirmed.png")

        # ---- the loser: told the seat was taken; the map shows it sold once the winner paid
        assert loser.message_code() in ("seat_unavailable", "seat_taken")
        assert CONTESTED_LABEL in loser.page.inner_text("#message")
        # the section's chip counted the winner's seat out (from the map the page already reads)
        loser.page.wait_for_function("(n) => window.encore.seatsLeft('A') === n", arg=left_before - 1)
        assert loser.page.get_attribute("#selected-seats", "data-seat-ids") == ""
        loser.page.wait_for_function("(id) => window.encore.seatStatus(id) === 'S'", arg=CONTESTED_SEAT)
        loser.zoom("A")  # the sold seat is big enough to see
        loser.shot("08-seat-taken.png")
        assert loser.page.evaluate("(id) => window.encore.selectSeat(id)", CONTESTED_SEAT) is False

        # ---- the loser holds another seat and lets the hold expire
        loser.select(OTHER_SEAT)
        loser.page.click("#hold-button")
        loser.wait_hash(r"#/bookings/")
        loser.page.wait_for_selector('#booking-status[data-status="held"]')
        loser_booking = loser.page.get_attribute("#booking-card", "data-booking-id")
        loser.page.wait_for_selector("#countdown[data-seconds]")
        loser.page.wait_for_selector('#booking-status[data-status="expired"]', timeout=HOLD_SECONDS * 1000 + WAIT_MS)
        assert loser.message_code() == "hold_expired"
        assert "반환" in loser.page.inner_text("#booking-description")
        loser.shot("09-hold-expired.png")

        # ---- ... and sees the seat released on the seat map
        loser.page.click('#nav a[href="#/seats"]')
        loser.wait_hash(r"#/seats$")
        loser.wait_seat_map()
        loser.page.wait_for_function("(id) => window.encore.seatStatus(id) === 'A'", arg=OTHER_SEAT)
        assert loser.seat_status(CONTESTED_SEAT) == "S"
        loser.zoom("A")
        loser.hover_seat(OTHER_SEAT)
        tooltip = loser.page.inner_text("#seat-tooltip")
        assert OTHER_LABEL in tooltip and "선택 가능" in tooltip, tooltip
        loser.shot("10-seat-released.png")

        # ---- my bookings, for both
        winner.page.click('#nav a[href="#/bookings"]')
        winner.page.wait_for_selector('#my-bookings[aria-busy="false"]')
        mine = winner.page.eval_on_selector_all("#my-bookings tr[data-booking-id]", "rs => rs.map(r => [r.dataset.bookingId, r.dataset.status])")
        assert mine == [[winner_booking, "confirmed"]]
        row_text = winner.page.inner_text(f'#my-bookings tr[data-booking-id="{winner_booking}"]')
        for expected in (stored_number, CONTESTED_LABEL, f"{vip['name']}석", f"{total:,}원", "예매 확정", "신용카드"):
            assert expected in row_text, (expected, row_text)
        winner.shot("11-my-bookings.png")
        loser.page.click('#nav a[href="#/bookings"]')
        loser.page.wait_for_selector('#my-bookings[aria-busy="false"]')
        mine = loser.page.eval_on_selector_all("#my-bookings tr[data-booking-id]", "rs => rs.map(r => [r.dataset.bookingId, r.dataset.status])")
        assert mine == [[loser_booking, "expired"]]
        loser.shot("12-my-bookings-expired.png")

        # ---- the admin logs in through the page and finds all of it in the log
        admin_name = f"admin{suffix}"
        make_admin(service, admin_name)
        admin_tab.goto("#/admin/logs")
        admin_tab.wait_hash(r"#/login$")
        admin_tab.page.fill("#login-username", admin_name)
        admin_tab.page.fill("#login-password", "admin-password-1")
        admin_tab.page.click("#login-button")
        admin_tab.wait_hash(r"#/admin/logs$")
        admin_tab.page.wait_for_selector('#member-nickname[data-role="admin"]')
        rows = log_rows(admin_tab.page)

        def types(**where) -> set[str]:
            return {r["type"] for r in rows if all(r[k] == v for k, v in where.items())}

        assert types(booking_id=winner_booking) >= {"hold_created", "payment_started", "payment_succeeded", "booking_confirmed"}
        assert types(booking_id=loser_booking) >= {"hold_created", "hold_expired"}
        assert "booking_confirmed" not in types(booking_id=loser_booking)
        for member in (winner_id, loser_id):
            assert types(member=str(member)) >= {"queue_joined", "queue_admitted", "hold_created"}
        # rows that name seats name the right ones (payment events may carry none)
        assert {r["seats"] for r in rows if r["booking_id"] == winner_booking} - {""} == {CONTESTED_LABEL}
        assert {r["seats"] for r in rows if r["booking_id"] == loser_booking} - {""} == {OTHER_LABEL}
        # people by username, times on the hall's clock, details as words (not JSON)
        names = {winner_id: winner_name, loser_id: loser_name}
        for r in rows:
            if r["member"] in {str(winner_id), str(loser_id)}:
                assert r["username"] == names[int(r["member"])], r
            assert "{" not in r["detail"] and re.match(r"\d{4}\. \d{2}\. \d{2}\. (오전|오후) ", r["at"]), r
        [payment_row] = [r for r in rows if r["booking_id"] == winner_booking and r["type"] == "payment_started"]
        assert "신용카드" in payment_row["detail"], payment_row
        # the dashboard: the winner's VIP seat sold, a payment succeeded
        admin_tab.page.wait_for_selector('#dashboard[aria-busy="false"]')
        vip_row = admin_tab.page.locator(f'#dashboard-grades tr[data-grade="{vip["name"]}"]')
        assert int(vip_row.get_attribute("data-sold")) >= 1
        assert admin_tab.page.locator('#dashboard-payments tr[data-status="succeeded"]').count() == 1
        admin_tab.shot("13-admin-log.png")

        # the CSV export of the filtered log opens with its Hangul intact
        admin_tab.page.fill("#log-booking-id", winner_booking)
        with admin_tab.page.expect_response(lambda r: "/api/admin/logs" in r.url and winner_booking in r.url):
            admin_tab.page.click("#log-search")
        with admin_tab.page.expect_download() as download_info:
            admin_tab.page.click("#log-export")
        raw = Path(download_info.value.path()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM, so Excel reads the Hangul"
        table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert table[0] == ["시각 (KST)", "종류", "예매 ID", "아이디", "좌석", "상세"], table[0]
        exported = table[1:]
        assert exported and {row[2] for row in exported} == {winner_booking}, exported
        assert {"선점 생성", "결제 시작", "결제 성공", "예매 확정"} <= {row[1] for row in exported}
        assert {row[3] for row in exported} == {winner_name} and {row[4] for row in exported} - {""} == {CONTESTED_LABEL}
        assert any("신용카드" in row[5] for row in exported), exported
        admin_tab.page.fill("#log-booking-id", "")

        # the contested seat's history: only the winner's booking ever had it
        admin_tab.page.fill("#log-seat-id", str(CONTESTED_SEAT))
        with admin_tab.page.expect_response(lambda r: "/api/admin/logs" in r.url and f"seat_id={CONTESTED_SEAT}" in r.url):
            admin_tab.page.click("#log-search")
        seat_rows = log_rows(admin_tab.page)
        assert {r["booking_id"] for r in seat_rows} == {winner_booking}, seat_rows
        assert {"hold_created", "booking_confirmed"} <= {r["type"] for r in seat_rows}
        admin_tab.shot("14-admin-log-seat.png")

        errors = [e for tab in tabs for e in tab.errors]
        assert not errors, f"JavaScript errors on the page: {errors}"
    except Exception:
        FAILURES.mkdir(parents=True, exist_ok=True)
        for tab in tabs:  # what each person saw when it went wrong
            try:
                path = FAILURES / f"failed-{tab.who}.png"
                tab.page.screenshot(path=str(path), full_page=True)
                print(f"{tab.who} at {tab.page.url}: {path}; errors {tab.errors}")
            except Exception:  # noqa: BLE001 - the original failure matters more
                pass
        raise
    finally:
        for tab in tabs:
            tab.close()
    print(f"browser journey took {time.monotonic() - started:.1f} s")
