"""The staff console's sent messages and live template preview on the real platform (every
service, the gateway, Kafka, PostgreSQL) in a real browser:

- messages sent through Notify's ``/v2`` with a key an admin issued are listed newest first,
  filtered by reference, status and channel, a page at a time; a message opens whole; a bad
  filter (from the address) is an error summary, not a crash; the same without JavaScript;
- a template's edit page previews the text as the editor types (the SMS fragment count
  too) without a submit; without JavaScript its Preview button does the same, and Save makes
  a new version.

axe-core on every page and error state (zero WCAG 2.2 A/AA violations) and each page's HTML
through the Nu HTML Checker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from notifications.domain.notify import split_api_key
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
PERM_FAIL_PHONE = "07700900002"  # Notify's test number: a permanent failure with a test key


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

    def go(self, path: str, name: str) -> None:
        self.driver.get(self.base + path)
        self.check(name)

    def h1(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def fill(self, field_id: str, value: str) -> None:
        element = self.driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)

    def choose(self, field_id: str, text: str) -> None:
        Select(self.driver.find_element(By.ID, field_id)).select_by_visible_text(text)

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

    def rows(self) -> list[list[str]]:
        return [
            [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in self.driver.find_elements(By.CSS_SELECTOR, "#messages tbody tr")
        ]


def _api(platform: PlatformUp, subject: str, *roles: str) -> httpx.Client:
    token = platform.token(subject, *roles)
    return httpx.Client(
        base_url=platform.gateway_url, headers={"authorization": f"Bearer {token}"}, timeout=60
    )


def _notify(api_key: str) -> dict[str, str]:
    service_id, secret = split_api_key(api_key)
    token = jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def _send_messages(platform: PlatformUp, tag: str) -> dict[str, Any]:
    """A text template, and through ``/v2`` with a test key (nothing is sent, the outcome is
    simulated): 22 texts with reference ``bins-<tag>`` and one to Notify's
    permanent-failure number with ``other-<tag>``; waits until all have their final status."""
    with _api(platform, "admin-dev-1", "admin", "staff") as admin:
        service_id = admin.get("/api/v1/notify-services").json()[0]["id"]
        key = admin.post(
            f"/api/v1/notify-services/{service_id}/api-keys",
            json={"name": f"sent {tag}", "key_type": "test"},
        ).json()["key"]
        made = admin.post(
            "/api/v1/templates",
            json={
                "service_id": service_id,
                "type": "sms",
                "name": f"Bin day {tag}",
                "body": "Your bins are collected on ((day)).",
            },
        )
        assert made.status_code == 201, made.text
        template = made.json()
        sent = []
        with httpx.Client(base_url=platform.gateway_url, timeout=60) as http:
            for n in range(23):
                to, reference = (
                    ("07700900123", f"bins-{tag}") if n < 22 else (PERM_FAIL_PHONE, f"other-{tag}")
                )
                answer = http.post(
                    "/v2/notifications/sms",
                    headers=_notify(key),
                    json={
                        "phone_number": to,
                        "template_id": template["id"],
                        "personalisation": {"day": f"Monday {n}"},
                        "reference": reference,
                    },
                )
                assert answer.status_code == 201, answer.text
                sent.append(answer.json()["id"])
        deadline = time.monotonic() + 120
        while True:
            found = admin.get(
                "/api/v1/messages", params={"template_id": template["id"], "page_size": 50}
            ).json()["items"]
            if len(found) == 23 and all(m["status"] not in ("created", "sending") for m in found):
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
    return {"template": template, "ids": sent}


@pytest.fixture(scope="module")
def sent(platform_up: PlatformUp) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    return {"tag": tag, **_send_messages(platform_up, tag)}


def _list_filter_page_and_open(pages: Pages, sent: dict[str, Any], label: str) -> None:
    tag, ids = sent["tag"], sent["ids"]
    pages.go("/notifications/templates", f"notifications: templates ({label})")
    pages.follow('a[href="/notifications/messages"]')
    assert pages.h1() == "Sent messages"
    pages.check(f"sent messages ({label})")

    # by reference: 22, newest first, 20 a page
    pages.fill("reference", f"bins-{tag}")
    pages.submit("#filters")
    rows = pages.rows()
    assert len(rows) == 20, rows
    assert all(r[1] == "+44…123" and r[2] == "Text message" for r in rows), rows
    assert all(r[3] == f"Bin day {tag}" and r[4] == f"bins-{tag}" for r in rows), rows
    assert {r[5] for r in rows} == {"Delivered"}
    links = pages.driver.find_elements(By.CSS_SELECTOR, "#messages tbody a")
    assert links[0].get_attribute("href").endswith(ids[21])  # the newest of them
    pages.check(f"sent messages by reference ({label})")
    pages.follow("a[rel=next]")
    assert len(pages.rows()) == 2
    assert pages.driver.find_element(By.ID, "reference").get_attribute("value") == f"bins-{tag}"
    assert pages.driver.find_elements(By.CSS_SELECTOR, "a[rel=next]") == []
    newest_last = pages.driver.find_elements(By.CSS_SELECTOR, "#messages tbody a")
    assert newest_last[-1].get_attribute("href").endswith(ids[0])
    pages.check(f"sent messages page 2 ({label})")
    pages.follow("a[rel=prev]")
    assert len(pages.rows()) == 20

    # by status (and channel): the permanent failure alone
    pages.fill("reference", "")
    pages.choose("status", "Failed (any failure)")
    pages.choose("channel", "Text message")
    pages.submit("#filters")
    failed = [r for r in pages.rows() if r[4].endswith(tag)]
    assert [r[1:] for r in failed] == [
        ["+44…002", "Text message", f"Bin day {tag}", f"other-{tag}", "Permanent failure"]
    ]
    pages.fill("reference", f"other-{tag}")
    pages.choose("status", "Delivered")
    pages.submit("#filters")
    assert pages.rows() == []
    assert (
        "No messages match these filters" in pages.driver.find_element(By.ID, "result-count").text
    )
    pages.check(f"sent messages none ({label})")

    # one message whole
    pages.choose("status", "Any status")
    pages.submit("#filters")
    pages.follow("#messages tbody a")
    assert pages.h1() == "Text message"
    assert pages.driver.find_element(By.ID, "status").text == "Permanent failure"
    summary = pages.driver.find_element(By.ID, "message").text
    assert "+447700900002" in summary and f"other-{tag}" in summary
    assert f"Bin day {tag}, version 1" in summary
    assert (
        "Your bins are collected on Monday 22." in pages.driver.find_element(By.ID, "content").text
    )
    assert "Created:" in pages.driver.find_element(By.ID, "times").text
    pages.check(f"sent message ({label})")

    # a bad filter from the address: the error summary, no results
    pages.go("/notifications/messages?status=lost&page=0", f"sent messages error ({label})")
    errors = pages.errors()
    assert len(errors) == 2 and errors[0].startswith("Status must be one of"), errors
    assert errors[1].startswith("The page must be a whole number"), errors
    assert pages.driver.find_elements(By.ID, "messages") == []


def test_sent_messages_listed_filtered_paged_and_opened(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, sent: dict[str, Any]
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start="/notifications/templates")
    _list_filter_page_and_open(pages, sent, "js")
    assert html_checker.errors() == {}


def test_sent_messages_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker, sent: dict[str, Any]
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(nojs_browser, console, html_checker, javascript=False)
    sign_in(nojs_browser, console, STAFF, start="/notifications/templates")
    _list_filter_page_and_open(pages, sent, "no-js")
    assert html_checker.errors() == {}


# -- templates: edit with a live preview ---------------------------------------------------
def _sms_template(platform: PlatformUp, tag: str) -> str:
    with _api(platform, STAFF, "staff") as staff:
        made = staff.post(
            "/api/v1/templates",
            json={
                "type": "sms",
                "name": f"Bin reminder {tag}",
                "body": "Hello ((name)), bins out on ((day)).",
            },
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])


def _live_text(driver: Any, *wanted: str) -> str:
    """The live preview once it shows every one of ``wanted`` (it follows the typing)."""
    WebDriverWait(driver, 60).until(
        lambda d: all(w in d.find_element(By.ID, "live-preview").text for w in wanted)
    )
    return str(driver.find_element(By.ID, "live-preview").text)


def test_template_preview_follows_the_typing(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker
) -> None:
    tag = uuid.uuid4().hex[:6]
    template_id = _sms_template(platform_up, tag)
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(browser, console, html_checker)
    sign_in(browser, console, STAFF, start=f"/notifications/templates/{template_id}")
    pages.check("template (live)")
    browser.execute_script("window.notReloaded = true")

    # the template page: the preview follows the placeholder values as they are typed
    pages.driver.find_element(By.ID, "p-name").send_keys("Alex")
    _live_text(browser, "Hello Alex, bins out on ((day)).", "1 text message")
    pages.check("template: live preview")

    # its edit page: the preview and the fragment count follow the message as it is typed
    pages.follow("#edit-link")
    assert pages.h1() == f"Edit Bin reminder {tag}"
    assert "Hello ((name)), bins out on ((day))." in _live_text(browser, "1 text message")
    pages.check("template: edit")
    browser.execute_script("window.notReloaded = true")
    body = browser.find_element(By.ID, "body")
    body.send_keys(" Please put your food caddy out too. " + "It helps us keep costs down. " * 4)
    shown = _live_text(browser, "food caddy", "2 text messages")
    assert "Hello ((name)), bins out on ((day)). Please put your food caddy out too." in shown
    assert browser.execute_script("return window.notReloaded") is True  # no submit
    assert browser.current_url.endswith("/edit")
    pages.check("template: edit, live preview")
    body.send_keys(" Merci ☃")  # not in GSM-7: UCS-2, 70 characters a text
    assert "UCS-2" in _live_text(browser, "UCS-2", "3 text messages")
    with _api(platform_up, STAFF, "staff") as staff:  # nothing saved by previewing
        assert staff.get(f"/api/v1/templates/{template_id}").json()["version"] == 1

    # an empty message: the preview says so; saving it is refused
    pages.fill("body", "x")
    body.send_keys(Keys.BACKSPACE)
    _live_text(browser, "The preview cannot be shown: the message is empty")
    pages.submit("#edit-form")
    assert pages.errors() == ["Enter the message"]
    pages.check("template: edit error")

    # saved: a new version
    pages.fill("body", "Hi ((name)), your bins go out on ((day)).")
    pages.submit("#edit-form")
    assert "Template saved as version 2" in browser.page_source
    assert "Hi ((name)), your bins go out" in browser.find_element(By.ID, "template-body").text
    pages.check("template: saved")
    assert html_checker.errors() == {}


def test_template_edit_and_preview_without_javascript(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker
) -> None:
    tag = uuid.uuid4().hex[:6]
    template_id = _sms_template(platform_up, tag)
    console = platform_up.frontend_urls["staff-console"]
    pages = Pages(nojs_browser, console, html_checker, javascript=False)
    sign_in(nojs_browser, console, STAFF, start=f"/notifications/templates/{template_id}")
    pages.check("template")
    pages.fill("p-name", "Sam")
    pages.fill("p-day", "Friday")
    pages.submit()
    assert "Hello Sam, bins out on Friday." in nojs_browser.find_element(By.ID, "preview").text

    pages.follow("#edit-link")
    pages.check("template: edit")
    pages.fill("body", "Bins out on ((day)). " + "Thank you for recycling. " * 7)
    pages.follow("#edit-form button[value=preview]")
    assert "Bins out on ((day)). Thank you" in nojs_browser.find_element(By.ID, "preview").text
    assert nojs_browser.find_element(By.ID, "fragments").text.endswith(": 2 text messages")
    pages.check("template: edit, previewed")
    with _api(platform_up, STAFF, "staff") as staff:
        assert staff.get(f"/api/v1/templates/{template_id}").json()["version"] == 1
    pages.follow("#edit-form button[value=save]")
    assert "Template saved as version 2" in nojs_browser.page_source
    assert html_checker.errors() == {}
