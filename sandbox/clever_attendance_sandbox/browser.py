"""Debian's headless Chromium, driven through its chromedriver (both installed by `make browser`), signed in
to a running Airflow: the board's browser test and the docs' screenshots."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clever_attendance_sandbox.wiring import ROOT

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# this machine's network is closed: without these Chromium spends its start looking for Google's services
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1600,1000")
WAIT = 30  # seconds for a page or an element


def artifacts() -> Path:
    """Where tests leave what a person may want to look at (screenshots): $ATTENDANCE_TEST_ARTIFACTS, or
    .artifacts/ in the project."""
    folder = Path(os.environ.get("ATTENDANCE_TEST_ARTIFACTS") or ROOT / ".artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def chromium(dark: bool = False) -> Iterator:
    """A headless Chromium with a profile of its own, quit afterwards whatever happened."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise RuntimeError(f"{path} is missing: `make browser` installs Debian's chromium and chromium-driver")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = Options()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}", *(["--force-dark-mode"] if dark else [])):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(WAIT)
        try:
            yield driver
        finally:
            driver.quit()


def sign_in(driver, base_url: str, username: str, password: str) -> None:
    """Through Airflow's own login form, as a person does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base_url + "/")
    WebDriverWait(driver, WAIT).until(shown.presence_of_element_located((By.NAME, "username"))).send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password, Keys.ENTER)
    WebDriverWait(driver, WAIT).until(lambda d: any(c["name"] == "_token" for c in d.get_cookies()),
                                      "Airflow's login set no _token cookie")


def framed_table(driver, url: str, table_id: str) -> list[tuple[dict, list[str]]]:
    """Open a UI page that frames a board page, and read one of its tables: each row's data-* attributes and
    its cells (a cell's title where it has one, else its text)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    _enter_frame(driver, url)
    WebDriverWait(driver, WAIT).until(shown.presence_of_element_located((By.ID, table_id)),
                                      f"no table {table_id} in the board frame of {url}")
    rows = driver.execute_script("""
        return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).map(row => [
            Object.assign({}, row.dataset),
            Array.from(row.cells).map(c => c.title || c.innerText.replace(/\\s+/g, ' ').trim())]);""", table_id)
    driver.switch_to.default_content()
    return [(attrs, cells) for attrs, cells in rows]


def follow_framed_link(driver, url: str, links: list[str], lands_on: str) -> str:
    """Open a UI page that frames a board page, click its links in turn (by their text) as a person does, and wait
    for the top window to show `lands_on` (a part of its path); returns the top window's URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    _enter_frame(driver, url)
    for text in links:
        WebDriverWait(driver, WAIT).until(shown.element_to_be_clickable((By.LINK_TEXT, text)),
                                          f"no link {text!r} in the board frame of {url}").click()
    driver.switch_to.default_content()
    WebDriverWait(driver, WAIT).until(lambda d: lands_on in d.current_url,
                                      f"clicking {links} did not open {lands_on}: {driver.current_url}")
    return driver.current_url


def _enter_frame(driver, url: str) -> None:
    """Open a UI page and switch into the board's frame on it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, WAIT).until(shown.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")),
                                      f"no board frame on {url}")
