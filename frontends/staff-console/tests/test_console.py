"""The staff console on the real platform (every service, the gateway with its dev OIDC
provider, Kafka, PostgreSQL) in a real browser (Debian Chromium through Selenium):

- the route table: an anonymous visitor is sent to sign in, and a signed-in citizen or
  partner gets 403, on every staff page and action (GET and POST, with a valid CSRF token);
  a POST without the CSRF token is refused even for staff;
- the catalogue: create (with an error first), publish, edit, an edit that loses the If-Match
  race becomes a merge page showing what changed, suspend and retire with a reason, history
  naming who made each change; axe-core on every page and error state (zero WCAG 2.2 A/AA
  violations), and each page's HTML through the Nu HTML Checker.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from staff_console.main import ADMIN_PREFIXES, PARTNER_PREFIXES, PUBLIC_PATHS, ROUTERS
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
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _signed_in(console: str, subject: str | None) -> httpx.Client:
    """An HTTP client with a console session: signed in through the dev provider as
    ``subject`` (the same redirects a browser follows), or anonymous."""
    client = httpx.Client(base_url=console, timeout=60, follow_redirects=False)
    if subject is None:
        return client
    start = client.get("/sign-in", params={"next": "/accessibility"})
    assert start.status_code == 303, start.text
    authorize = urlsplit(start.headers["location"])
    params = dict(parse_qsl(authorize.query))
    chosen = httpx.post(
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
        data={**params, "subject": subject},
        timeout=60,
    )
    assert chosen.status_code == 303, chosen.text
    back = client.get(chosen.headers["location"])
    assert back.status_code == 303 and back.headers["location"] == "/accessibility", back.text
    return client


def _csrf(client: httpx.Client) -> str:
    page = client.get("/sign-out")
    found = _CSRF.search(page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def _route_table() -> list[tuple[str, str]]:
    """Every (method, example path) of the console's own routes but the public ones."""
    some = str(uuid.uuid4())
    fill = {
        "service_id": some,
        "request_id": some,
        "programme_id": some,
        "session_id": some,
        "venue_id": some,
        "enrolment_id": some,
        "device_id": some,
        "template_id": some,
        "message_id": some,
        "key_id": some,
        "subscription_id": some,
        "delivery_id": "msg_x",
        "job_id": some,
        "action": "suspend",
    }
    table = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if route.path in PUBLIC_PATHS:
                continue
            path = re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], route.path)
            if path.startswith("/inclusion/devices/") and path.endswith("/suspend"):
                path = path.replace("/suspend", "/wipe")
            table.extend((method, path) for method in sorted(route.methods))
    return table


def test_route_table_turns_away_everyone_but_staff(platform_up: PlatformUp) -> None:
    console = platform_up.frontend_urls["staff-console"]
    table = _route_table()
    assert ("GET", "/catalogue") in table and ("POST", "/catalogue/new") in table
    assert len(table) >= 10
    for subject in (None, "citizen-dev-1", "partner-dev-1"):
        with closing(_signed_in(console, subject)) as client:
            token = _csrf(client)
            for method, path in table:
                if subject == "partner-dev-1" and path.startswith(PARTNER_PREFIXES):
                    continue  # the partner area (tests/test_partners.py)
                data = {"csrf_token": token, "name": "x", "reason": "x"}
                answer = client.request(method, path, data=data if method == "POST" else None)
                if subject is None:
                    assert answer.status_code == 303, (method, path, answer.status_code)
                    assert answer.headers["location"].startswith("/sign-in"), (method, path)
                else:
                    assert answer.status_code == 403, (subject, method, path, answer.status_code)
                    assert "You cannot see this page" in answer.text
    with closing(_signed_in(console, STAFF)) as staff:
        assert staff.get("/catalogue").status_code == 200
        # admins' pages turn away staff who are not admins
        token = _csrf(staff)
        admin_only = [(m, p) for m, p in table if p.startswith(ADMIN_PREFIXES)]
        assert len(admin_only) >= 4
        for method, path in admin_only:
            data = {"csrf_token": token, "name": "x"} if method == "POST" else None
            answer = staff.request(method, path, data=data)
            assert answer.status_code == 403, (method, path, answer.status_code)
        # CSRF: the same action without the session's token is refused
        refused = staff.post("/catalogue/new", data={"name": "No token"})
        assert refused.status_code == 400
        assert "problem with this form" in refused.text
        found = staff.get("/catalogue", params={"q": "No token", "status": "draft"})
        assert "0 draft services" in found.text  # nothing was created


# -- the catalogue in the browser ------------------------------------------------------------
class Pages:
    """The browser's pages, each checked as reached: axe-core, and its HTML kept for the Nu
    HTML Checker."""

    def __init__(
        self, driver: Any, base: str, html_checker: HtmlChecker, *, javascript: bool = True
    ) -> None:
        self.driver = driver
        self.base = base
        self.html = html_checker
        self.javascript = javascript

    def check(self, name: str) -> None:
        if not self.javascript:  # the server's HTML only: axe-core needs JavaScript
            self.html.add(name + " (no JavaScript)", "<!DOCTYPE html>\n" + self.driver.page_source)
            return
        violations = axe_violations(self.driver)
        assert violations == [], f"{name}: {violations}"
        self.html.add(name, "<!DOCTYPE html>\n" + self.driver.page_source)
        save_screenshots(self.driver, "staff-console " + name)  # make screenshots

    def go(self, path: str, name: str) -> None:
        self.driver.get(self.base + path)
        self.check(name)

    def h1(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def fill(self, field_id: str, value: str) -> None:
        element = self.driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)

    @contextmanager
    def next_page(self) -> Iterator[None]:
        old = self.driver.find_element(By.TAG_NAME, "html")
        yield
        WebDriverWait(self.driver, 60).until(page_replaced(old))

    def follow(self, selector: str) -> None:
        with self.next_page():
            self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def submit(self, form: str = "main form") -> None:
        self.follow(f"{form} button[type=submit]")

    def errors(self) -> list[str]:
        return [
            e.text
            for e in self.driver.find_elements(By.CSS_SELECTOR, ".govuk-error-summary__list li")
        ]


def test_catalogue_create_publish_edit_merge_suspend_retire(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start="/")
    assert pages.h1() == "Staff console"
    pages.check("home")
    pages.go("/accessibility", "accessibility")

    # create: an error first, then a draft
    pages.go("/catalogue/new", "catalogue: add")
    pages.submit()
    assert pages.errors() == ["Enter the service's name"]
    pages.check("catalogue: add error")
    name = f"Garden waste permits {uuid.uuid4().hex[:6]}"
    pages.fill("name", name)
    pages.fill("description", "Buy a permit for your garden waste bin.")
    pages.fill("keywords", "garden, waste")
    pages.submit()
    assert pages.h1() == name
    assert "Service created" in browser.page_source
    pages.check("catalogue: one (draft)")
    service_id = browser.current_url.split("/catalogue/")[1].split("?")[0]

    # found with the draft filter, not among the published
    pages.go(f"/catalogue?status=draft&q={name.split()[-1]}", "catalogue: search drafts")
    assert name in browser.page_source
    pages.go(f"/catalogue?status=published&q={name.split()[-1]}", "catalogue: search published")
    assert name not in browser.page_source

    # publish
    pages.driver.get(f"{console}/catalogue/{service_id}")
    pages.submit(f'form[action="/catalogue/{service_id}/publish"]')
    assert "Service published" in browser.page_source

    # edit, losing the race: someone changes the description and fees meanwhile
    pages.go(f"/catalogue/{service_id}/edit", "catalogue: edit")
    api = httpx.Client(
        base_url=platform_up.gateway_url,
        headers={"authorization": f"Bearer {platform_up.token('admin-dev-1', 'admin', 'staff')}"},
        timeout=30,
    )
    with api:
        current = api.get(f"/api/v1/services/{service_id}")
        changed = api.patch(
            f"/api/v1/services/{service_id}",
            json={"description": "Their description.", "fees": "£50 a year"},
            headers={"if-match": current.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
    pages.fill("description", "My description.")
    pages.fill("opening_hours", "Monday to Friday, 9am to 5pm")
    pages.submit()
    assert "Someone else changed this service while you were editing it" in browser.page_source
    assert pages.errors() == ["Description was changed by someone else: check it"]
    merge = browser.find_element(By.ID, "merge").text
    assert "Their description." in merge and "My description." in merge
    assert "Changed since you opened it: Description, Fees." in merge
    # their fees are kept, my opening hours and my description are in the form
    assert browser.find_element(By.ID, "fees").get_attribute("value") == "£50 a year"
    assert (
        browser.find_element(By.ID, "opening_hours").get_attribute("value")
        == "Monday to Friday, 9am to 5pm"
    )
    assert browser.find_element(By.ID, "description").get_attribute("value") == "My description."
    pages.check("catalogue: edit conflict (merge)")
    pages.fill("description", "Merged description.")
    pages.submit()
    assert "Service changed" in browser.page_source
    summary = browser.find_element(By.CSS_SELECTOR, ".govuk-summary-list").text
    assert "Merged description." in summary
    assert "£50 a year" in summary and "Monday to Friday, 9am to 5pm" in summary

    # suspend with a reason (an error first), then retire
    pages.driver.get(f"{console}/catalogue/{service_id}")
    pages.follow(f'a[href="/catalogue/{service_id}/suspend"]')
    pages.check("catalogue: suspend")
    pages.submit()
    assert pages.errors() == ["Enter why you want to suspend this service"]
    pages.check("catalogue: suspend error")
    pages.fill("reason", "The permit scheme is paused for the winter.")
    pages.submit()
    assert "Service suspended" in browser.page_source
    pages.follow(f'a[href="/catalogue/{service_id}/retire"]')
    pages.fill("reason", "Replaced by the new garden waste service.")
    pages.submit()
    assert "Service retired" in browser.page_source
    pages.check("catalogue: one (retired)")

    # history: every change, who made it, the fields and the reasons
    pages.go(f"/catalogue/{service_id}/history", "catalogue: history")
    history = browser.find_element(By.ID, "history").text
    assert "admin-dev-1" in history and STAFF in history
    assert "The permit scheme is paused for the winter." in history
    assert "opening hours" in history and "fees" in history
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) == 6  # created, published, their edit, my edit, suspended, retired

    # a page that does not exist is the console's 404, not a 500
    pages.go(f"/catalogue/{uuid.uuid4()}", "catalogue: not found")
    assert pages.h1() == "Page not found"

    assert html_checker.errors() == {}


def test_catalogue_import_bad_rows_then_good_and_export(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, tmp_path: Any
) -> None:
    """A CSV with bad rows is named row by row before anything is imported; one the API
    refuses (a service code it does not allow) imports nothing; a good one imports every
    service as a draft, and the export has them."""
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start="/catalogue")
    tag = uuid.uuid4().hex[:6]
    header = "name,service_code,keywords,attributes\n"

    def upload(name: str, body: str) -> None:
        path = tmp_path / name
        path.write_text(header + body, encoding="utf-8")
        pages.go("/catalogue/import", "import: upload")
        browser.find_element(By.ID, "file").send_keys(str(path))
        pages.submit()

    pages.go("/catalogue/import", "import: upload")
    pages.submit()
    assert pages.errors() == ["Select a CSV file"]
    pages.check("import: upload error")

    upload(
        "bad.csv",
        f'Allotments {tag},allot-{tag},garden,\n,nameless-{tag},,\nX {tag},x-{tag},,"{{}}"\n',
    )
    assert pages.errors() == [
        "Row 2 (line 3): name: is empty",
        "Row 3 (line 4): attributes: is not a JSON array",
    ]
    assert browser.find_elements(By.CSS_SELECTOR, "form[action='/catalogue/import/confirm']") == []
    pages.check("import: preview with bad rows")

    upload("refused.csv", f"Allotments {tag},allot-{tag},garden,\nBad code {tag},bad code!,,\n")
    pages.check("import: preview")
    pages.submit()
    assert "Nothing was imported" in browser.find_element(By.ID, "import-outcome").text
    assert [e.split(":")[0] for e in pages.errors()] == ["Row 2 (line 3)"]
    assert "service code" in pages.errors()[0]
    pages.check("import: refused by the API")

    upload(
        "good.csv", f"Allotments {tag},allot-{tag},garden;plots,\nBeach huts {tag},huts-{tag},,\n"
    )
    assert "2 services will be imported" in browser.find_element(By.ID, "import-outcome").text
    pages.submit()  # the import job's page, until the job is done (test_import_progress.py)
    WebDriverWait(browser, 120, ignored_exceptions=(WebDriverException,)).until(
        lambda _: pages.h1() == "2 services imported as drafts"
    )
    assert f"Beach huts {tag}" in browser.find_element(By.ID, "imported").text
    pages.check("import: done")

    with closing(_signed_in(console, STAFF)) as staff:
        drafts = staff.get("/catalogue", params={"q": tag, "status": "draft"}).text
        assert f"Allotments {tag}" in drafts and f"Beach huts {tag}" in drafts
        assert "Bad code" not in drafts  # the refused file imported nothing
        exported = staff.get("/catalogue/export")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert f"Allotments {tag}" in exported.text and f"Beach huts {tag}" in exported.text
    assert html_checker.errors() == {}


# -- the request queue -----------------------------------------------------------------------
SERVICE = "report-a-missed-bin-collection"  # seeded, reportable
CITIZEN = "citizen-dev-1"
EMAIL = "alex.citizen@example.org"
_CONFIRM = re.compile(r"(/api/v1/preferences/email-verification\?token=[\w.-]+)")


def _eventually(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not seen within {timeout:.0f}s: {what}")


def _mail(platform: PlatformUp, to: str, subject_part: str) -> Callable[[], Any]:
    def find() -> Any:
        for message in platform.mail.messages():
            if to in str(message.get("To", "")) and subject_part in str(message.get("Subject", "")):
                return message
        return None

    return find


def _citizen_reports_a_problem(platform: PlatformUp) -> str:
    """The citizen confirms their email address (as they would, from the emailed link) and
    reports a missed bin through the API; returns the request's id."""
    headers = {"authorization": f"Bearer {platform.token(CITIZEN, 'citizen')}"}
    with httpx.Client(base_url=platform.gateway_url, headers=headers, timeout=30) as api:
        if api.get("/api/v1/preferences").json().get("email") != EMAIL:
            put = api.put("/api/v1/preferences", json={"email": EMAIL})
            assert put.status_code == 200, put.text

            def link() -> str | None:
                for message in platform.mail.messages():
                    if EMAIL in str(message.get("To", "")):
                        body = message.get_body(("plain",))
                        found = _CONFIRM.search(body.get_content() if body else "")
                        if found:
                            return found.group(1)
                return None

            path = _eventually(link, "the confirmation link")
            confirmed = httpx.post(platform.gateway_url + path, timeout=30)
            assert confirmed.status_code in (200, 204), confirmed.text
        yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        report = api.post(
            "/api/v1/service-requests",
            json={
                "service_code": SERVICE,
                "description": "The grey bin was not emptied.",
                "address": "1 Saxon Gate East, Milton Keynes MK9 3EJ",
                "attributes": {"bin": "refuse", "collection_date": yesterday.isoformat()},
            },
        )
        assert report.status_code == 201, report.text
        return str(report.json()["id"])


def test_request_queue_a_problem_worked_to_fixed_and_the_citizen_emailed(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    request_id = _citizen_reports_a_problem(platform_up)
    short = request_id[:8].upper()
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start="/requests")

    # the queue, filtered: open requests for the service, then mine (none yet)
    pages.go(f"/requests?status=open&service_code={SERVICE}", "queue: open, one service")
    assert short in browser.find_element(By.ID, "queue").text
    pages.go("/requests?assignee=me", "queue: mine")
    assert short not in browser.page_source
    pages.go("/requests?status=fixed", "queue: fixed")
    assert short not in browser.page_source

    # assign to me, then an internal note: the citizen does not see it
    pages.go(f"/requests/{request_id}", "request")
    pages.submit(f'form[action="/requests/{request_id}/assign"]')
    assert "Request assigned" in browser.page_source
    pages.go("/requests?assignee=me", "queue: mine, assigned")
    assert short in browser.find_element(By.ID, "queue").text
    pages.go(f"/requests/{request_id}", "request, assigned")
    pages.submit("#update")
    assert pages.errors() == ["Change the status or write a note"]
    pages.check("request: update error")
    pages.fill("note", "Crew B missed Saxon Gate: check the round sheet.")
    pages.submit("#update")
    assert "Request updated" in browser.page_source

    # fixed, with a public note
    Select(browser.find_element(By.ID, "status")).select_by_value("fixed")
    pages.fill("note", "Collected this morning.")
    browser.find_element(By.CSS_SELECTOR, 'input[name="visibility"][value="public"]').click()
    pages.submit("#update")
    assert browser.find_element(By.ID, "current-status").text == "Fixed"
    updates = browser.find_element(By.ID, "updates").text
    assert "Internal note Crew B missed Saxon Gate" in updates
    assert "Public note Collected this morning." in updates
    pages.check("request: fixed")

    # the citizen sees the public note only, and the email arrives in the SMTP sink
    headers = {"authorization": f"Bearer {platform_up.token(CITIZEN, 'citizen')}"}
    seen = httpx.get(
        f"{platform_up.gateway_url}/api/v1/service-requests/{request_id}",
        headers=headers,
        timeout=30,
    ).json()
    assert seen["status"] == "fixed"
    notes = [u.get("note") for u in seen["updates"] if u.get("note")]
    assert notes == ["Collected this morning."]
    message = _eventually(_mail(platform_up, EMAIL, "is now fixed"), "the 'fixed' email")
    assert "fixed" in str(message["Subject"])
    assert html_checker.errors() == {}


# -- keyboard only, and without JavaScript ---------------------------------------------------
class Keyboard:
    """Drives a page with the keyboard only: Tab from the top until the element has focus,
    then type or press Enter. Fails if Tab never reaches it."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def _focus(self, selector: str) -> Any:
        driver = self.pages.driver
        target = driver.find_element(By.CSS_SELECTOR, selector)
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
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

    def choose(self, field_id: str, option_text: str) -> None:
        """A select: focus it and type the option's first letters, as people do."""
        self._focus(f"#{field_id}").send_keys(option_text)

    def submit(self, form: str = "main form") -> None:
        with self.pages.next_page():
            self._focus(f"{form} button[type=submit]").send_keys(Keys.ENTER)


def _create_publish_suspend(pages: Pages, drive: Keyboard | None, label: str) -> str:
    """Add a service, publish it, edit it and suspend it with a reason; returns its id."""
    browser = pages.driver
    name = f"Pest control {label} {uuid.uuid4().hex[:6]}"
    pages.go("/catalogue", "catalogue")
    (drive.follow if drive else pages.follow)('a[href="/catalogue/new"]')
    pages.check("catalogue: add")
    if drive:
        drive.type_into("name", name)
        drive.type_into("description", "Book a visit for rats, mice or wasps.")
        drive.submit()
    else:
        pages.fill("name", name)
        pages.fill("description", "Book a visit for rats, mice or wasps.")
        pages.submit()
    assert pages.h1() == name
    service_id = browser.current_url.split("/catalogue/")[1].split("?")[0]
    publish = f'form[action="/catalogue/{service_id}/publish"]'
    (drive.submit if drive else pages.submit)(publish)
    assert "Service published" in browser.page_source
    (drive.follow if drive else pages.follow)(f'a[href="/catalogue/{service_id}/edit"]')
    if drive:
        drive.type_into("fees", "£25 a visit")
        drive.submit()
    else:
        pages.fill("fees", "£25 a visit")
        pages.submit()
    assert "Service changed" in browser.page_source and "£25 a visit" in browser.page_source
    (drive.follow if drive else pages.follow)(f'a[href="/catalogue/{service_id}/suspend"]')
    if drive:
        drive.submit()
    else:
        pages.submit()
    assert pages.errors() == ["Enter why you want to suspend this service"]
    pages.check("catalogue: suspend error")
    if drive:
        drive.type_into("reason", "Contractor changing.")
        drive.submit()
    else:
        pages.fill("reason", "Contractor changing.")
        pages.submit()
    assert "Service suspended" in browser.page_source
    pages.check("catalogue: suspended")
    return service_id


def _work_request(pages: Pages, drive: Keyboard | None, request_id: str) -> None:
    """Assign a request to me and set it in progress with an internal note."""
    browser = pages.driver
    pages.go(f"/requests?status=open&service_code={SERVICE}", "queue")
    (drive.follow if drive else pages.follow)(f'a[href="/requests/{request_id}"]')
    (drive.submit if drive else pages.submit)(f'form[action="/requests/{request_id}/assign"]')
    assert "Request assigned" in browser.page_source
    if drive:
        drive.choose("status", "In progress")
        drive.type_into("note", "Crew on the way.")
        drive.submit("#update")
    else:
        Select(browser.find_element(By.ID, "status")).select_by_value("in_progress")
        pages.fill("note", "Crew on the way.")
        pages.submit("#update")
    assert "Request updated" in browser.page_source
    assert browser.find_element(By.ID, "current-status").text == "In progress"
    pages.check("request: in progress")


def test_main_tasks_with_the_keyboard_only(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start="/")
    drive = Keyboard(pages)
    _create_publish_suspend(pages, drive, "keyboard")
    _work_request(pages, drive, _citizen_reports_a_problem(platform_up))


def test_main_tasks_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(nojs_browser, console, html_checker, javascript=False)
    sign_in(nojs_browser, console, STAFF, start="/")
    _create_publish_suspend(pages, None, "no-js")
    _work_request(pages, None, _citizen_reports_a_problem(platform_up))
    assert html_checker.errors() == {}


# -- digital inclusion ----------------------------------------------------------------------
def _api(platform: PlatformUp, subject: str, *roles: str) -> httpx.Client:
    token = platform.token(subject, *roles)
    return httpx.Client(
        base_url=platform.gateway_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def test_inclusion_schedule_enrol_attendance_loan_and_figures(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    """Schedule a session (an error first), two citizens book its one place (one waits), mark
    attendance; add a device, wipe it, lend it to the participant and take it back; the figures
    page shows the charts with their tables, and the CSV."""
    title = f"Email basics {uuid.uuid4().hex[:6]}"
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        made = staff.post(
            "/api/v1/programmes",
            json={"title": title, "kind": "digital-skills-course", "delivered_by": "MK Library"},
        )
        assert made.status_code == 201, made.text
        programme_id = made.json()["id"]
        published = staff.post(
            f"/api/v1/programmes/{programme_id}/status", json={"status": "published"}
        )
        assert published.status_code == 200, published.text
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start="/inclusion")
    pages.check("inclusion: programmes")
    pages.follow(f'a[href="/inclusion/programmes/{programme_id}"]')
    pages.check("inclusion: programme")
    pages.follow(f'a[href="/inclusion/sessions/new?programme_id={programme_id}"]')
    pages.check("inclusion: schedule")
    pages.submit()
    assert pages.errors() == [
        "Choose a venue",
        "Enter the session's date, for example 27 3 2027",
        "Enter the start time, for example 10:00",
        "Enter the end time, for example 12:00",
        "Enter the number of places, from 1 to 1000",
    ]
    pages.check("inclusion: schedule error")
    day = datetime.now(UTC).date() + timedelta(days=14)
    Select(browser.find_element(By.ID, "venue_id")).select_by_index(1)
    pages.fill("date", str(day.day))
    pages.fill("date-month", str(day.month))
    pages.fill("date-year", str(day.year))
    pages.fill("starts", "10:00")
    pages.fill("ends", "12:00")
    pages.fill("capacity", "1")
    pages.submit()
    assert "Session scheduled" in browser.page_source
    session_id = browser.current_url.split("/inclusion/sessions/")[1].split("?")[0]

    # two citizens book the one place: the second waits
    for subject in (CITIZEN, "citizen-dev-2"):
        with _api(platform_up, subject, "citizen") as citizen:
            booked = citizen.post(
                f"/api/v1/sessions/{session_id}/enrolments",
                json={"consent": True, "postcode": "MK9 3EJ"},
            )
            assert booked.status_code in (200, 201), booked.text
    pages.go(f"/inclusion/sessions/{session_id}", "inclusion: session with bookings")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#booked tbody tr")) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#waiting li")) == 1

    # capacity: a bad number, then two places (the waiting citizen moves up)
    pages.fill("capacity", "none")
    pages.submit("#capacity-form")
    assert pages.errors() == ["Enter the number of places, from 1 to 1000"]
    pages.check("inclusion: capacity error")
    pages.fill("capacity", "2")
    pages.submit("#capacity-form")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#booked tbody tr")) == 2
    assert browser.find_elements(By.CSS_SELECTOR, "#waiting li") == []

    # a session starting in a minute, for attendance (marked once it has started)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=60)
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        venue_id = staff.get(f"/api/v1/sessions/{session_id}").json()["venue_id"]
        soon = staff.post(
            "/api/v1/sessions",
            json={
                "programme_id": programme_id,
                "venue_id": venue_id,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "capacity": 5,
            },
        )
        assert soon.status_code == 201, soon.text
        soon_id = soon.json()["id"]
    with _api(platform_up, CITIZEN, "citizen") as citizen:
        booked = citizen.post(f"/api/v1/sessions/{soon_id}/enrolments", json={"consent": True})
        assert booked.status_code in (200, 201), booked.text

    # lend a device to a participant
    pages.go(f"/inclusion/sessions/{session_id}", "inclusion: session, two booked")
    pages.follow("#booked a[href^='/inclusion/devices?participant=']")
    participant = browser.current_url.split("participant=")[1]
    pages.check("inclusion: devices")
    pages.follow('a[href^="/inclusion/devices/new"]')
    pages.submit()
    assert pages.errors() == [
        "Enter the device's make",
        "Enter the device's model",
        "Enter the device's serial number",
    ]
    pages.check("inclusion: add device error")
    serial = f"SN-{uuid.uuid4().hex[:8]}"
    pages.fill("make", "Lenovo")
    pages.fill("model", "IdeaPad 1")
    pages.fill("serial", serial)
    pages.submit()
    assert "Device added" in browser.page_source
    device_id = browser.current_url.split("/inclusion/devices/")[1].split("?")[0]
    pages.submit("#wipe-form")
    assert "Device wiped" in browser.page_source
    pages.go(f"/inclusion/devices/{device_id}?participant={participant}", "inclusion: device")
    assert browser.find_element(By.ID, "participant_id").get_attribute("value") == participant
    pages.submit("#lend-form")
    assert "Device lent" in browser.page_source
    assert "On loan" in browser.find_element(By.ID, "loan-status").text
    pages.check("inclusion: device on loan")
    pages.submit("#return-form")
    assert pages.errors() == ["Choose the condition it came back in"]
    pages.check("inclusion: return error")
    browser.find_element(By.CSS_SELECTOR, 'input[name="condition"][value="fair"]').click()
    pages.submit("#return-form")
    assert "Device returned" in browser.page_source
    assert "Available" in browser.find_element(By.ID, "loan-status").text
    assert "(fair)" in browser.find_element(By.ID, "loans").text

    # cancel the session with a reason
    pages.go(f"/inclusion/sessions/{session_id}/cancel", "inclusion: cancel")
    pages.fill("reason", "The tutor is unwell.")
    pages.submit()
    assert "Session cancelled" in browser.page_source

    # figures: each chart is an image with its figures in its description, beside a table
    pages.go("/inclusion/reports", "inclusion: figures")
    chart = browser.find_element(By.CSS_SELECTOR, "#programme svg[role=img]")
    described = browser.find_element(By.ID, chart.get_attribute("aria-labelledby").split()[1])
    assert title in described.get_attribute("textContent")
    assert title in browser.find_element(By.CSS_SELECTOR, "#programme table").text
    with closing(_signed_in(console, STAFF)) as staff_session:
        csv_answer = staff_session.get("/inclusion/reports.csv")
        assert csv_answer.status_code == 200
        assert csv_answer.text.startswith('"programme_id",')
        assert title in csv_answer.text

    # attendance, once the second session has started
    while datetime.now(UTC) < starts + timedelta(seconds=2):
        time.sleep(1)
    pages.go(f"/inclusion/sessions/{soon_id}", "inclusion: started session")
    enrolment = browser.find_element(By.CSS_SELECTOR, "#booked td[id^='attended-']")
    enrolment_id = enrolment.get_attribute("id").removeprefix("attended-")
    assert enrolment.text == "Not marked"
    pages.submit(f'form[action="/inclusion/enrolments/{enrolment_id}/attendance"]')
    assert "Session attendance saved" in browser.page_source
    assert browser.find_element(By.ID, f"attended-{enrolment_id}").text == "Yes"
    pages.check("inclusion: attendance marked")
    assert html_checker.errors() == {}


# -- notifications ----------------------------------------------------------------------------
def test_notifications_template_preview_and_a_notify_key_issued_once_and_revoked(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    tag = uuid.uuid4().hex[:6]
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        made = staff.post(
            "/api/v1/templates",
            json={
                "type": "sms",
                "name": f"Bin reminder {tag}",
                "body": "Hello ((name)), your bin is collected tomorrow. Milton Keynes Council",
            },
        )
        assert made.status_code == 201, made.text
        template_id = made.json()["id"]
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, "admin-dev-1", start="/notifications/templates")
    pages.check("notifications: templates")
    pages.follow(f'a[href="/notifications/templates/{template_id}"]')
    pages.check("notifications: template")
    pages.submit()
    assert pages.errors() == ["Enter a value for ((name))"]
    pages.check("notifications: template preview error")
    pages.fill("p-name", "Alex")
    pages.submit()
    assert (
        "Hello Alex, your bin is collected tomorrow." in browser.find_element(By.ID, "preview").text
    )
    assert browser.find_element(By.ID, "fragments").text.endswith(": 1 text message")
    pages.check("notifications: template preview")

    # a Notify service, a key issued (shown once) and revoked
    pages.go("/notifications/services", "notifications: Notify services")
    pages.submit()
    assert pages.errors() == ["Enter the service's name"]
    pages.check("notifications: Notify services error")
    pages.fill("name", f"Bins app {tag}")
    pages.submit()
    assert pages.h1() == f"Bins app {tag}"
    service_url = browser.current_url
    pages.submit("#issue-form")
    assert pages.errors() == ["Enter a name for the key"]
    pages.check("notifications: issue key error")
    pages.fill("name", "bins live")
    pages.submit("#issue-form")
    key = browser.find_element(By.ID, "issued-key").text
    assert key.startswith("bins_live-") and len(key) > 60
    pages.check("notifications: key issued")
    pages.driver.get(service_url)
    assert key not in browser.page_source  # shown once
    assert "Active" in browser.find_element(By.ID, "keys").text
    pages.submit("#keys form")
    assert "Key revoked" in browser.page_source
    assert "Revoked" in browser.find_element(By.ID, "keys").text
    pages.check("notifications: key revoked")
    service_id = service_url.rstrip("/").rsplit("/", 1)[1]
    with _api(platform_up, "admin-dev-1", "admin", "staff") as staff:
        keys = staff.get(f"/api/v1/notify-services/{service_id}/api-keys").json()
        assert [k["revoked_at"] is not None for k in keys] == [True]
    assert html_checker.errors() == {}


# -- admin: the gateway's API keys ----------------------------------------------------------
def test_admin_gateway_api_key_created_shown_once_works_and_revoked(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, "admin-dev-1", start="/admin/api-keys")
    pages.check("admin: API keys")
    pages.submit("#create-form")
    assert pages.errors() == ["Enter a name for the key, for example the partner's"]
    pages.check("admin: API keys error")
    name = f"FixMyStreet MK {uuid.uuid4().hex[:6]}"
    pages.fill("name", name)
    browser.find_element(By.CSS_SELECTOR, 'input[name="scopes"][value="open311"]').click()
    pages.submit("#create-form")
    key = browser.find_element(By.ID, "created-key").text
    assert len(key) > 20
    pages.check("admin: API key created")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#keys tbody tr") if name in r.text
    )
    assert "open311" in row.text and "Active" in row.text

    # the key works at the gateway, and no longer once revoked
    def requests_with_key() -> int:
        return httpx.get(
            f"{platform_up.gateway_url}/open311/v2/requests.json",
            headers={"x-api-key": key},
            timeout=30,
        ).status_code

    assert requests_with_key() == 200
    pages.driver.get(f"{console}/admin/api-keys")
    assert key not in browser.page_source  # shown once
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#keys tbody tr") if name in r.text
    )
    with pages.next_page():
        row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Key revoked" in browser.page_source
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#keys tbody tr") if name in r.text
    )
    assert "Revoked" in row.text
    pages.check("admin: API key revoked")
    assert requests_with_key() == 401
    assert html_checker.errors() == {}
