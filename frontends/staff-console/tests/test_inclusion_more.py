"""The staff console's venues, data-SIM vouchers and Essential Digital Skills outcomes on the
real platform (every service, the gateway, Kafka, PostgreSQL) in a real browser: each form's
errors first, then the change made through the inclusion API and shown back; axe-core on every
page and error state (zero WCAG 2.2 A/AA violations) and each page's HTML through the Nu HTML
Checker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
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
CITIZEN = "citizen-dev-3"


class Pages:
    """The browser's pages, each checked as reached (axe-core, and the HTML kept for the Nu
    HTML Checker)."""

    def __init__(
        self, driver: Any, base: str, html_checker: HtmlChecker, *, javascript: bool = True
    ) -> None:
        self.driver, self.base, self.html = driver, base, html_checker
        self.javascript = javascript

    def check(self, name: str) -> None:
        if not self.javascript:  # the server's HTML only: axe-core needs JavaScript
            self.html.add(name + " (no JavaScript)", "<!DOCTYPE html>\n" + self.driver.page_source)
            return
        violations = axe_violations(self.driver)
        assert violations == [], f"{name}: {violations}"
        self.html.add(name, "<!DOCTYPE html>\n" + self.driver.page_source)
        save_screenshots(self.driver, "staff-console " + name)

    def fill(self, field_id: str, value: str) -> None:
        element = self.driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)

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


def test_venue_added_voucher_given_and_skills_recorded(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    """Add a venue (errors first); a connectivity programme's session there is booked by a
    citizen; add voucher codes (a bad code first) and give the participant one; record their
    baseline and follow-up assessments (errors first, then a duplicate refused) and read the
    programme's outcome figures."""
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    venue = f"Fishermead Hub {uuid.uuid4().hex[:6]}"
    sign_in(browser, console, STAFF, start="/inclusion")
    pages.follow('a[href="/inclusion/venues"]')
    pages.check("inclusion: venues")
    pages.follow('a[href="/inclusion/venues/new"]')
    pages.check("inclusion: add a venue")
    pages.fill("postcode", "nowhere")
    pages.fill("latitude", "48.85")
    pages.submit()
    assert pages.errors() == [
        "Enter the venue's name",
        "Enter the venue's address",
        "Enter a postcode, like MK9 3EJ",
        "Choose the venue's ward",
        "Enter the latitude in Milton Keynes, from 51.9 to 52.25",
        "Enter the longitude in Milton Keynes, from -1.0 to -0.4",
    ]
    pages.check("inclusion: add a venue error")
    pages.fill("name", venue)
    pages.fill("address", "Fishermead Boulevard, Milton Keynes")
    pages.fill("postcode", "mk6 2lp")
    pages.choose("ward", "Woughton and Fishermead")
    pages.fill("latitude", "52.0331")
    pages.fill("longitude", "-0.7466")
    pages.fill("accessibility_notes", "Step-free access; hearing loop")
    pages.submit()
    assert "Venue added" in browser.page_source
    pages.check("inclusion: venues after adding")
    row = next(r for r in pages.cells("venues") if r[0] == venue)
    assert row[1:] == [
        "Fishermead Boulevard, Milton Keynes, MK6 2LP",
        "Woughton and Fishermead",
        "Step-free access; hearing loop",
    ]

    # a connectivity programme with a session at the new venue, booked by a citizen
    title = f"Get online {uuid.uuid4().hex[:6]}"
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        venue_id = next(v["id"] for v in staff.get("/api/v1/venues").json() if v["name"] == venue)
        made = staff.post(
            "/api/v1/programmes",
            json={"title": title, "kind": "connectivity", "delivered_by": "MK Library"},
        )
        assert made.status_code == 201, made.text
        programme_id = made.json()["id"]
        published = staff.post(
            f"/api/v1/programmes/{programme_id}/status", json={"status": "published"}
        )
        assert published.status_code == 200, published.text
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
        session = staff.post(
            "/api/v1/sessions",
            json={
                "programme_id": programme_id,
                "venue_id": venue_id,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "capacity": 5,
            },
        )
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]
    with _api(platform_up, CITIZEN, "citizen") as citizen:
        booked = citizen.post(
            f"/api/v1/sessions/{session_id}/enrolments",
            json={"consent": True, "postcode": "MK6 2LP"},
        )
        assert booked.status_code in (200, 201), booked.text
        participant = booked.json()["participant_id"]

    # vouchers: a bad code first, then three codes; the participant gets one
    browser.get(f"{console}/inclusion/vouchers")
    pages.check("inclusion: vouchers")
    pages.choose("stock_programme_id", title)
    pages.fill("provider", "National Databank (Vodafone)")
    pages.fill("codes", "GOOD-0001\nno!")
    pages.submit("#codes-form")
    assert pages.errors() == ["These codes are not valid (4 to 100 letters, digits or -): no!"]
    pages.check("inclusion: vouchers error")
    codes = [f"MK{uuid.uuid4().hex[:10].upper()}" for _ in range(3)]
    pages.fill("codes", "\n".join(codes))
    pages.submit("#codes-form")
    assert "3 voucher codes added" in browser.page_source
    assert [title, "3", "0", "3"] in pages.cells("stock")
    browser.get(f"{console}/inclusion/sessions/{session_id}")
    pages.follow(f'a[href="/inclusion/vouchers?participant={participant}"]')
    assert browser.find_element(By.ID, "participant_id").get_attribute("value") == participant
    pages.choose("programme_id", title)
    pages.submit("#allocate-form")
    assert "Voucher given to the participant" in browser.page_source
    assert [title, "3", "1", "2"] in pages.cells("stock")
    with _api(platform_up, CITIZEN, "citizen") as citizen:
        mine = citizen.get("/api/v1/vouchers/mine").json()
        assert next(v["code"] for v in mine if v["programme_id"] == programme_id) in codes
    # a second voucher for the same participant is refused, shown as the form's error
    pages.choose("programme_id", title)
    pages.fill("participant_id", participant)
    pages.submit("#allocate-form")
    assert len(pages.errors()) == 1
    pages.check("inclusion: vouchers refused")

    # Essential Digital Skills: errors, a baseline, a follow-up, a duplicate refused
    browser.get(f"{console}/inclusion/programmes/{programme_id}")
    pages.follow(f'a[href="/inclusion/programmes/{programme_id}/outcomes"]')
    pages.check("inclusion: outcomes")
    pages.fill("participant_id", "not a reference")
    pages.submit()
    errors = pages.errors()
    assert errors[:2] == [
        "Enter the participant's reference, from a session's page",
        "Choose baseline or follow-up",
    ]
    assert errors[2:] == [
        f"Choose the confidence for {label}"
        for label in (
            "foundation skills",
            "communicating",
            "handling information and content",
            "transacting",
            "problem solving",
            "being safe and legal online",
        )
    ]
    pages.check("inclusion: outcomes error")
    skills = (
        "foundation",
        "communicating",
        "handling_information",
        "transacting",
        "problem_solving",
        "being_safe_and_legal",
    )
    for stage, stage_id, score in (("baseline", "stage", "1"), ("follow-up", "stage-2", "3")):
        browser.get(
            f"{console}/inclusion/programmes/{programme_id}/outcomes?participant={participant}"
        )
        browser.find_element(By.ID, stage_id).click()
        for skill in skills:
            Select(browser.find_element(By.ID, skill)).select_by_value(score)
        pages.submit()
        assert f"Assessment recorded ({stage})" in browser.page_source
    pages.check("inclusion: outcomes recorded")
    assert (
        "1 baseline assessment, 1 follow-up" in browser.find_element(By.ID, "outcome-counts").text
    )
    figures = pages.cells("outcomes")
    assert figures[0] == ["Foundation skills", "1.0", "3.0", "1"]
    assert len(figures) == 6 and all(r[1:] == ["1.0", "3.0", "1"] for r in figures)
    # the same stage again is refused by the API: the form says why, nothing is added
    browser.find_element(By.ID, "participant_id").send_keys(participant)
    browser.find_element(By.ID, "stage").click()
    for skill in skills:
        Select(browser.find_element(By.ID, skill)).select_by_value("2")
    pages.submit()
    assert len(pages.errors()) == 1
    pages.check("inclusion: outcomes refused")
    assert (
        "1 baseline assessment, 1 follow-up" in browser.find_element(By.ID, "outcome-counts").text
    )
    assert html_checker.errors() == {}


# -- the catalogue's Open311 attribute definitions as a form ----------------------------------
def _codes(pages: Pages) -> list[str]:
    found = pages.driver.find_elements(By.CSS_SELECTOR, "input[id$='-code']")
    return [str(e.get_attribute("value")) for e in found]


def _action(pages: Pages, value: str) -> None:
    pages.follow("#save" if value == "save" else f'#attributes-form button[value="{value}"]')


def test_report_questions_added_reordered_saved_and_a_lost_race_shown(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    """A service's Open311 attributes edited as a form (every button a round trip): add two
    questions, errors on save, fix them, move one up, add and remove a third, save with Enter
    (the form's default button saves); the definitions reach Open311 in the new order. Then
    someone saves through the API while the form is open: the save is refused on its
    If-Match and the page shows their questions beside the editor's; saving again wins."""
    _report_questions(platform_up, browser, html_checker, javascript=True)


def test_report_questions_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    _report_questions(platform_up, nojs_browser, html_checker, javascript=False)


def _report_questions(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, *, javascript: bool
) -> None:
    name = f"Potholes {uuid.uuid4().hex[:6]}"
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        made = staff.post("/api/v1/services", json={"name": name})
        assert made.status_code == 201, made.text
        service_id, code = made.json()["id"], made.json()["service_code"]
        assert staff.post(f"/api/v1/services/{service_id}/publish").status_code == 200
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker, javascript=javascript)
    sign_in(browser, console, STAFF, start=f"/catalogue/{service_id}")
    pages.follow(f'a[href="/catalogue/{service_id}/attributes"]')
    pages.check("catalogue: report questions (none)")
    assert browser.find_elements(By.ID, "no-questions")
    _action(pages, "add")
    _action(pages, "add")
    assert _codes(pages) == ["", ""]
    pages.fill("attr-0-code", "depth")
    pages.fill("attr-0-description", "How deep is it?")
    pages.choose("attr-0-datatype", "Choose one from a list")
    pages.fill("attr-1-values", "stray: A value on a text answer")
    _action(pages, "save")
    assert pages.errors() == [
        "Attribute 1: enter the list's values",
        "Attribute 2: enter a code of letters, digits, _ . or - (at most 64)",
        "Attribute 2: enter the question asked",
        "Attribute 2: only a list takes values (choose a list, or remove them)",
    ]
    pages.check("catalogue: report questions error")
    pages.fill("attr-0-values", "shallow: Under 5cm\ndeep: Deeper than 5cm")
    browser.find_element(By.ID, "attr-0-required").click()
    pages.fill("attr-1-code", "where")
    pages.fill("attr-1-description", "Where exactly is it?")
    pages.choose("attr-1-datatype", "Long text")
    pages.fill("attr-1-values", "")
    _action(pages, "up-1")
    assert _codes(pages) == ["where", "depth"]
    _action(pages, "add")
    assert _codes(pages) == ["where", "depth", ""]
    pages.check("catalogue: report questions, three")
    _action(pages, "remove-2")
    assert _codes(pages) == ["where", "depth"]
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "attr-0-description").send_keys(Keys.ENTER)
    WebDriverWait(browser, 60).until(page_replaced(old))
    assert "Service questions saved" in browser.page_source
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        saved = staff.get(f"/api/v1/services/{service_id}").json()["attributes"]
        assert [(a["code"], a["order"], a["required"], a["datatype"]) for a in saved] == [
            ("where", 1, False, "text"),
            ("depth", 2, True, "singlevaluelist"),
        ]
        assert saved[1]["values"] == [
            {"key": "shallow", "name": "Under 5cm"},
            {"key": "deep", "name": "Deeper than 5cm"},
        ]
        definition = staff.get(f"/open311/v2/services/{code}.json")
        assert definition.status_code == 200, definition.text
        assert [a["code"] for a in definition.json()["attributes"]] == ["where", "depth"]

    # someone saves through the API while the form is open
    pages.follow(f'a[href="/catalogue/{service_id}/attributes"]')
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        response = staff.get(f"/api/v1/services/{service_id}")
        theirs = [
            {"code": "photo_taken", "description": "Did you take a photo?", "datatype": "string"}
        ]
        changed = staff.patch(
            f"/api/v1/services/{service_id}",
            json={"attributes": theirs},
            headers={"if-match": response.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
    _action(pages, "remove-0")
    assert _codes(pages) == ["depth"]
    _action(pages, "save")
    assert pages.errors() == [
        "Someone else changed this service while you were editing its questions: "
        "check theirs below, then save again"
    ]
    assert "photo_taken: Did you take a photo?" in browser.find_element(By.ID, "theirs").text
    assert _codes(pages) == ["depth"]
    pages.check("catalogue: report questions, a lost race")
    _action(pages, "save")
    assert "Service questions saved" in browser.page_source
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        saved = staff.get(f"/api/v1/services/{service_id}").json()["attributes"]
        assert [a["code"] for a in saved] == ["depth"]
    assert html_checker.errors() == {}
