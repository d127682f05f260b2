"""The web page in a real headless Chromium: shorten through the form, follow the link, see the click.

Screenshots land in artifacts/screenshots/ (kept by CI). Skipped when Chromium or its driver is
missing; CHROMIUM_BINARY and CHROMEDRIVER name other paths (CI points them at the runner's Chrome).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from tests.system.service import ROOT, Service, service_env

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# A public target, as the URL policy demands. The browser resolves its host to the service itself,
# so following the short link ends on a real page (the service's 404 for /landing-page) instead of
# a network error page, which Chromium retries (each retry would be one more click).
TARGET_HOST = "example.com"
TARGET = f"http://{TARGET_HOST}/landing-page"

missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"the browser test needs Chromium and chromedriver; not found: {missing}"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The real service (run.py) on SQLite, clicks flushed every 200 ms."""
    env = service_env(
        tmp_path_factory.mktemp("web"), RATELIMIT_ENABLED="false", CLICK_FLUSH_INTERVAL_MS="200"
    )
    running = Service(env)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, service: Service) -> Iterator:
    """Headless Chromium through chromedriver with a fresh profile; no request leaves this machine."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1024,900",
        "--disable-features=HttpsUpgrades",  # keep http://example.com as typed
        f"--host-resolver-rules=MAP {TARGET_HOST} 127.0.0.1:{service.port}, MAP * ~NOTFOUND, "
        "EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(10)
    yield driver
    driver.quit()


def wait_for(condition: Callable[[], object], timeout: float = 5.0, every: float = 0.1) -> object:
    """Poll `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {timeout} s")
        time.sleep(every)


def screenshot(driver, name: str, width: int = 1024) -> None:
    """Save the whole page, `width` pixels wide, as artifacts/screenshots/<name>."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 800)
    page, frame = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(width, page + frame)
    assert driver.save_screenshot(str(SCREENSHOTS / name))


def test_shorten_through_the_form_follow_the_link_and_see_the_click(service, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def text(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    browser.get(f"{service.base}/")
    assert browser.title == "Shorten a URL · URL shortener"
    field = browser.find_element(By.ID, "url")
    field.send_keys(TARGET, Keys.ENTER)  # keyboard only: submit from the field

    wait_for(lambda: browser.find_element(By.ID, "result").is_displayed())
    short_url = browser.find_element(By.ID, "short-url").get_attribute("value")
    assert short_url.startswith(f"{service.base}/")
    code = short_url.rsplit("/", 1)[1]
    assert browser.switch_to.active_element.get_attribute("id") == "result-heading"
    assert text("target-url") == TARGET
    assert text("form-error") == ""
    browser.find_element(By.ID, "copy").click()
    wait_for(lambda: text("copy-status"))
    wait_for(lambda: browser.execute_script("const i = document.getElementById('qr'); return i.complete"))
    screenshot(browser, "web-form-result.png")

    browser.get(short_url)
    assert browser.current_url == TARGET  # the redirect sent the browser to the target

    browser.get(f"{service.base}/links/{code}")

    def one_click() -> bool:
        browser.refresh()
        return text("total-clicks") == "1"

    wait_for(one_click, timeout=5, every=0.25)
    bars = browser.find_elements(By.CSS_SELECTOR, "#clicks-chart rect.bar")
    assert bars[-1].get_attribute("data-clicks") == "1"
    screenshot(browser, "web-link-page.png")

    screenshot(browser, "web-link-page-phone.png", width=360)  # a phone: nothing scrolls sideways
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    browser.set_window_size(1024, 900)

    browser.get(f"{service.base}/nosuch1")
    assert browser.find_element(By.TAG_NAME, "h1").text == "This short link does not exist"


def test_the_form_shows_the_api_error_in_the_alert_region(service, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{service.base}/")
    browser.find_element(By.ID, "url").send_keys(f"{service.base}/loop")
    browser.find_element(By.ID, "submit").click()
    alert = browser.find_element(By.ID, "form-error")
    wait_for(lambda: alert.text)
    assert alert.get_attribute("role") == "alert"
    assert "url" in alert.text.lower()
    assert browser.find_element(By.ID, "url").get_attribute("aria-invalid") == "true"
    assert not browser.find_element(By.ID, "result").is_displayed()
