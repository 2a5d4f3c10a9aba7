"""The staff console's main tasks that ``test_console.py`` drives only with the mouse, done with
the keyboard only and again with JavaScript off, on the real platform (every service, the
gateway with its dev OIDC provider, Kafka, PostgreSQL) in headless Chromium:

- schedule a session (the form's errors first);
- lend a device to a participant of a session and take it back (an error first);
- work a reported problem to fixed, with a public note (the citizen's email arrives);
- mark attendance at a session that has started (found from its programme's page);
- issue a Notify API key (an error first) and revoke it (as an admin);
- edit a service that someone else changes meanwhile, and save the merge;
- import a CSV file with a bad row (named, nothing to import), then a good one.

The keyboard run never clicks: it signs in at the provider's page and moves between links,
fields, radios, selects and buttons with Tab and Shift+Tab, types into the focused element, picks
radios with the arrow keys, options by typing their name, and activates links and buttons with
Enter or Space; a control Tab cannot reach fails the test. The JavaScript-off run does the same
tasks in a browser that runs no script at all. Each outcome is asserted through the API; with
JavaScript on, axe-core finds no WCAG 2.2 A/AA violation on any page reached, and every page's
HTML goes through the Nu HTML Checker.

The navigation by role: each of the route table's users (a visitor, a citizen, a partner) and
staff and an admin see only the areas they may open, each answering 200 for them.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import url_contains
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

STAFF, ADMIN = "staff-dev-1", "admin-dev-1"
CITIZENS = ("citizen-dev-1", "citizen-dev-2")
EMAIL = "alex.citizen@example.org"  # citizen-dev-1's, confirmed once for the module
SERVICE = "report-a-missed-bin-collection"  # seeded, reportable
LONDON = ZoneInfo("Europe/London")
_CONFIRM = re.compile(r"(/api/v1/preferences/email-verification\?token=[\w.-]+)")


def _api(platform: PlatformUp, subject: str, *roles: str) -> httpx.Client:
    token = platform.token(subject, *roles)
    return httpx.Client(
        base_url=platform.gateway_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def _staff_api(platform: PlatformUp) -> httpx.Client:
    return _api(platform, ADMIN, "admin", "staff")


def _eventually(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not seen within {timeout:.0f}s: {what}")


# -- what both runs share: a programme, a venue, a session about to start ---------------------
@dataclass(frozen=True)
class World:
    programme_id: str
    venue_id: str
    venue_label: str  # as the schedule form's venue list shows it
    started_id: str  # a session that has started by the time attendance is marked
    starts: datetime
    enrolments: tuple[tuple[str, str], ...]  # (enrolment id, participant id), one per run


@pytest.fixture(scope="module")
def world(platform_up: PlatformUp) -> World:
    """A published programme and a session of it starting in 90 s, booked by two citizens
    (each run lends a device to one of them and marks their attendance)."""
    with _staff_api(platform_up) as staff:
        made = staff.post(
            "/api/v1/programmes",
            json={
                "title": f"Online banking {uuid.uuid4().hex[:6]}",
                "kind": "digital-skills-course",
                "delivered_by": "MK Library",
            },
        )
        assert made.status_code == 201, made.text
        programme_id = made.json()["id"]
        published = staff.post(
            f"/api/v1/programmes/{programme_id}/status", json={"status": "published"}
        )
        assert published.status_code == 200, published.text
        venues = staff.get("/api/v1/venues").json()
        assert venues, "no venue seeded"
        venue = venues[0]
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=90)
        soon = staff.post(
            "/api/v1/sessions",
            json={
                "programme_id": programme_id,
                "venue_id": venue["id"],
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": 5,
            },
        )
        assert soon.status_code == 201, soon.text
    enrolments = []
    for subject in CITIZENS:
        with _api(platform_up, subject, "citizen") as citizen:
            booked = citizen.post(
                f"/api/v1/sessions/{soon.json()['id']}/enrolments",
                json={"consent": True, "postcode": "MK9 3EJ"},
            )
            assert booked.status_code in (200, 201), booked.text
            enrolments.append((booked.json()["id"], booked.json()["participant_id"]))
    return World(
        programme_id=programme_id,
        venue_id=venue["id"],
        venue_label=f"{venue['name']} ({venue['ward']})",
        started_id=soon.json()["id"],
        starts=starts,
        enrolments=tuple(enrolments),
    )


def _citizen_reports_a_problem(platform: PlatformUp) -> str:
    """The citizen confirms their email address (once, from the emailed link) and reports a
    missed bin through the API; returns the request's id."""
    headers = {"authorization": f"Bearer {platform.token(CITIZENS[0], 'citizen')}"}
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

            confirmed = httpx.post(
                platform.gateway_url + _eventually(link, "the confirmation link"), timeout=30
            )
            assert confirmed.status_code in (200, 204), confirmed.text
        yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        report = api.post(
            "/api/v1/service-requests",
            json={
                "service_code": SERVICE,
                "description": "The green bin was not emptied.",
                "address": "2 Silbury Boulevard, Milton Keynes MK9 2AH",
                "attributes": {"bin": "garden", "collection_date": yesterday.isoformat()},
            },
        )
        assert report.status_code == 201, report.text
        return str(report.json()["id"])


# -- two ways of using the console ------------------------------------------------------------
class User:
    """What both runs do to a page; each page reached is checked (axe-core with JavaScript
    on, and its HTML kept for the Nu HTML Checker)."""

    javascript = True

    def __init__(self, driver: Any, base: str, html_checker: HtmlChecker) -> None:
        self.driver, self.base, self.html = driver, base, html_checker

    # pages
    def go(self, path: str) -> None:
        """Open an address (as typed into the address bar)."""
        self.driver.get(self.base + path)

    def check(self, name: str) -> None:
        # GOV.UK Frontend's scripts ran (or, JavaScript off, did not)
        body = self.driver.find_element(By.TAG_NAME, "body").get_attribute("class")
        assert ("js-enabled" in body.split()) is self.javascript, (name, body)
        source = "<!DOCTYPE html>\n" + self.driver.page_source
        if not self.javascript:  # the server's HTML only: axe-core needs JavaScript
            self.html.add(name + " (no JavaScript)", source)
            return
        violations = axe_violations(self.driver)
        assert violations == [], f"{name}: {violations}"
        self.html.add(name + " (keyboard)", source)
        save_screenshots(self.driver, "staff-console " + name)  # make screenshots

    def h1(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def text(self, selector: str) -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, selector).text)

    def errors(self) -> list[str]:
        found = self.driver.find_elements(By.CSS_SELECTOR, ".govuk-error-summary__list li")
        return [e.text for e in found]

    @contextmanager
    def next_page(self) -> Iterator[None]:
        old = self.driver.find_element(By.TAG_NAME, "html")
        yield
        WebDriverWait(self.driver, 60).until(page_replaced(old))

    # what differs between the runs
    def sign_in(self, subject: str, start: str) -> None:
        sign_in(self.driver, self.base, subject, start=start)

    def follow(self, selector: str) -> None:
        with self.next_page():
            self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def press(self, selector: str) -> None:
        """Press a button (``selector`` is the button, or a form whose submit button)."""
        self.follow(_button(selector))

    def type(self, field_id: str, text: str) -> None:
        element = self.driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(text)

    def choose(self, field_id: str, option: str) -> None:
        Select(self.driver.find_element(By.ID, field_id)).select_by_visible_text(option)

    def radio(self, name: str, value: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]').click()

    def upload(self, field_id: str, path: Path) -> None:
        """A file input: the file chosen (what the system's file picker would do)."""
        self.driver.find_element(By.ID, field_id).send_keys(str(path))


def _button(selector: str) -> str:
    return selector if "button" in selector else f"{selector} button[type=submit]"


class KeyboardUser(User):
    """Only the keyboard: Tab and Shift+Tab to move, keys sent to the focused element."""

    def _keys(self, *keys: str) -> None:
        ActionChains(self.driver).send_keys(*keys).perform()

    def _focused(self) -> Any:
        return self.driver.switch_to.active_element

    def focus(self, selector: str, limit: int = 400) -> Any:
        """Tab (or Shift+Tab, for a control above the focus) until ``selector`` has the
        focus; fails if the keyboard passes it by or never gets there."""
        target = self.driver.find_element(By.CSS_SELECTOR, selector)
        # the test looks where the focus is; only keys move it
        where = (
            "const t = arguments[0], a = document.activeElement;"
            "if (t === a) return 0;"
            "if (!a || a === document.body) return 1;"
            "return t.compareDocumentPosition(a) & Node.DOCUMENT_POSITION_PRECEDING ? 1 : -1;"
        )
        direction = self.driver.execute_script(where, target)
        for _ in range(limit):
            if direction == 0:
                assert self._seen(target), f"{selector} has the focus but cannot be seen"
                return target
            self._keys(Keys.TAB if direction > 0 else Keys.SHIFT + Keys.TAB)
            now = self.driver.execute_script(where, target)
            if now not in (0, direction) and self._focused() != target:
                raise AssertionError(f"the keyboard passes {selector} by")
            direction = now
        raise AssertionError(f"the keyboard never reaches {selector}")

    def _seen(self, element: Any) -> bool:
        """Shown, or (a GOV.UK radio or checkbox, whose input is see-through) its label."""
        if element.is_displayed():
            return True
        labels = self.driver.find_elements(
            By.CSS_SELECTOR, f'label[for="{element.get_attribute("id")}"]'
        )
        return any(label.is_displayed() for label in labels)

    def sign_in(self, subject: str, start: str) -> None:
        self.go("/sign-in?next=" + start)  # the provider's page: choose the user, sign in
        self.radio("subject", subject)
        self.focus("#dev-sign-in")
        self._keys(Keys.ENTER)
        WebDriverWait(self.driver, 60).until(url_contains(self.base + start.split("?")[0]))

    def follow(self, selector: str, key: str = Keys.ENTER) -> None:
        self.focus(selector)
        with self.next_page():
            self._keys(key)

    def press(self, selector: str) -> None:
        self.follow(_button(selector), Keys.SPACE)

    def type(self, field_id: str, text: str) -> None:
        self.focus(f"#{field_id}")
        select_all = ActionChains(self.driver).key_down(Keys.CONTROL).send_keys("a")
        select_all.key_up(Keys.CONTROL).send_keys(Keys.BACKSPACE).perform()
        self._keys(text)
        value = self.driver.find_element(By.ID, field_id).get_attribute("value")
        assert value == text, (field_id, value)

    def choose(self, field_id: str, option: str) -> None:
        """A select: focus it and type the option's name, as people do."""
        self.focus(f"#{field_id}")
        self._keys(option)
        chosen = Select(self.driver.find_element(By.ID, field_id)).first_selected_option
        assert chosen.text == option, (field_id, chosen.text)

    def radio(self, name: str, value: str) -> None:
        """Tab into the group (it lands on the checked radio, or the first), then the arrow
        keys check the next one until ``value`` is checked."""
        radios = self.driver.find_elements(By.CSS_SELECTOR, f'input[type=radio][name="{name}"]')
        checked = [r for r in radios if r.is_selected()]
        self.focus(f'input[type=radio][name="{name}"]' + (":checked" if checked else ""))
        for _ in range(len(radios) + 1):
            focused = self._focused()
            if focused.get_attribute("value") == value:
                if not focused.is_selected():
                    self._keys(Keys.SPACE)
                assert focused.is_selected()
                return
            self._keys(Keys.ARROW_DOWN)
        raise AssertionError(f"the arrow keys never reach {name}={value}")

    def upload(self, field_id: str, path: Path) -> None:
        """Tab to the file input; the file goes to the focused input, as the file picker it
        opens (Enter or Space) would give it: a headless browser shows no picker."""
        self.focus(f"#{field_id}")
        self._focused().send_keys(str(path))


# -- the tasks --------------------------------------------------------------------------------
def _schedule_a_session(user: User, platform: PlatformUp, world: World, label: str) -> None:
    user.go("/")
    user.check("home")
    user.follow('#navigation a[href="/inclusion"]')
    user.check("inclusion: programmes")
    user.follow(f'a[href="/inclusion/programmes/{world.programme_id}"]')
    user.check("inclusion: programme")
    user.follow(f'a[href="/inclusion/sessions/new?programme_id={world.programme_id}"]')
    user.check("inclusion: schedule")
    user.press("main form")
    assert user.errors() == [
        "Choose a venue",
        "Enter the session's date, for example 27 3 2027",
        "Enter the start time, for example 10:00",
        "Enter the end time, for example 12:00",
        "Enter the number of places, from 1 to 1000",
    ]
    user.check("inclusion: schedule error")
    day = datetime.now(UTC).date() + timedelta(days=21 if label == "keyboard" else 22)
    user.choose("venue_id", world.venue_label)
    user.type("date", str(day.day))
    user.type("date-month", str(day.month))
    user.type("date-year", str(day.year))
    user.type("starts", "14:00")
    user.type("ends", "15:30")
    user.type("capacity", "8")
    user.press("main form")
    assert "Session scheduled" in user.driver.page_source
    user.check("inclusion: session scheduled")
    session_id = user.driver.current_url.split("/inclusion/sessions/")[1].split("?")[0]
    with _staff_api(platform) as staff:
        made = staff.get(f"/api/v1/sessions/{session_id}").json()
    assert made["programme_id"] == world.programme_id and made["venue_id"] == world.venue_id
    assert made["capacity"] == 8 and made["status"] == "scheduled"
    starts = datetime.fromisoformat(made["starts_at"]).astimezone(LONDON)
    ends = datetime.fromisoformat(made["ends_at"]).astimezone(LONDON)
    assert (starts.date(), starts.hour, starts.minute) == (day, 14, 0)
    assert (ends.hour, ends.minute) == (15, 30)


def _lend_and_take_back_a_device(user: User, platform: PlatformUp, world: World, run: int) -> None:
    """From the session's booking list: its 'lend a device' link, add a device there, record
    that it was wiped, lend it (the participant's reference carried along), take it back."""
    _, participant = world.enrolments[run]
    user.go(f"/inclusion/programmes/{world.programme_id}")
    user.follow(f'a[href="/inclusion/sessions/{world.started_id}"]')
    user.check("inclusion: session")
    user.follow(f"#booked a[href='/inclusion/devices?participant={participant}']")
    user.check("inclusion: devices")
    user.follow(f'a[href="/inclusion/devices/new?participant={participant}"]')
    user.check("inclusion: add a device")
    serial = f"SN-{uuid.uuid4().hex[:8]}"
    user.type("make", "Acer")
    user.type("model", "Chromebook 314")
    user.type("serial", serial)
    user.radio("condition", "new")
    user.press("main form")
    assert "Device added" in user.driver.page_source
    device_id = user.driver.current_url.split("/inclusion/devices/")[1].split("?")[0]
    user.press("#wipe-form")
    assert "Device wiped" in user.driver.page_source
    field = user.driver.find_element(By.ID, "participant_id")
    assert field.get_attribute("value") == participant  # carried from the session's link
    user.check("inclusion: device, wiped")
    user.press("#lend-form")
    assert "Device lent" in user.driver.page_source
    assert "On loan" in user.text("#loan-status")
    user.check("inclusion: device on loan")
    user.press("#return-form")
    assert user.errors() == ["Choose the condition it came back in"]
    user.check("inclusion: return error")
    user.radio("condition", "fair")
    user.press("#return-form")
    assert "Device returned" in user.driver.page_source
    assert "Available" in user.text("#loan-status")
    with _staff_api(platform) as staff:
        device = staff.get(f"/api/v1/devices/{device_id}").json()
    assert device["serial"] == serial and device["current_loan"] is None
    assert device["condition"] == "fair"
    [loan] = device["history"]
    assert loan["participant_id"] == participant and loan["returned_at"]
    assert loan["return_condition"] == "fair"


def _work_a_problem_to_fixed(user: User, platform: PlatformUp, label: str) -> None:
    request_id = _citizen_reports_a_problem(platform)
    short = request_id[:8].upper()
    user.go(f"/requests?status=open&service_code={SERVICE}")
    user.check("queue")
    user.follow(f'#queue a[href="/requests/{request_id}"]')
    user.check("request")
    user.press(f'form[action="/requests/{request_id}/assign"]')
    assert "Request assigned" in user.driver.page_source
    user.choose("status", "Fixed")
    user.type("note", f"Collected this afternoon ({label}).")
    user.radio("visibility", "public")
    user.press("#update")
    assert "Request updated" in user.driver.page_source
    assert user.text("#current-status") == "Fixed"
    user.check("request: fixed")
    headers = {"authorization": f"Bearer {platform.token(CITIZENS[0], 'citizen')}"}
    seen = httpx.get(
        f"{platform.gateway_url}/api/v1/service-requests/{request_id}",
        headers=headers,
        timeout=30,
    ).json()
    assert seen["status"] == "fixed"
    assert [u["note"] for u in seen["updates"] if u.get("note")] == [
        f"Collected this afternoon ({label})."
    ]

    def email() -> Any:
        for message in platform.mail.messages():
            subject = str(message.get("Subject", ""))
            if EMAIL in str(message.get("To", "")) and short in subject and "fixed" in subject:
                return message
        return None

    _eventually(email, f"the 'fixed' email for {short}")


def _mark_attendance(user: User, platform: PlatformUp, world: World, run: int) -> None:
    """The session has started: it has left the programme's upcoming list, and is found
    under the sessions that have started."""
    enrolment_id, _ = world.enrolments[run]
    while datetime.now(UTC) < world.starts + timedelta(seconds=2):
        time.sleep(1)
    user.go(f"/inclusion/programmes/{world.programme_id}")
    link = f'a[href="/inclusion/sessions/{world.started_id}"]'
    assert user.driver.find_elements(By.CSS_SELECTOR, f"#sessions {link}") == []
    user.check("inclusion: programme, a session started")
    user.follow(f"#started {link}")
    attended = "yes" if run == 0 else "no"
    user.press(
        f'form[action="/inclusion/enrolments/{enrolment_id}/attendance"] button[value="{attended}"]'
    )
    assert "Session attendance saved" in user.driver.page_source
    assert user.text(f"#attended-{enrolment_id}") == ("Yes" if run == 0 else "No")
    user.check("inclusion: attendance marked")
    with _staff_api(platform) as staff:
        enrolment = staff.get(f"/api/v1/enrolments/{enrolment_id}").json()
    assert enrolment["attended"] is (run == 0)


def _issue_and_revoke_a_notify_key(user: User, platform: PlatformUp, label: str) -> None:
    """As an admin: add a Notify service, issue it a key (an error first), revoke it."""
    name = f"Bins app {label} {uuid.uuid4().hex[:6]}"
    user.follow('#navigation a[href="/notifications/templates"]')
    user.check("notifications: templates")
    user.follow('main a[href="/notifications/services"]')
    user.check("notifications: Notify services")
    user.type("name", name)
    user.press("main form")
    assert user.h1() == name
    user.check("notifications: Notify service")
    service_id = user.driver.current_url.rstrip("/").rsplit("/", 1)[1]
    user.press("#issue-form")
    assert user.errors() == ["Enter a name for the key"]
    user.check("notifications: issue key error")
    user.type("name", "bins team")
    user.radio("key_type", "team")
    user.press("#issue-form")
    key = user.text("#issued-key")
    assert key.startswith("bins_team-") and len(key) > 60
    user.check("notifications: key issued")
    with _staff_api(platform) as staff:
        [issued] = staff.get(f"/api/v1/notify-services/{service_id}/api-keys").json()
    assert issued["name"] == "bins team" and issued["key_type"] == "team"
    assert issued["revoked_at"] is None
    user.press("#keys form")
    assert "Key revoked" in user.driver.page_source
    assert "Revoked" in user.text("#keys")
    user.check("notifications: key revoked")
    with _staff_api(platform) as staff:
        [revoked] = staff.get(f"/api/v1/notify-services/{service_id}/api-keys").json()
    assert revoked["revoked_at"] is not None


def _main_tasks(user: User, platform: PlatformUp, world: World, label: str, run: int) -> None:
    user.sign_in(STAFF, "/")
    _schedule_a_session(user, platform, world, label)
    _lend_and_take_back_a_device(user, platform, world, run)
    _work_a_problem_to_fixed(user, platform, label)
    _mark_attendance(user, platform, world, run)
    user.sign_in(ADMIN, "/")
    user.check("home (admin)")
    user.follow('#navigation a[href="/admin/api-keys"]')  # an admin's area in the menu
    assert user.h1() == "Gateway API keys"
    user.check("admin: API keys")
    _issue_and_revoke_a_notify_key(user, platform, label)
    assert user.html.errors() == {}


def _catalogue_tasks(user: User, platform: PlatformUp, label: str, tmp: Path) -> None:
    user.sign_in(STAFF, "/catalogue")
    _merge_a_conflicting_edit(user, platform, label)
    _import_a_bad_file_then_a_good_one(user, platform, tmp)
    assert user.html.errors() == {}


def test_merge_and_import_with_the_keyboard_only(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, tmp_path: Path
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    _catalogue_tasks(KeyboardUser(browser, console, html_checker), platform_up, "kbd", tmp_path)


def test_merge_and_import_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker, tmp_path: Path
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    user = User(nojs_browser, console, html_checker)
    user.javascript = False
    _catalogue_tasks(user, platform_up, "nojs", tmp_path)


def test_inclusion_queue_and_notify_tasks_with_the_keyboard_only(
    platform_up: PlatformUp, world: World, browser: Any, html_checker: HtmlChecker
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    _main_tasks(KeyboardUser(browser, console, html_checker), platform_up, world, "keyboard", 0)


def test_inclusion_queue_and_notify_tasks_without_javascript(
    platform_up: PlatformUp, world: World, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    user = User(nojs_browser, console, html_checker)
    user.javascript = False
    _main_tasks(user, platform_up, world, "no-js", 1)


def _merge_a_conflicting_edit(user: User, platform: PlatformUp, label: str) -> None:
    """Someone changes a published service while it is open for editing: the save becomes
    the merge page, which is checked and saved again."""
    name = f"Bulky waste {label} {uuid.uuid4().hex[:6]}"
    with _staff_api(platform) as staff:
        made = staff.post("/api/v1/services", json={"name": name, "description": "Old."})
        assert made.status_code == 201, made.text
        service_id = made.json()["id"]
        assert staff.post(f"/api/v1/services/{service_id}/publish").status_code == 200
    user.go(f"/catalogue?q={name.split()[-1]}")
    user.check("catalogue: search")
    user.follow(f'a[href="/catalogue/{service_id}"]')
    user.follow(f'a[href="/catalogue/{service_id}/edit"]')
    user.check("catalogue: edit")
    with _staff_api(platform) as staff:
        current = staff.get(f"/api/v1/services/{service_id}")
        theirs = staff.patch(
            f"/api/v1/services/{service_id}",
            json={"description": "Their description.", "fees": "£30 for three items"},
            headers={"if-match": current.headers["etag"]},
        )
        assert theirs.status_code == 200, theirs.text
    user.type("description", "My description.")
    user.press("main form")
    assert user.errors() == ["Description was changed by someone else: check it"]
    assert "Their description." in user.text("#merge")
    user.check("catalogue: edit conflict (merge)")
    user.type("description", f"Merged description ({label}).")
    user.press("main form")
    assert "Service changed" in user.driver.page_source
    with _staff_api(platform) as staff:
        saved = staff.get(f"/api/v1/services/{service_id}").json()
    assert saved["description"] == f"Merged description ({label})."
    assert saved["fees"] == "£30 for three items"  # theirs, kept


def _import_a_bad_file_then_a_good_one(user: User, platform: PlatformUp, tmp: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    header = "name,service_code,keywords,attributes\n"
    bad, good = tmp / f"bad-{tag}.csv", tmp / f"good-{tag}.csv"
    bad.write_text(header + f"Allotments {tag},allot-{tag},garden,\n,nameless-{tag},,\n")
    good.write_text(header + f"Allotments {tag},allot-{tag},garden,\nHuts {tag},huts-{tag},,\n")
    user.go("/catalogue")
    user.follow('a[href="/catalogue/import"]')
    user.check("import: upload")
    user.upload("file", bad)
    user.press("main form")
    assert user.errors() == ["Row 2 (line 3): name: is empty"]
    confirm = 'form[action="/catalogue/import/confirm"]'
    assert user.driver.find_elements(By.CSS_SELECTOR, confirm) == []  # nothing to import
    user.check("import: preview with a bad row")
    user.go("/catalogue/import")
    user.upload("file", good)
    user.press("main form")
    user.check("import: preview")
    user.press(confirm)
    user.check("import: after confirming")

    def imported() -> bool:
        with _staff_api(platform) as staff:
            found = staff.get("/api/v1/services", params={"q": tag, "status": "draft"}).json()
        items = found["items"] if isinstance(found, dict) else found
        return {s["name"] for s in items} >= {f"Allotments {tag}", f"Huts {tag}"}

    _eventually(imported, "the two imported drafts")


# -- navigation by role -----------------------------------------------------------------------
_NAV = re.compile(r'<ul class="govuk-service-navigation__list" id="navigation">(.*?)</ul>', re.S)
_HOME = re.compile(
    r'<a href="([^"]*)" class="govuk-(?:header__homepage-link|service-navigation__link)"'
)
STAFF_AREAS = ["/catalogue", "/requests", "/inclusion", "/notifications/templates"]
#: What the service navigation shows each of the route table's users (and staff and admins).
NAVIGATION = {
    None: [],
    "citizen-dev-1": [],
    "partner-dev-1": ["/webhooks"],
    STAFF: STAFF_AREAS,
    ADMIN: [*STAFF_AREAS, "/webhooks", "/admin/api-keys"],
}


def _signed_in(console: str, subject: str | None) -> httpx.Client:
    """An HTTP client with a console session, signed in through the dev provider as
    ``subject`` (the redirects a browser follows), or anonymous."""
    client = httpx.Client(base_url=console, timeout=60, follow_redirects=False)
    if subject is None:
        return client
    start = client.get("/sign-in", params={"next": "/accessibility"})
    assert start.status_code == 303, start.text
    authorize = httpx.URL(start.headers["location"])
    chosen = httpx.post(
        authorize.copy_with(query=None),
        data={**dict(authorize.params), "subject": subject},
        timeout=60,
    )
    assert chosen.status_code == 303, chosen.text
    back = client.get(chosen.headers["location"])
    assert back.status_code == 303 and back.headers["location"] == "/accessibility", back.text
    return client


def _links(page: str) -> tuple[list[str], list[str]]:
    """The service navigation's areas (not signing in or out) and the header's home links."""
    found = _NAV.search(page)
    assert found, page
    areas = [h for h in re.findall(r'href="([^"]+)"', found.group(1)) if "/sign-" not in h]
    return areas, _HOME.findall(page)


def test_the_navigation_shows_each_role_its_own_areas(platform_up: PlatformUp) -> None:
    """Staff see the staff areas, an admin also the admin areas, a partner only the partner
    area (and the header takes them home to it), a citizen or a visitor none. Every page a
    user may see shows them the same links, each answering 200; the areas not shown are still
    refused by the server."""
    console = platform_up.frontend_urls["staff-console"]
    every_area = sorted({path for areas in NAVIGATION.values() for path in areas})
    for subject, areas in NAVIGATION.items():
        home = "/webhooks" if subject == "partner-dev-1" else "/"
        with closing(_signed_in(console, subject)) as client:
            for path in ["/accessibility", *areas]:
                page = client.get(path)
                assert page.status_code == 200, (subject, path, page.status_code)
                assert _links(page.text) == (areas, [home, home]), (subject, path)
                if path == "/notifications/templates":  # a link inside the page: admins only
                    linked = 'href="/notifications/services"' in page.text
                    assert linked == (subject == ADMIN), subject
            answer = client.get(home)
            if subject in (STAFF, ADMIN, "partner-dev-1"):
                assert answer.status_code == 200, (subject, home)
            elif subject is None:  # the visitor is asked to sign in
                assert answer.status_code == 303, subject
                assert answer.headers["location"].startswith("/sign-in"), subject
            else:  # a citizen has no area here: the home page says so
                assert answer.status_code == 403 and "You cannot see this page" in answer.text
            for path in every_area:
                if path in areas:
                    continue
                refused = client.get(path)
                if subject is None:
                    assert refused.status_code == 303, (path, refused.status_code)
                    assert refused.headers["location"].startswith("/sign-in"), path
                else:
                    assert refused.status_code == 403, (subject, path, refused.status_code)
                    assert _links(refused.text)[0] == areas, (subject, path)
