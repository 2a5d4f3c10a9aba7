"""The citizen portal in a real browser (Debian Chromium through Selenium) on the real
platform: every journey of issue 16, axe-core on every page and error state (zero WCAG 2.2
A/AA violations), the report journey with the keyboard only, the journeys with JavaScript
off, every page's HTML through the Nu HTML Checker, and no page over 150 KB.

The two end-to-end stories: report a problem → staff set it fixed through the API → the
citizen sees it fixed and the email arrives; book a full session → waiting list → another
citizen cancels → promoted, and the email arrives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from webkit.testing import (
    HtmlChecker,
    PlatformUp,
    axe_violations,
    page_replaced,
    page_weight,
    save_screenshots,
    sign_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MAX_PAGE_BYTES = 150 * 1024
SERVICE = "report-a-missed-bin-collection"  # seeded, reportable: a list and a date question
CITIZEN = "citizen-dev-1"
OTHER_CITIZEN = "citizen-dev-2"
EMAIL = "alex.citizen@example.org"
_LINK = re.compile(r"(/api/v1/preferences/email-verification\?token=[\w.-]+)")


class Pages:
    """The browser's pages, each one checked as it is reached: axe-core (JavaScript on), its
    weight, and its HTML kept for the Nu HTML Checker (JavaScript off: the server's HTML)."""

    def __init__(self, driver: Any, base: str, html: HtmlChecker | None = None) -> None:
        self.driver = driver
        self.base = base
        self.html = html
        self.checked: list[str] = []

    def check(self, name: str) -> None:
        self.checked.append(name)
        if self.html is not None:
            self.html.add(name, "<!DOCTYPE html>\n" + self.driver.page_source)
            return
        violations = axe_violations(self.driver)
        assert violations == [], f"{name}: {violations}"
        weight = page_weight(self.driver)
        assert weight <= MAX_PAGE_BYTES, f"{name} weighs {weight} bytes"
        save_screenshots(self.driver, name)  # make screenshots

    def go(self, path: str, name: str | None = None) -> None:
        self.driver.get(self.base + path)
        if name:
            self.check(name)

    def h1(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def fill(self, field_id: str, value: str) -> None:
        element = self.driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)

    def click(self, selector: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def follow(self, selector: str) -> None:
        """Click a link or button and wait for the next page."""
        with self.next_page():
            self.click(selector)

    def submit(self) -> None:
        self.follow("main form button[type=submit], main form .govuk-button")

    @contextmanager
    def next_page(self) -> Iterator[None]:
        old = self.driver.find_element(By.TAG_NAME, "html")
        yield
        WebDriverWait(self.driver, 60).until(page_replaced(old))

    def errors(self) -> list[str]:
        return [
            e.text
            for e in self.driver.find_elements(By.CSS_SELECTOR, ".govuk-error-summary__list li")
        ]

    def inline_error(self, field_id: str) -> str:
        found = self.driver.find_elements(By.ID, field_id + "-error")
        assert found, f"no error on {field_id} at {self.driver.current_url}: {self.h1()!r}"
        return str(found[0].text)


def _api(platform: PlatformUp, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=platform.gateway_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def _eventually(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not seen within {timeout:.0f}s: {what}")


def _mail(platform: PlatformUp, to: str, subject_part: str) -> Callable[[], EmailMessage | None]:
    def find() -> EmailMessage | None:
        for message in platform.mail.messages():
            if to in str(message.get("To", "")) and subject_part in str(message.get("Subject", "")):
                return message
        return None

    return find


def _confirm_email(platform: PlatformUp, address: str) -> None:
    """The owner of ``address`` uses the link emailed to it (as ``tests/conftest.py`` does)."""

    def link() -> str | None:
        for message in platform.mail.messages():
            if address in str(message.get("To", "")):
                body = message.get_body(("plain",))
                match = _LINK.search(body.get_content() if body else "")
                if match:
                    return match.group(1)
        return None

    path = _eventually(link, f"the confirmation email to {address}")
    answer = httpx.post(platform.gateway_url + path, timeout=30)
    assert answer.status_code in (200, 204), answer.text


def _set_preferences(pages: Pages, platform: PlatformUp, address: str) -> None:
    pages.go("/preferences", "contact preferences")
    pages.fill("email", "not an email")
    pages.submit()
    assert "Enter an email address in the correct format" in pages.inline_error("email")
    pages.check("contact preferences: error")
    pages.fill("email", address)
    pages.submit()
    assert "Your contact preferences have been saved" in pages.driver.page_source
    pages.check("contact preferences: saved")
    with _api(platform, platform.token(CITIZEN, "citizen")) as api:
        if api.get("/api/v1/preferences").json().get("email") != address:
            _confirm_email(platform, address)


def _report(pages: Pages, *, keyboard: bool = False) -> str:
    """The report journey from the list of problems to the confirmation; returns the id."""
    drive = Keyboard(pages) if keyboard else None
    pages.go("/report", "report: choose")
    if drive:
        drive.follow(f'a[href="/report/{SERVICE}"]')
    else:
        pages.follow(f'a[href="/report/{SERVICE}"]')
    assert pages.h1() == "Where is the problem?"
    pages.check("report: location")
    if drive:
        drive.press_submit()
    else:
        pages.submit()
    assert pages.errors() == ["Enter the address or describe where the problem is"]
    pages.check("report: location error")
    if drive:
        drive.type_into("address", "Outside 1 Saxon Gate East")
        drive.type_into("postcode", "MK9 3EJ")
        drive.press_submit()
    else:
        pages.fill("address", "Outside 1 Saxon Gate East")
        pages.fill("postcode", "MK9 3EJ")
        pages.submit()
    assert pages.h1() == "Tell us about the problem"
    pages.check("report: questions")
    if drive:
        drive.press_submit()
    else:
        pages.submit()
    assert len(pages.errors()) == 2
    assert "Select an answer" in pages.inline_error("attr-bin")
    pages.check("report: questions error")
    if drive:
        drive.choose("attr-bin", 2)  # recycling
        drive.type_into("attr-collection_date", "1")
        drive.type_into("attr-collection_date-month", "12")
        drive.type_into("attr-collection_date-year", "2026")
        drive.press_submit()
    else:
        pages.click("#attr-bin-2")
        pages.fill("attr-collection_date", "1")
        pages.fill("attr-collection_date-month", "12")
        pages.fill("attr-collection_date-year", "2026")
        pages.submit()
    pages.check("report: description")
    text = "The recycling sacks were left on the pavement."
    if drive:
        drive.type_into("description", text)
        drive.press_submit()
    else:
        pages.fill("description", text)
        pages.submit()
    assert pages.h1() == "Your contact details"
    pages.check("report: contact")
    if drive:
        drive.choose("consent", 2)  # no
        drive.choose("public", 2)  # only me and staff
        drive.press_submit()
    else:
        pages.click("#consent-2")
        pages.click("#public-2")
        pages.submit()
    assert pages.h1() == "Check your answers before sending your report"
    assert "Recycling sacks" in pages.driver.page_source
    assert "Report a missed bin collection" in pages.driver.page_source  # the problem's name
    pages.check("report: check answers")
    if drive:
        drive.press_submit()
    else:
        pages.submit()
    assert pages.h1() == "Report sent"
    pages.check("report: sent")
    link = pages.driver.find_element(By.CSS_SELECTOR, 'main a[href^="/requests/"]')
    return str(link.get_attribute("href")).rsplit("/", 1)[1]


class Keyboard:
    """Drives a page with the keyboard only: Tab until the element has focus, then type,
    Space or Enter. Fails if Tab never reaches it."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def _focus(self, selector: str) -> Any:
        driver = self.pages.driver
        target = driver.find_element(By.CSS_SELECTOR, selector)
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)  # from the top of the page, as a person arrives
        for _ in range(250):
            if driver.switch_to.active_element == target:
                return target
            driver.switch_to.active_element.send_keys(Keys.TAB)
        raise AssertionError(f"the keyboard never reaches {selector}")

    def follow(self, selector: str) -> None:
        with self.pages.next_page():
            self._focus(selector).send_keys(Keys.ENTER)

    def type_into(self, field_id: str, text: str) -> None:
        element = self._focus(f"#{field_id}")
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(text)

    def choose(self, group: str, option: int = 1) -> None:
        """Select a radio as a keyboard user does: Tab into the group, then the arrow keys
        (Tab stops once per group)."""
        element = self._focus(f"#{group}")
        if option == 1:
            element.send_keys(Keys.SPACE)
        for _ in range(option - 1):
            self.pages.driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)

    def press_submit(self) -> None:
        with self.pages.next_page():
            self._focus("main form button[type=submit]").send_keys(Keys.ENTER)


# -- the journeys -----------------------------------------------------------------------------
def test_find_a_service_and_the_pages_a_council_must_have(
    platform_up: PlatformUp, browser: Any
) -> None:
    pages = Pages(browser, platform_up.frontend_urls["citizen-portal"])
    pages.go("/", "start page")
    pages.go("/services", "find a service")
    pages.fill("q", "bins")
    pages.submit()
    assert "for \u2018bins\u2019" in pages.driver.page_source
    pages.check("search results")
    pages.go("/services/a-z?letter=R", "A to Z")
    pages.follow('main a[href^="/services/"]:not([href*="a-z"])')
    pages.check("a service page")
    assert pages.driver.find_elements(By.CSS_SELECTOR, "dl.govuk-summary-list")
    for path in ("/accessibility", "/privacy", "/cookies", "/services/not-a-uuid"):
        pages.go(path, path)
    assert pages.h1() == "Page not found"


def test_report_a_problem_staff_fix_it_citizen_sees_it_and_gets_the_email(
    platform_up: PlatformUp, browser: Any
) -> None:
    pages = Pages(browser, platform_up.frontend_urls["citizen-portal"])
    sign_in(browser, pages.base, CITIZEN, start="/preferences")
    _set_preferences(pages, platform_up, EMAIL)
    request_id = _report(pages)

    pages.go("/requests", "my reports")
    assert request_id[:8].upper() in pages.driver.page_source
    staff = platform_up.token("staff-dev-1", "staff")
    with _api(platform_up, staff) as api:
        changed = api.post(
            f"/api/v1/service-requests/{request_id}/updates",
            json={
                "status": "fixed",
                "note": "Collected this morning.",
                "note_visibility": "public",
            },
        )
        assert changed.status_code == 200, changed.text
    pages.go(f"/requests/{request_id}", "a report, fixed")
    assert pages.driver.find_element(By.ID, "status").text == "Fixed"
    assert "Collected this morning." in pages.driver.page_source
    message = _eventually(_mail(platform_up, EMAIL, "is now fixed"), "the 'fixed' email")
    assert "fixed" in str(message["Subject"])

    # the unsubscribe link in that email lands on a page that asks first
    header = str(message.get("List-Unsubscribe", ""))
    token = re.search(r"token=([\w.\-]+)", header)
    assert token, header
    pages.go(f"/unsubscribe?token={token.group(1)}", "unsubscribe: confirm")
    assert pages.h1() == "Unsubscribe from these emails?"
    pages.submit()
    assert pages.h1() == "You have unsubscribed"
    pages.check("unsubscribe: done")
    pages.go("/unsubscribe?token=forged", "unsubscribe: a bad link")
    assert pages.h1() == "This unsubscribe link is not valid"


def _full_session(platform: PlatformUp) -> tuple[str, str, str]:
    """A new session of the seeded course with one place, booked by another citizen; returns
    (session id, that citizen's enrolment id, the venue's postcode)."""
    staff = platform.token("staff-dev-1", "staff")
    with _api(platform, staff) as api:
        programmes = api.get("/api/v1/programmes").json()
        course = next(p for p in programmes if p["title"] == "Getting started online")
        venues = api.get("/api/v1/venues").json()
        venue = venues["items"][0] if isinstance(venues, dict) else venues[0]
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=20)
        created = api.post(
            "/api/v1/sessions",
            json={
                "programme_id": course["id"],
                "venue_id": venue["id"],
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": 1,
            },
        )
        assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    with _api(platform, platform.token(OTHER_CITIZEN, "citizen")) as api:
        booked = api.post(
            f"/api/v1/sessions/{session_id}/enrolments",
            json={"consent": True, "postcode": "MK9 3EJ", "year_of_birth": 1970},
        )
        assert booked.status_code == 201 and booked.json()["status"] == "confirmed", booked.text
    return session_id, booked.json()["id"], venue["postcode"]


def _help_journey(pages: Pages, session_id: str, postcode: str, *, keyboard: bool = False) -> str:
    """Help near me → the session → eligibility → waiting list; returns the enrolment id."""
    drive = Keyboard(pages) if keyboard else None
    type_into = drive.type_into if drive else pages.fill
    send = drive.press_submit if drive else pages.submit
    follow = drive.follow if drive else pages.follow
    pages.go("/help", "help getting online")
    type_into("postcode", "SW1A 1AA")
    send()
    assert "Enter a Milton Keynes postcode" in pages.inline_error("postcode")
    pages.check("help near me: error")
    type_into("postcode", postcode)
    send()
    pages.check("help near me: results")
    follow(f'a[href="/help/sessions/{session_id}"]')
    pages.check("a session")
    follow(f'a[href="/help/sessions/{session_id}/join"]')
    pages.check("eligibility questions")
    type_into("postcode", "MK9 3EJ")
    type_into("year_of_birth", str(datetime.now(UTC).year - 10))  # too young for the course
    if drive:
        drive.choose("receives_benefits", 2)
        drive.choose("has_device_at_home", 1)
        drive.choose("has_connection_at_home", 1)
        drive.choose("consent", 1)  # a checkbox: Space ticks it
    else:
        pages.click("#receives_benefits-2")
        pages.click("#has_device_at_home")
        pages.click("#has_connection_at_home")
        pages.click("#consent")
    send()
    assert pages.errors(), "an unmet eligibility rule is shown"
    assert pages.inline_error("year_of_birth")
    pages.check("eligibility: not eligible")
    type_into("year_of_birth", "1958")
    send()
    assert pages.h1() == "You are on the waiting list"
    assert pages.driver.find_element(By.ID, "waitlist-position").text == "1"
    pages.check("booked: waiting list")
    return str(pages.driver.current_url).split("/help/bookings/")[1].split("?")[0]


def test_full_session_waiting_list_then_promoted_with_an_email(
    platform_up: PlatformUp, browser: Any
) -> None:
    pages = Pages(browser, platform_up.frontend_urls["citizen-portal"])
    browser.delete_all_cookies()
    sign_in(browser, pages.base, CITIZEN, start="/help")
    _set_preferences(pages, platform_up, EMAIL)
    session_id, other, postcode = _full_session(platform_up)
    mine = _help_journey(pages, session_id, postcode)
    with _api(platform_up, platform_up.token(OTHER_CITIZEN, "citizen")) as api:
        assert api.post(f"/api/v1/enrolments/{other}/cancel").status_code == 200
    pages.go(f"/help/bookings/{mine}", "a booking, promoted")
    assert pages.driver.find_element(By.ID, "status").text == "Booked"
    _eventually(_mail(platform_up, EMAIL, "A place has come free"), "the promotion email")
    pages.go("/help/bookings", "my bookings")
    pages.go(f"/help/bookings/{mine}/cancel", "cancel a booking")
    pages.submit()
    pages.go(f"/help/bookings/{mine}")
    assert pages.driver.find_element(By.ID, "status").text == "Cancelled"


def test_report_a_problem_with_the_keyboard_only(platform_up: PlatformUp, browser: Any) -> None:
    pages = Pages(browser, platform_up.frontend_urls["citizen-portal"])
    sign_in(browser, pages.base, OTHER_CITIZEN, start="/report")
    request_id = _report(pages, keyboard=True)
    pages.go(f"/requests/{request_id}")
    assert pages.driver.find_element(By.ID, "status").text == "Received"


def test_help_getting_online_with_the_keyboard_only(platform_up: PlatformUp, browser: Any) -> None:
    pages = Pages(browser, platform_up.frontend_urls["citizen-portal"])
    sign_in(browser, pages.base, CITIZEN, start="/help")
    session_id, _other, postcode = _full_session(platform_up)
    mine = _help_journey(pages, session_id, postcode, keyboard=True)
    keys = Keyboard(pages)
    pages.go(f"/help/bookings/{mine}")
    keys.follow(f'a[href="/help/bookings/{mine}/cancel"]')
    keys.press_submit()
    pages.go(f"/help/bookings/{mine}")
    assert pages.driver.find_element(By.ID, "status").text == "Cancelled"


def test_find_a_service_and_preferences_with_the_keyboard_only(
    platform_up: PlatformUp, browser: Any
) -> None:
    pages = Pages(browser, platform_up.frontend_urls["citizen-portal"])
    keys = Keyboard(pages)
    sign_in(browser, pages.base, OTHER_CITIZEN, start="/")
    keys.follow('a[href="/services"]')
    keys.type_into("q", "library")
    keys.press_submit()
    keys.follow('main li a[href^="/services/"]')
    assert pages.driver.find_elements(By.CSS_SELECTOR, "dl.govuk-summary-list")
    pages.go("/")
    keys.follow('a[href="/preferences"]')
    keys.type_into("email", "sam.resident@example.org")
    keys.choose("channels", 1)  # a checkbox: Space toggles it
    keys.press_submit()
    assert "Your contact preferences have been saved" in pages.driver.page_source
    keys.follow('a[href="/requests"]')
    assert pages.h1() == "My reports"


def test_every_journey_without_javascript_and_valid_html(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    pages = Pages(nojs_browser, platform_up.frontend_urls["citizen-portal"], html=html_checker)
    assert nojs_browser.execute_script("return 1") == 1  # (WebDriver's own scripts still run)
    for path in (
        "/",
        "/services",
        "/services?q=parking",
        "/services/a-z?letter=C",
        "/accessibility",
        "/privacy",
        "/cookies",
        "/no-such-page",
        "/help",
    ):
        pages.go(path, path)
    pages.go("/services?q=library")
    pages.follow('main li a[href^="/services/"]')
    pages.check("a service page")
    sign_in(nojs_browser, pages.base, CITIZEN, start="/preferences")
    pages.check("contact preferences")
    pages.fill("email", "still not an email")
    pages.submit()
    assert pages.inline_error("email")
    pages.check("contact preferences: error")
    request_id = _report(pages)
    pages.go("/requests", "my reports")
    pages.go(f"/requests/{request_id}", "a report")
    session_id, _other, postcode = _full_session(platform_up)
    mine = _help_journey(pages, session_id, postcode)
    pages.go("/help/bookings", "my bookings")
    pages.go(f"/help/bookings/{mine}/cancel", "cancel a booking")
    pages.submit()
    pages.check("bookings after cancelling")
    pages.go("/sign-out", "sign out")
    pages.submit()  # → the provider's sign-out → back here
    assert pages.h1() == "You have signed out"
    pages.check("signed out")
    invalid = html_checker.errors()
    assert invalid == {}, invalid
    assert len(html_checker.pages) >= 30
