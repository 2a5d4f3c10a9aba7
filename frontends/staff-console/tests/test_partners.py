"""Partner webhooks in the console, on the real platform in a real browser, delivering to a
local receiver (the notifications service is told, for this module's platform only, that
loopback endpoints over http are allowed: ``NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS``,
``NOTIFICATIONS_WEBHOOK_REQUIRE_HTTPS``):

- an admin lists, creates (errors first: the form's own, then the API's SSRF refusal), sees the
  signed delivery in the log, replays it (same ``webhook-id``) and rotates the secret;
- a partner signed in through OIDC does the same with their own subscription only;
axe-core on every page and error state, and the HTML through the Nu HTML Checker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
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


#: This module's platform only (``webkit.testing.platform_up`` reads it).
PLATFORM_ENV = {
    "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    "NOTIFICATIONS_WEBHOOK_REQUIRE_HTTPS": "false",
    "NOTIFICATIONS_WEBHOOK_RETRY_SCALE": "0.01",
}


class Receiver:
    """A partner's endpoint: records every request (headers, body) and answers 204."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], str]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body.decode()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int, timeout: float = 180) -> list[tuple[dict[str, str], str]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} deliveries of {count}"
            time.sleep(0.2)
        return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def _signed(secret: str, headers: dict[str, str], body: str) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return f"v1,{expected}" in headers["webhook-signature"].split()


def _publish_service(platform: PlatformUp) -> str:
    token = platform.token("admin-dev-1", "admin", "staff")
    with httpx.Client(
        base_url=platform.gateway_url, headers={"authorization": f"Bearer {token}"}, timeout=60
    ) as api:
        name = f"Garden waste {uuid.uuid4().hex[:6]}"
        created = api.post("/api/v1/services", json={"name": name})
        assert created.status_code == 201, created.text
        service_id = str(created.json()["id"])
        published = api.post(f"/api/v1/services/{service_id}/publish")
        assert published.status_code == 200, published.text
    return service_id


class Pages:
    def __init__(self, driver: Any, base: str, html_checker: HtmlChecker) -> None:
        self.driver = driver
        self.base = base
        self.html = html_checker

    def check(self, name: str) -> None:
        violations = axe_violations(self.driver)
        assert violations == [], f"{name}: {violations}"
        self.html.add(name, "<!DOCTYPE html>\n" + self.driver.page_source)
        save_screenshots(self.driver, "staff-console " + name)

    def submit(self, form: str) -> None:
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]").click()
        WebDriverWait(self.driver, 60).until(page_replaced(old))

    def errors(self) -> list[str]:
        found = self.driver.find_elements(By.CSS_SELECTOR, ".govuk-error-summary__list li")
        return [e.text for e in found]

    def text(self, element_id: str) -> str:
        return str(self.driver.find_element(By.ID, element_id).text)


def _subscribe_replay_rotate(
    pages: Pages, platform: PlatformUp, receiver: Receiver, who: str
) -> str:
    """The whole round on /webhooks as the signed-in user; the subscription's id."""
    browser = pages.driver
    pages.check(f"webhooks ({who})")
    pages.submit("#create-form")
    assert pages.errors() == [
        "Enter the address of your endpoint, starting https://",
        "Choose the events to send",
    ]
    pages.check(f"webhooks ({who}): form errors")
    # a private address: the notifications service's SSRF guard refuses it
    browser.find_element(By.ID, "url").send_keys("https://192.168.0.10/hook")
    browser.find_element(By.CSS_SELECTOR, 'input[value="ServicePublished"]').click()
    pages.submit("#create-form")
    assert pages.errors() == ["The endpoint's host must resolve to public internet addresses only."]
    pages.check(f"webhooks ({who}): endpoint refused")
    field = browser.find_element(By.ID, "url")
    field.clear()
    field.send_keys(receiver.url)
    pages.submit("#create-form")  # ServicePublished is still ticked
    secret = pages.text("secret")
    assert secret.startswith("whsec_")
    pages.check(f"webhooks ({who}): subscription created")
    assert receiver.url in pages.text("subscriptions")
    browser.find_element(By.CSS_SELECTOR, "main .govuk-panel ~ p a").click()
    WebDriverWait(browser, 60).until(lambda d: "/webhooks/" in d.current_url)
    subscription_id = browser.current_url.rstrip("/").rsplit("/", 1)[1]
    assert "Nothing sent yet" in browser.page_source

    # an event: delivered, signed with the secret shown once
    _publish_service(platform)
    (headers, body), *_ = receiver.wait(1)
    assert _signed(secret, headers, body)
    assert json.loads(body)["type"].endswith("ServicePublished.v1") or "ServicePublished" in body
    deadline = time.monotonic() + 120
    while "Delivered" not in browser.page_source:
        assert time.monotonic() < deadline, browser.page_source
        time.sleep(0.5)
        browser.refresh()
    assert "ServicePublished" in pages.text("deliveries")
    pages.check(f"webhook subscription ({who})")

    # replay: the same delivery again, same webhook-id
    pages.submit("#deliveries form")
    assert "Delivery queued to be sent again" in browser.page_source
    pages.check(f"webhook subscription ({who}): replayed")
    (first, _), (again, again_body) = receiver.wait(2)[:2]
    assert again["webhook-id"] == first["webhook-id"]
    assert _signed(secret, again, again_body)

    # rotate: a new secret, shown once
    pages.submit("#rotate-form")
    rotated = pages.text("secret")
    assert rotated.startswith("whsec_") and rotated != secret
    pages.check(f"webhook subscription ({who}): secret rotated")
    browser.get(pages.base + f"/webhooks/{subscription_id}")
    assert rotated not in browser.page_source and secret not in browser.page_source
    return subscription_id


def test_admin_manages_partner_webhooks(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, receiver: Receiver
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    sign_in(browser, console, "admin-dev-1", start="/webhooks")
    _subscribe_replay_rotate(Pages(browser, console, html_checker), platform_up, receiver, "admin")
    assert html_checker.errors() == {}


def test_partner_area_own_subscriptions_only(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, receiver: Receiver
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    # a subscription of another partner's (made through the API as an admin)
    token = platform_up.token("admin-dev-1", "admin", "staff")
    other_url = receiver.url.replace("/hook", "/other-partner")
    with httpx.Client(
        base_url=platform_up.gateway_url, headers={"authorization": f"Bearer {token}"}
    ) as api:
        other = api.post(
            "/api/v1/webhook-subscriptions",
            json={"url": other_url, "event_types": ["ServiceRetired"]},
        )
        assert other.status_code == 201, other.text
    browser.delete_all_cookies()
    sign_in(browser, console, "partner-dev-1", start="/webhooks")
    pages = Pages(browser, console, html_checker)
    assert other_url not in browser.page_source
    mine = _subscribe_replay_rotate(pages, platform_up, receiver, "partner")
    # the partner cannot open another's subscription, nor any staff page
    browser.get(console + f"/webhooks/{other.json()['id']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Page not found"
    browser.get(console + "/catalogue")
    assert browser.find_element(By.TAG_NAME, "h1").text == "You cannot see this page"
    pages.check("partner: staff page refused")
    # the admin sees the partner's subscription among everyone's
    with httpx.Client(
        base_url=platform_up.gateway_url, headers={"authorization": f"Bearer {token}"}
    ) as api:
        everyone = {s["id"] for s in api.get("/api/v1/webhook-subscriptions").json()}
    assert {mine, other.json()["id"]} <= everyone
    assert html_checker.errors() == {}
