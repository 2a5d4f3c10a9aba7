"""The catalogue import's progress page, in the browser on the real platform: a CSV of a few
hundred rows imported as a background job of citizen-services, its progress seen moving
before it finishes (with JavaScript: updated in place by ``import-progress.mjs``; without: the
*Check progress* button), the finished page listing what was imported, and a failed job's page
saying why. No timing is asserted: citizen-services pauses after each batch of rows
(``PLATFORM_ENV``, this module only), so a job runs for seconds and its intermediate states
are there to see; a slow machine only makes them longer."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
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

#: 15 batches of 20 rows, a pause of 0.4 s after each: a job runs at least 6 s.
PLATFORM_ENV = {
    "CITIZEN_SERVICES_IMPORT_BATCH_SIZE": "20",
    "CITIZEN_SERVICES_IMPORT_BATCH_PAUSE_SECONDS": "0.4",
}
ROWS = 300
STAFF = "staff-dev-1"
PROGRESS = re.compile(r"Imported (\d+) of (\d+)")
#: Chromedriver, while a page is being replaced: "stale" or "does not belong to the document".
GONE = (WebDriverException,)


def csv_file(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / f"services-{tag}.csv"
    lines = ["name,service_code,keywords"]
    lines += [f"Imported {tag} {i:03d},imp-{tag}-{i:03d},bulk;{tag}" for i in range(1, ROWS + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Browser:
    """The pages one driver reaches, each checked: axe-core (with JavaScript) and the HTML
    kept for the Nu HTML Checker."""

    def __init__(self, driver: Any, base: str, html: HtmlChecker, *, javascript: bool) -> None:
        self.driver, self.base, self.html, self.javascript = driver, base, html, javascript

    def check(self, name: str) -> None:
        suffix = "" if self.javascript else " (no JavaScript)"
        if self.javascript:
            violations = axe_violations(self.driver)
            assert violations == [], f"{name}: {violations}"
            save_screenshots(self.driver, "staff-console " + name)
        self.html.add(name + suffix, "<!DOCTYPE html>\n" + self.driver.page_source)

    def text(self, selector: str) -> str | None:
        """An element's text now, or None (none there, or the page is being replaced)."""
        try:
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            return str(found[0].text) if found else None
        except GONE:
            return None

    def follow(self, selector: str) -> None:
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        WebDriverWait(self.driver, 60).until(page_replaced(old))

    def upload(self, path: Path) -> None:
        """Upload ``path`` and check its preview; the import not yet started."""
        self.driver.get(self.base + "/catalogue/import")
        self.driver.find_element(By.ID, "file").send_keys(str(path))
        self.follow("main form button[type=submit]")
        outcome = self.text("#import-outcome") or ""
        assert f"{ROWS} services will be imported" in outcome, outcome
        self.check("import progress: preview")

    def until(self, condition: Callable[[], bool], timeout: float = 180) -> None:
        WebDriverWait(self.driver, timeout, poll_frequency=0.2, ignored_exceptions=GONE).until(
            lambda _: condition()
        )


def figures(messages: list[str]) -> list[int]:
    """The rows done each "Imported k of N" message says, in order (N checked)."""
    found = [PROGRESS.search(m) for m in messages]
    assert all(int(m.group(2)) == ROWS for m in found if m)
    return [int(m.group(1)) for m in found if m]


def assert_done(page: Browser, tag: str) -> None:
    assert page.text("h1") == f"{ROWS} services imported as drafts"
    items = page.driver.find_elements(By.CSS_SELECTOR, "#imported li a")
    assert len(items) == ROWS
    assert items[0].text == f"Imported {tag} 001" and items[-1].text == f"Imported {tag} {ROWS}"


def test_progress_updates_in_place_with_javascript(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, tmp_path: Path
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    page = Browser(browser, console, html_checker, javascript=True)
    sign_in(browser, console, STAFF, start="/catalogue/import")
    tag = uuid.uuid4().hex[:6]
    page.upload(csv_file(tmp_path, tag))
    page.follow("main form button[type=submit]")
    assert page.text("h1") == "Importing services", page.text("h1")
    # the script hides the no-JavaScript button; the figures are a live region
    assert not browser.find_element(By.ID, "check-progress").is_displayed()
    assert browser.find_element(By.ID, "import-status").get_attribute("role") == "status"
    page.check("import progress: running")
    # a mark on this document: it is still there while the figures move, so the script
    # updated the page in place (no reload)
    browser.execute_script("document.documentElement.dataset.probe = 'kept'")
    seen: list[str] = []
    checked: list[str] = []

    def sample() -> bool:
        if page.text("h1") == f"{ROWS} services imported as drafts":
            return True
        kept = browser.execute_script("return document.documentElement.dataset.probe || ''")
        status = page.text("#import-status")
        if kept == "kept" and status and (not seen or seen[-1] != status):
            seen.append(status)
            if not checked and any(0 < n < ROWS for n in figures([status])):
                page.check("import progress: moving")  # the page as the script updated it
                checked.append(status)
        return False

    page.until(sample)
    done = figures(seen)
    assert done == sorted(done), seen  # never backwards
    assert any(0 < n < ROWS for n in done), f"no intermediate state seen: {seen}"
    assert len(set(done)) >= 2, seen  # it moved while this page was shown
    assert_done(page, tag)
    page.check("import progress: done")
    assert html_checker.errors() == {}


def test_progress_without_javascript_has_a_check_progress_button(
    platform_up: PlatformUp, nojs_browser: Any, html_checker: HtmlChecker, tmp_path: Path
) -> None:
    console = platform_up.frontend_urls["staff-console"]
    page = Browser(nojs_browser, console, html_checker, javascript=False)
    sign_in(nojs_browser, console, STAFF, start="/catalogue/import")
    tag = uuid.uuid4().hex[:6]
    page.upload(csv_file(tmp_path, tag))
    page.follow("main form button[type=submit]")
    assert page.text("h1") == "Importing services"
    page.check("import progress: running")
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while page.text("h1") == "Importing services":
        assert time.monotonic() < deadline, seen
        seen.append(page.text("#import-status") or "")
        assert nojs_browser.find_element(By.ID, "check-progress").is_displayed()
        time.sleep(0.3)
        page.follow("#check-progress")
    done = figures(seen)
    assert done == sorted(done), seen
    assert any(0 < n < ROWS for n in done), f"no intermediate state seen: {seen}"
    assert_done(page, tag)
    page.check("import progress: done")
    assert html_checker.errors() == {}


def test_a_failed_import_says_why_and_imports_nothing(
    platform_up: PlatformUp, browser: Any, html_checker: HtmlChecker, tmp_path: Path
) -> None:
    """While the job runs, someone else creates a service with the last row's slug: the job
    fails when it comes to write it, and nothing of the file is imported."""
    console = platform_up.frontend_urls["staff-console"]
    page = Browser(browser, console, html_checker, javascript=True)
    sign_in(browser, console, STAFF, start="/catalogue/import")
    tag = uuid.uuid4().hex[:6]
    page.upload(csv_file(tmp_path, tag))
    page.follow("main form button[type=submit]")
    assert page.text("h1") == "Importing services"
    staff = {"Authorization": "Bearer " + platform_up.token(STAFF, "staff")}
    with httpx.Client(base_url=platform_up.gateway_url, headers=staff, timeout=60) as api:
        taken = api.post(
            "/api/v1/services",
            json={"name": "Someone else's", "slug": f"imported-{tag}-{ROWS}", "service_code": tag},
        )
        assert taken.status_code == 201, taken.text
        page.until(lambda: page.text("h1") == "The import failed: nothing was imported")
        assert "nothing was imported" in (page.text("#import-failure") or "")
        problems = page.text("#import-problems") or ""
        assert f"Row {ROWS} (line {ROWS + 1}): slug:" in problems, problems
        page.check("import progress: failed")
        everything = api.get("/api/v1/services/export").json()
        assert [s["name"] for s in everything if tag in s["name"] + s["service_code"]] == [
            "Someone else's"
        ]
    assert html_checker.errors() == {}
