"""The HTML parity report and the asv dashboard, opened in a real headless browser (Debian's chromium).

The report of a deliberately failing self-test run is served over HTTP on localhost (as a published report
is), opened with Selenium driving chromium through chromedriver, and checked: no console errors (a missing
favicon counts), the parts a reader needs are present (the parity matrix with the failing cell, a plot), and
a screenshot is saved beside the test output (``$CONFORMANCE_ARTIFACTS``, default ``./test-artifacts``).
The asv dashboard of a tiny benchmark suite is built the way `benchmarks.dashboard` publishes ours (asv run,
asv publish, CDN assets vendored) and checked the same way: no console errors, the benchmark list, a graph.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian packages chromium, chromium-driver): CI
installs them (``.ci/run``); where they are missing these tests are skipped and say why.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import dashboard
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


ASV_BENCH = '''
"""A tiny benchmark suite for the dashboard test."""
import numpy as np


class TimeSum:
    params = [100, 1000]
    param_names = ["n"]

    def setup(self, n):
        self.x = np.arange(n, dtype=np.float64)

    def time_sum(self, n):
        self.x.sum()

    def track_ratio(self, n):
        return 1.0 + n / 1000.0
'''


def _asv(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asv", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_asv_dashboard_renders_without_console_errors(browser: webdriver.Chrome, tmp_path: Path) -> None:
    pytest.importorskip("asv", reason="needs asv (extra 'bench')")
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "bench_tiny.py").write_text(ASV_BENCH)
    (repo / "asv.conf.json").write_text(
        '{"version": 1, "project": "dashboard-test", "repo": ".", "branches": ["main"],'
        ' "environment_type": "virtualenv", "benchmark_dir": "benchmarks", "results_dir": "results",'
        ' "html_dir": "html"}'
    )
    env = {**os.environ, "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    steps = (
        ["machine", "--yes", "--machine", "cpu-test"],
        [
            "run",
            "--python=same",
            "--quick",
            "--machine",
            "cpu-test",
            "--set-commit-hash",
            head.stdout.strip(),
        ],
        ["publish"],
    )
    for args in steps:
        proc = _asv(args, repo, env)
        assert proc.returncode == 0, f"asv {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    html = repo / "html"
    assert (html / "index.html").exists()
    try:  # asv's pages load their JavaScript from CDNs; the published dashboard carries local copies
        vendored = dashboard.vendor(html, ROOT / ".asv" / "vendor-cache")
    except dashboard.DownloadError as exc:
        pytest.skip(f"the npm registry is unreachable, so the dashboard's assets cannot be vendored: {exc}")
    assert len(vendored) >= 8
    with serve(html) as url:
        browser.get(f"{url}/index.html")
        WebDriverWait(browser, 30).until(
            lambda d: (
                d.find_elements(By.PARTIAL_LINK_TEXT, "time_sum")
                or d.find_elements(By.CSS_SELECTOR, "a[href*='time_sum']")
            )
        )
        browser.save_screenshot(str(artifacts_dir() / "asv-index.png"))
        browser.get(f"{url}/#bench_tiny.TimeSum.time_sum")
        WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "canvas, .flot-base, svg")
        )
        time.sleep(1.0)  # let the graph draw before the screenshot
        graphs = browser.find_elements(By.CSS_SELECTOR, "canvas, .flot-base")
        errors = console_errors(browser)
        browser.save_screenshot(str(artifacts_dir() / "asv-graph.png"))
    assert not errors, errors
    assert graphs, "the asv graph did not render"
