"""The HTML parity report, opened in a real headless browser (Debian's chromium).

The report of a deliberately failing self-test run is served over HTTP on localhost (as a published report
is), opened with Selenium driving chromium through chromedriver, and checked: no console errors (a missing
favicon counts), the parts a reader needs are present (the parity matrix with the failing cell, a plot), and
a screenshot is saved beside the test output (``$CONFORMANCE_ARTIFACTS``, default ``./test-artifacts``).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian packages chromium, chromium-driver): CI
installs them (``.ci/run``); where they are missing these tests are skipped and say why.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli_report import run_cli

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]
selenium = pytest.importorskip("selenium", reason="needs selenium (extra 'test')")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def artifacts_dir() -> Path:
    out = Path(os.environ.get("CONFORMANCE_ARTIFACTS", ROOT / "test-artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """A static HTTP server for ``directory`` on a free localhost port, for the duration of the block."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The flags a closed network needs (no background or component traffic), and root-safe headless mode.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_parity_report_renders_without_console_errors(browser: webdriver.Chrome, tmp_path: Path) -> None:
    code, output, out = run_cli(tmp_path, broken=True)
    assert code == 1, output  # a failing report: the page must show the failure, not only green cells
    with serve(out) as url:
        browser.get(f"{url}/report.html")
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        errors = console_errors(browser)
        matrix = browser.find_elements(By.CSS_SELECTOR, "table.matrix")
        plots = browser.find_elements(By.CSS_SELECTOR, "figure svg")
        text = browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(artifacts_dir() / "parity-report.png"))
    assert not errors, errors
    assert matrix, "the parity matrix is missing"
    assert plots and plots[0].size["width"] > 100, "no plot rendered"
    assert "selftest.sine" in text
    assert "below" in text.lower() or "fail" in text.lower()
