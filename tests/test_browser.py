"""The HTML report in a real browser (headless Chromium through chromedriver): it loads from disk with no console
error, shows its tables and charts, sorts, and its weight controls re-rank the frameworks exactly as the Python
formula does; hostile strings from results stay inert; without JavaScript the default ranking is still there.

scripts/test installs Debian's chromium and chromium-driver when they are missing. These tests skip, saying why,
only when no Chromium can be found; with BENCH_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.report import choose, content
from conftest import bench
from test_report import HOSTILE, choice_records, record, write_run

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SCREENSHOT = Path("/tmp/report-screenshot.png")

if not (CHROMIUM and Path(CHROMEDRIVER).is_file()):
    reason = "no Chromium/chromedriver found (scripts/test installs Debian's chromium and chromium-driver as root)"
    if os.environ.get("BENCH_REQUIRE_BROWSER") == "1":
        raise RuntimeError(reason + "; BENCH_REQUIRE_BROWSER=1 demands the browser tests")
    pytest.skip(reason, allow_module_level=True)


def open_browser(javascript: bool = True):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    """The report of a run with three frameworks, a failure carrying hostile markup, and a synthetic task."""
    root = tmp_path_factory.mktemp("browser")
    run = write_run(root / "results", "run-a", choice_records(), versions={"paddle": HOSTILE})
    completed = bench("report", "run-a", cwd=root)
    assert completed.returncode == 0, completed.stderr
    return root / "reports" / "run-a.html", run


@pytest.fixture(scope="module")
def browser(report):
    driver = open_browser()
    driver.get(report[0].as_uri())
    yield driver
    driver.quit()


def console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def ranking_labels(driver, anchor: str = "mnist_mlp-mnist-cpu") -> list[str]:
    table = driver.find_element(By.CSS_SELECTOR, f'table[data-ranking="{anchor}"]')
    return [row.get_attribute("data-label") for row in table.find_elements(By.CSS_SELECTOR, "tbody tr[data-label]")]


def python_order(run: Path, weights: dict) -> list[str]:
    setting = next(s for s in content.load([str(run)], run.parent).settings if s.anchor == "mnist_mlp-mnist-cpu")
    return [entry.label for entry in choose.rank(setting.groups, "cpu", weights).entries]


def test_page_loads_without_console_errors_or_requests(browser):
    assert browser.title == "Benchmark report: run-a"
    assert console_errors(browser) == []
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
    assert resources == []
    browser.set_window_size(1400, browser.execute_script("return document.documentElement.scrollHeight"))
    browser.save_screenshot(str(SCREENSHOT))
    browser.set_window_size(1400, 1000)


def test_tables_and_charts_are_present(browser):
    leaderboards = browser.find_elements(By.CSS_SELECTOR, "table.leaderboard")
    assert len(leaderboards) == 2  # mnist_mlp on mnist, cifar_cnn on synthetic
    assert len(leaderboards[0].find_elements(By.CSS_SELECTOR, "tbody tr")) == 4
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart")
    assert len(charts) >= 8
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", chart)
               for chart in charts)
    assert browser.find_element(By.ID, "synthetic-banner").is_displayed()
    assert len(browser.find_elements(By.CSS_SELECTOR, ".rosetta pre.code")) >= 2


def test_weight_controls_rerank_as_the_python_formula_does(browser, report):
    run = report[1]
    assert ranking_labels(browser) == python_order(run, choose.PRESETS["balanced"])
    for preset in ("memory-constrained", "production inference", "research prototyping"):
        browser.find_element(By.CSS_SELECTOR, f'button[data-preset="{preset}"]').click()
        assert ranking_labels(browser) == python_order(run, choose.PRESETS[preset]), preset
        assert browser.find_element(By.CSS_SELECTOR, f'button[data-preset="{preset}"]').get_attribute(
            "aria-pressed") == "true"
    browser.find_element(By.CSS_SELECTOR, 'button[data-preset="memory-constrained"]').click()
    assert ranking_labels(browser)[0] == "mxnet eager"
    pick = browser.find_element(By.CSS_SELECTOR, ".ranking-block [data-pick] strong")
    assert pick.text == "mxnet eager"
    memory = browser.find_element(By.CSS_SELECTOR, 'input[data-criterion="memory"]')
    memory.send_keys(Keys.HOME)  # the reader drags memory down to 0
    weights = {**choose.PRESETS["memory-constrained"], "memory": 0}
    assert ranking_labels(browser) == python_order(run, weights)
    assert ranking_labels(browser)[0] == "pytorch eager"
    assert not any(button.get_attribute("aria-pressed") == "true"
                   for button in browser.find_elements(By.CSS_SELECTOR, "button[data-preset]"))
    browser.find_element(By.CSS_SELECTOR, 'button[data-preset="balanced"]').click()
    assert console_errors(browser) == []


def test_leaderboard_sorts_by_a_column_with_missing_values_last(browser):
    table = browser.find_element(By.CSS_SELECTOR, "table.leaderboard")
    header = next(th for th in table.find_elements(By.CSS_SELECTOR, "th") if th.text.startswith("train samples/s"))
    header.click()  # ascending
    names = [row.find_element(By.CSS_SELECTOR, "td").text.split("\n")[0]
             for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert names[0] == "mxnet eager" and names[-1] == "paddle eager"  # failed: no value, last
    header.click()  # descending
    names = [row.find_element(By.CSS_SELECTOR, "td").text.split("\n")[0]
             for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert names[-2:] == ["mxnet eager", "paddle eager"]


def test_hostile_strings_are_shown_as_text_and_never_run(browser, tmp_path):
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "main img:not(.chart)") == []
    failure = browser.find_element(By.CSS_SELECTOR, ".failure .reason")
    assert failure.text == HOSTILE
    root = tmp_path
    write_run(root / "results", "run-x", [record("evil</script><script>window.__pwned = 3</script>"),
                                          record("pytorch")])
    assert bench("report", "run-x", cwd=root).returncode == 0
    driver = open_browser()
    try:
        driver.get((root / "reports" / "run-x.html").as_uri())
        assert driver.execute_script("return window.__pwned") is None
        assert console_errors(driver) == []
        assert "evil</script><script>window.__pwned = 3</script> eager" in ranking_labels(driver)
    finally:
        driver.quit()


def test_without_javascript_the_default_ranking_is_shown(report):
    driver = open_browser(javascript=False)
    try:
        driver.get(report[0].as_uri())
        assert ranking_labels(driver) == python_order(report[1], choose.PRESETS[choose.DEFAULT_PRESET])
        assert not driver.find_element(By.ID, "weights").is_displayed()  # controls that could not work are hidden
        assert "default weights" in driver.find_element(By.CSS_SELECTOR, ".controls.no-js-only").text
    finally:
        driver.quit()


def test_contended_frameworks_stay_last_and_unranked_as_weights_move(tmp_path):
    run = write_run(tmp_path / "results", "run-c", [record("pytorch", speed=30_000, contended=True),
                                                    record("tensorflow", speed=20_000),
                                                    record("mxnet", speed=10_000, memory_mib=100)])
    assert bench("report", "run-c", cwd=tmp_path).returncode == 0
    driver = open_browser()
    try:
        driver.get((tmp_path / "reports" / "run-c.html").as_uri())
        for preset, weights in choose.PRESETS.items():
            driver.find_element(By.CSS_SELECTOR, f'button[data-preset="{preset}"]').click()
            assert ranking_labels(driver) == python_order(run, weights), preset
            assert ranking_labels(driver)[-1] == "pytorch eager"  # the fastest, but measured under contention
            contended = driver.find_element(By.CSS_SELECTOR, 'tr[data-label="pytorch eager"]')
            assert contended.find_element(By.CSS_SELECTOR, ".rank").text == "—"
            assert "pytorch" not in driver.find_element(By.CSS_SELECTOR, "[data-pick] strong").text
        assert console_errors(driver) == []
    finally:
        driver.quit()
