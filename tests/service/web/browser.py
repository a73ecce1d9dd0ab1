"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium.

``Page.check_and_shoot`` is what every page of the e2e tests goes through: it saves a full-page
screenshot at 1366x768 and at a 375 px phone width under ``test-output/screenshots/``, and asserts
at both widths that every input, select and textarea has an associated <label> and that nothing
overflows the page sideways.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "test-output" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SIZES = {"1366": (1366, 768, False), "375": (375, 812, True)}

UNLABELLED_JS = """
return Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length > 0))
  .map(e => e.outerHTML.slice(0, 160));
"""


def find_browser() -> tuple[str, str]:
    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    driver = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    if not chromium or not driver:
        raise RuntimeError("chromium and chromium-driver are missing: run scripts/setup.sh (apt-get install)")
    return chromium, driver


def start_chrome() -> webdriver.Chrome:
    chromium, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=vi-VN",
                "--window-size=1366,768", "--hide-scrollbars", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(arg)
    # An explicit driver path: Selenium Manager never tries to download anything.
    return webdriver.Chrome(service=DriverService(executable_path=driver), options=options)


class Page:
    """The browser plus the base URL of the service under test."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.d = driver
        self.base = base
        self.wait = WebDriverWait(driver, 30)

    # ---- navigation ----
    def go(self, path: str) -> None:
        self.d.get(self.base + path)

    def el(self, css: str) -> WebElement:
        return self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def els(self, css: str) -> list[WebElement]:
        return list(self.d.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        return self.el(css).text

    def fill(self, field_id: str, value: str) -> None:
        box = self.el(f"#{field_id}")
        box.clear()
        box.send_keys(value)

    def choose(self, field_id: str, value: str) -> None:
        Select(self.el(f"#{field_id}")).select_by_value(value)

    def ready(self) -> None:
        """Wait until the current document has finished loading (a navigation may still be committing)."""
        self.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def _click_through(self, css: str) -> bool:
        """Click the element ``css`` and wait until the next page has replaced this one and loaded.

        If the page is replaced between locating the element and clicking it (a navigation still
        finishing), Selenium raises StaleElementReferenceException before any click reaches the page:
        wait for the new page, locate again and click there. False when no such element is there.
        """
        for attempt in range(3):
            self.ready()
            found = self.els(css)
            if not found:
                return False
            old = self.d.find_element(By.TAG_NAME, "html")
            try:
                found[0].click()
            except StaleElementReferenceException:
                if attempt == 2:
                    raise
                continue
            self.wait.until(partial(_detached, old))
            self.ready()
            return True
        return False

    def submit(self, button_css: str) -> None:
        """Click a submit button and wait until the next page has replaced this one."""
        self.el(button_css)  # wait for it to exist
        assert self._click_through(button_css), f"{button_css} vanished before it could be clicked"

    def h1(self) -> str:
        return self.text("h1")

    @property
    def path(self) -> str:
        return self.d.current_url.removeprefix(self.base)

    # ---- sign in and out ----
    def login(self, username: str, password: str) -> None:
        self.logout()
        self.go("/login")
        self.fill("username", username)
        self.fill("password", password)
        self.submit("#login-btn")
        assert "/login" not in self.path, self.text("main")

    def logout(self) -> None:
        """Sign out with the page's own button when there is one (then on the login page), and drop all cookies."""
        if self._click_through("form.logout button"):
            assert self.path.startswith("/login"), self.path
        self.d.delete_all_cookies()

    # ---- screenshots and page checks ----
    def _metrics(self, width: int, height: int, mobile: bool) -> None:
        self.d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def check_and_shoot(self, name: str) -> dict[str, Any]:
        """Screenshots at both widths; labels and horizontal overflow checked at each. Returns what was seen."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        seen: dict[str, Any] = {}
        try:
            for tag, (width, height, mobile) in SIZES.items():
                self._metrics(width, height, mobile)
                unlabelled = self.d.execute_script(UNLABELLED_JS)
                assert unlabelled == [], f"{name} at {width}px: fields without a <label>: {unlabelled}"
                # A phone would zoom out to fit a too-wide page (innerWidth grows): compare with the device width.
                inner = self.d.execute_script("return window.innerWidth")
                scroll = self.d.execute_script("return document.documentElement.scrollWidth")
                assert inner == width and scroll <= width, f"{name} at {width}px overflows sideways: {scroll}px"
                full = int(self.d.execute_script("return document.documentElement.scrollHeight"))
                self._metrics(width, max(height, min(full, 6000)), mobile)
                path = SHOTS / f"{name}-{tag}.png"
                self.d.save_screenshot(str(path))
                assert path.stat().st_size > 5_000, f"screenshot {path} looks empty"
                seen[tag] = {"inner": inner, "scroll": scroll, "height": full, "file": path}
        finally:
            self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return seen


def _detached(element: WebElement, _driver: Any = None) -> bool:
    """Whether the page holding ``element`` has been replaced (``ec.staleness_of``, Chromium-proof).

    Chromium sometimes reports a node of the replaced page not as stale but as an inspector error
    ("Node with given id does not belong to the document"), which ``staleness_of`` lets through.
    """
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False
