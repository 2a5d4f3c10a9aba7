"""The staff console's request queue filtered by area, and a venue's details changed, on the
real platform (every service, the gateway, Kafka, PostgreSQL) in a real browser: axe-core on
every page and error state (zero WCAG 2.2 A/AA violations), each page's HTML through the Nu
HTML Checker, and the same tasks again with JavaScript off."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from webkit.testing import (
    HtmlChecker,
    PlatformUp,
    axe_violations,
    page_replaced,
    save_screenshots,
    sign_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STAFF = "staff-dev-1"
CITIZEN = "citizen-dev-2"
SERVICE = "report-a-missed-bin-collection"  # seeded, reportable


class Pages:
    """The browser's pages, each checked as reached (axe-core with JavaScript on; the HTML
    kept for the Nu HTML Checker either way)."""

    def __init__(
        self, driver: Any, base: str, html_checker: HtmlChecker, *, javascript: bool
    ) -> None:
        self.driver, self.base, self.html = driver, base, html_checker
        self.javascript = javascript
        self.suffix = "" if javascript else " (no JavaScript)"

    def check(self, name: str) -> None:
        if self.javascript:
            violations = axe_violations(self.driver)
            assert violations == [], f"{name}: {violations}"
            save_screenshots(self.driver, "staff-console " + name)
        self.html.add(name + self.suffix, "<!DOCTYPE html>\n" + self.driver.page_source)

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def fill(self, field_id: str, value: str) -> None:
        element = self.driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)

    def value(self, field_id: str) -> str:
        return str(self.driver.find_element(By.ID, field_id).get_attribute("value"))

    def choose(self, field_id: str, text: str) -> None:
        Select(self.driver.find_element(By.ID, field_id)).select_by_visible_text(text)

    def follow(self, selector: str) -> None:
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        WebDriverWait(self.driver, 60).until(page_replaced(old))

    def submit(self, form: str = "main form") -> None:
        self.follow(f"{form} button[type=submit]")

    def errors(self) -> list[str]:
        found = self.driver.find_elements(By.CSS_SELECTOR, ".govuk-error-summary__list li")
        return [e.text for e in found]

    def cells(self, table: str) -> list[list[str]]:
        rows = self.driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
        return [[c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")] for r in rows]


def _api(platform: PlatformUp, subject: str, *roles: str) -> httpx.Client:
    token = platform.token(subject, *roles)
    return httpx.Client(
        base_url=platform.gateway_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


# -- the request queue, filtered by area -----------------------------------------------------
def _report(platform: PlatformUp, where: dict[str, Any]) -> str:
    """A citizen reports a missed bin through the API; the request's short reference."""
    with _api(platform, CITIZEN, "citizen") as citizen:
        made = citizen.post(
            "/api/v1/service-requests",
            json={
                "service_code": SERVICE,
                "description": "The grey bin was not emptied.",
                "attributes": {"bin": "refuse", "collection_date": "2026-12-01T08:00:00Z"},
                **where,
            },
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])[:8].upper()


def _queue_by_area(platform: PlatformUp, driver: Any, html: HtmlChecker, *, js: bool) -> None:
    central = _report(platform, {"address": "1 Saxon Gate East, Milton Keynes MK9 3EJ"})
    olney = _report(platform, {"lat": 52.1530, "long": -0.7010})
    console = platform.frontend_urls["staff-console"]
    pages = Pages(driver, console, html, javascript=js)
    sign_in(driver, console, STAFF, start="/requests")
    pages.check("queue: any area")
    shown = [row[0] for row in pages.cells("queue")]
    assert central in shown and olney in shown
    pages.choose("area", "MK46: Olney, Emberton")
    pages.submit('form[action="/requests"]')
    assert "area=MK46" in driver.current_url
    rows = pages.cells("queue")
    assert [row[0] for row in rows if row[0] in (central, olney)] == [olney]
    assert all(row[2] == "MK46" for row in rows)
    assert Select(driver.find_element(By.ID, "area")).first_selected_option.text.startswith("MK46")
    pages.check("queue: one area")
    pages.choose("area", "MK9: Central Milton Keynes")
    pages.choose("status", "Fixed")
    pages.submit('form[action="/requests"]')
    assert not driver.find_elements(By.ID, "queue")
    assert driver.find_element(By.ID, "result-count").text == "0 requests"
    pages.check("queue: one area, none fixed")
    pages.choose("status", "Any status")
    pages.submit('form[action="/requests"]')
    assert central in [row[0] for row in pages.cells("queue")]
    pages.follow(f'#queue a[href^="/requests/"][href*="{central.lower()}"]')
    assert "MK9" in driver.find_element(By.CSS_SELECTOR, ".govuk-summary-list").text
    # an area the API does not know is no filter (the console never sends it)
    pages.go("/requests?area=SW1")
    assert Select(driver.find_element(By.ID, "area")).first_selected_option.text == "Any area"


def test_queue_filtered_by_area(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    _queue_by_area(platform_up, browser, html_checker, js=True)


def test_queue_filtered_by_area_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    _queue_by_area(platform_up, nojs_browser, html_checker, js=False)
    assert html_checker.errors() == {}


# -- a venue changed -------------------------------------------------------------------------
def _venue_changed(platform: PlatformUp, driver: Any, html: HtmlChecker, *, js: bool) -> None:
    """A venue's details changed (errors first), read back through the API with who changed
    it; then an edit that loses the If-Match race comes back merged, and saves."""
    name = f"Netherfield Hub {uuid.uuid4().hex[:6]}"
    with _api(platform, "admin-dev-1", "admin", "staff") as staff:
        made = staff.post(
            "/api/v1/venues",
            json={
                "name": name,
                "address": "Marlborough Street, Netherfield",
                "postcode": "MK6 4AA",
                "ward": "Woughton and Fishermead",
                "latitude": 52.0230,
                "longitude": -0.7380,
            },
        )
        assert made.status_code == 201, made.text
        venue_id = made.json()["id"]
    console = platform.frontend_urls["staff-console"]
    pages = Pages(driver, console, html, javascript=js)
    sign_in(driver, console, STAFF, start="/inclusion/venues")
    pages.follow(f'a[href="/inclusion/venues/{venue_id}/edit"]')
    pages.check("venue: change")
    assert "Not changed since it was added" in driver.page_source
    assert pages.value("postcode") == "MK6 4AA" and pages.value("latitude") == "52.023"
    pages.fill("name", "")
    pages.fill("postcode", "nowhere")
    pages.fill("latitude", "48.85")
    pages.fill("opening_times", "Monday 09:00-17:00\nSomeday 9-5")
    pages.submit()
    assert pages.errors() == [
        "Enter the venue's name",
        "Enter a postcode, like MK6 2LP",
        "Enter the latitude in Milton Keynes, from 51.9 to 52.25",
        "Write each opening time as a day and two times, like Monday 09:00-17:00 "
        "(not: Someday 9-5)",
    ]
    pages.check("venue: change error")
    renamed = name + " (Community Centre)"
    pages.fill("name", renamed)
    pages.fill("postcode", "mk6 2lp")
    pages.fill("latitude", "52.0235")
    pages.fill("accessibility_notes", "Step-free entrance; accessible toilet")
    pages.fill("opening_times", "Monday 9.00-17:00\nsaturday 10:00 to 13:00")
    pages.submit()
    assert "Venue changed" in driver.page_source
    pages.check("venues: changed")
    row = next(r for r in pages.cells("venues") if r[0] == renamed)
    assert row[1:] == [
        "Marlborough Street, Netherfield, MK6 2LP",
        "Woughton and Fishermead",
        "Step-free entrance; accessible toilet",
    ]
    with _api(platform, "admin-dev-1", "admin", "staff") as staff:
        saved = staff.get(f"/api/v1/venues/{venue_id}")
        assert saved.headers["etag"] == '"2"', saved.text
        body = saved.json()
        assert (body["postcode"], body["latitude"], body["updated_by"]) == (
            "MK6 2LP",
            52.0235,
            STAFF,
        )
        assert body["opening_times"] == [
            {"day": "monday", "opens": "09:00", "closes": "17:00"},
            {"day": "saturday", "opens": "10:00", "closes": "13:00"},
        ]

    # someone changes the name and the accessibility notes while the form is open
    pages.follow(f'a[href="/inclusion/venues/{venue_id}/edit"]')
    assert f"by {STAFF}" in driver.page_source
    with _api(platform, "admin-dev-1", "admin", "staff") as staff:
        theirs = staff.patch(
            f"/api/v1/venues/{venue_id}",
            json={"name": name + " (theirs)", "accessibility_notes": "Hearing loop"},
            headers={"if-match": '"2"'},
        )
        assert theirs.status_code == 200, theirs.text
    pages.fill("name", name + " (mine)")
    pages.choose("ward", "Campbell Park and Old Woughton")
    pages.submit()
    assert pages.errors() == ["Name was changed by someone else: check it"]
    assert name + " (theirs)" in driver.find_element(By.ID, "theirs").text
    assert pages.value("name") == name + " (mine)"
    assert pages.value("accessibility_notes") == "Hearing loop"
    assert Select(driver.find_element(By.ID, "ward")).first_selected_option.text == (
        "Campbell Park and Old Woughton"
    )
    pages.check("venue: change, a lost race")
    pages.submit()
    assert "Venue changed" in driver.page_source
    with _api(platform, "admin-dev-1", "admin", "staff") as staff:
        body = staff.get(f"/api/v1/venues/{venue_id}").json()
        assert (body["name"], body["ward"], body["accessibility_notes"], body["version"]) == (
            name + " (mine)",
            "Campbell Park and Old Woughton",
            "Hearing loop",
            4,
        )


def test_venue_changed(platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker) -> None:
    _venue_changed(platform_up, browser, html_checker, js=True)


def test_venue_changed_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    _venue_changed(platform_up, nojs_browser, html_checker, js=False)
    assert html_checker.errors() == {}
