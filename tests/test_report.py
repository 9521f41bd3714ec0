"""`snakemake --report report.html` on the default run, opened in a real headless Chromium
(Debian's chromium and chromium-driver, driven by selenium): a person clicks each study under
Results, opens its page (the claims with their verdicts, the figures, the tables) and each
figure.

Off CI these tests skip when chromium or chromedriver is missing (`sudo .ci/chromium` installs
them on Debian); under CI (the CI environment variable set) that fails them. The browser is
checked before the default run starts, so a skip costs nothing.
"""

from __future__ import annotations

import math
import os
import shutil
import time

import pandas as pd
import pytest
import yaml
from conftest import snakemake

from corruptlab import studies

pytestmark = pytest.mark.e2e

BROWSER = ("chromium", "chromedriver")
VERDICTS = {"supported", "contradicted", "inconclusive", "not applicable", "reported"}
WAIT = 60  # seconds a page may take to render (an upper bound, not a timing)
RECLICK = 5  # seconds after which a click that changed nothing is repeated


def require_browser() -> None:
    missing = [b for b in BROWSER if shutil.which(b) is None]
    if not missing:
        return
    why = f"{' and '.join(missing)} not installed"
    how = "`sudo .ci/chromium` installs Debian's chromium and chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(f"no browser under CI: {why}; .ci/run should have installed it ({how})")
    pytest.skip(f"no headless browser here ({why}); {how}")


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # as root (CI)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=shutil.which("chromedriver"))
    )
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(browser, request):
    """The default run's report.html and its directory (the browser checked first)."""
    wd, _ = request.getfixturevalue("default_run")
    snakemake(wd, "--report", "report.html")
    return wd


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # an element found a moment before a re-render is stale: look again, as for one not there yet
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, WAIT, ignored_exceptions=ignored).until(
        condition, message=f"waited for {what}"
    )


ROWS = """
return Array.from(document.querySelectorAll("tbody tr"))
  .map(row => [row, Array.from(row.querySelectorAll("td")).map(c => c.innerText.trim())]);
"""


def _rows(driver) -> dict[tuple[str, str], object]:
    """The results listed for the category shown: (section, name) -> its row (each row's cells
    as the page renders their text, read in one call)."""
    return {
        (cells[0], cells[1]): row for row, cells in driver.execute_script(ROWS) if len(cells) >= 3
    }


LABELS = """
return Object.entries(results).filter(([path]) => path.startsWith(arguments[0]))
  .map(([, r]) => [r.labels.section, r.labels.name]);
"""


def _click_until(driver, target, done, what: str, shown=None):
    """Click ``target(driver)`` (an element, looked up anew each time) until ``done(driver)`` is
    truthy, and return that. A click can be lost: one that lands while the page re-renders, or
    where an element was a moment before the layout moved it; a click that changed nothing is
    repeated every RECLICK seconds, as a person would. On a timeout the failure says what
    ``shown(driver)`` last saw."""
    from selenium.common.exceptions import TimeoutException

    state = {"clicked": -math.inf, "clicks": 0}

    def condition(d):
        result = done(d)
        if result:
            return result
        if time.monotonic() - state["clicked"] > RECLICK:
            target(d).click()
            state["clicked"], state["clicks"] = time.monotonic(), state["clicks"] + 1
        return False

    try:
        return _wait(driver, condition, what)
    except TimeoutException:
        saw = f"; it showed {shown(driver)}" if shown else ""
        pytest.fail(f"waited {WAIT} s for {what} after {state['clicks']} click(s){saw}")


def _study_rows(driver, study: str, start: str) -> dict[tuple[str, str], object]:
    """Click ``study`` under Results and return its results once the list shows exactly them
    (the report's own index of its results says which). The list re-renders a moment after the
    click, and until then shows the previous one. The menu item is clicked once it stands still
    (the menu lays itself out after the page loads); a click that landed on another study
    leaves a menu without this one, and the report is then opened again at ``start``."""
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    expected = {tuple(r) for r in driver.execute_script(LABELS, f"results/{study}/")}
    assert expected, f"the report lists no results under results/{study}/"
    xpath = f"//li/a[span[normalize-space()='{study}']]"

    def item(d):
        found = d.find_elements(By.XPATH, xpath)
        if not found:  # the menu shows another category: back to the start, as a person would
            d.get(start)
            found = [d.find_element(By.XPATH, xpath)]
        before = found[0].rect
        time.sleep(0.2)
        if found[0].rect != before:
            raise NoSuchElementException(f"menu item {study} still moving")  # look again
        return found[0]

    def listed(d):
        rows = _rows(d)
        return rows if set(rows) == expected else False

    return _click_until(
        driver,
        item,
        listed,
        f"{study}'s {len(expected)} results {sorted(expected)} under Results",
        shown=lambda d: sorted(_rows(d)),
    )


def _open_result(driver, study: str, start: str, key: tuple[str, str], done, what: str):
    """Click the eye button (the first action) of result ``key`` (section, name) in ``study``'s
    list until ``done``."""
    from selenium.webdriver.common.by import By

    def button(d):
        return _study_rows(d, study, start)[key].find_element(By.CSS_SELECTOR, "td:last-child a")

    return _click_until(driver, button, done, what)


DECODED = "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth])"


def _page_frame(driver):
    """The frame a study page opens in (False while none is shown)."""
    from selenium.webdriver.common.by import By

    frames = driver.find_elements(By.TAG_NAME, "iframe")
    return frames[0] if frames else False


def _study_page(driver, study: str) -> dict:
    """What the study page shows, read inside its frame: the claims table's header and verdicts
    (if it is displayed), the sections in order and each image's decoded width."""
    from selenium.webdriver.common.by import By

    driver.switch_to.frame(_wait(driver, _page_frame, "the page's frame"))
    try:
        _wait(
            driver,
            lambda d: (
                d.execute_script("return document.readyState") == "complete"
                and d.find_elements(By.TAG_NAME, "h1")
            ),
            f"{study}'s page",
        )
        seen = {"title": driver.find_element(By.TAG_NAME, "h1").text}
        claims = driver.find_elements(By.CSS_SELECTOR, "#claims table")
        if claims and claims[0].is_displayed():
            seen["claims_header"] = [
                th.text for th in claims[0].find_elements(By.CSS_SELECTOR, "thead th")
            ]
            seen["verdicts"] = [
                td.text for td in claims[0].find_elements(By.CSS_SELECTOR, "td.verdict")
            ]
        seen["sections"] = [
            s.get_attribute("id") for s in driver.find_elements(By.CSS_SELECTOR, "section")
        ]
        _wait(
            driver,
            lambda d: all(i.get_property("complete") for i in d.find_elements(By.TAG_NAME, "img")),
            f"{study}'s images",
        )
        seen["images"] = dict(driver.execute_script(DECODED))
        seen["parquet_links"] = [
            a.get_attribute("download") for a in driver.find_elements(By.CSS_SELECTOR, "a.parquet")
        ]
        return seen
    finally:
        driver.switch_to.default_content()


FIGURE_SHOWN = """
const result = results[arguments[0]];
if (result === undefined) return null;
return Array.from(document.images)
  .filter(i => i.src === result.data_uri && i.complete).map(i => i.naturalWidth);
"""


@pytest.fixture(scope="module")
def visit(report, browser):
    """Click through the report as a person would: each study under Results, its page, then
    each of its figures. Returns what was seen, per study, and every console message."""
    driver = browser
    names = yaml.safe_load((report / "config" / "config.yaml").read_text())["studies"]
    start = (report / "report.html").as_uri()
    driver.get(start)
    seen, console = {}, []
    for study in names:
        rows = _study_rows(driver, study, start)
        page = next(key for key in rows if key[0].endswith("study page"))
        _open_result(driver, study, start, page, _page_frame, f"{study}'s page")
        seen[study] = {"rows": sorted(rows), **_study_page(driver, study)}
        figures = {}
        for section, name in sorted(rows):
            if section.endswith("figure"):
                path = f"results/{study}/figures/{name}.png"
                widths = _open_result(
                    driver,
                    study,
                    start,
                    (section, name),
                    lambda d, path=path: d.execute_script(FIGURE_SHOWN, path),
                    f"figure {path}",
                )
                figures[name] = widths[0]
        seen[study]["figures"] = figures
        console += driver.get_log("browser")
        driver.get(start)  # back to the start
    console += driver.get_log("browser")
    return seen, console


def _claims(report, study) -> pd.DataFrame:
    return pd.read_parquet(report / "results" / study / "tables" / "claims.parquet")


def test_the_report_has_no_console_errors(visit):
    seen, console = visit
    assert len(seen) == 6  # the default config's studies, all visited
    errors = [m for m in console if m["level"] == "SEVERE"]
    assert not errors, errors


def test_each_study_page_shows_its_claims_with_verdicts_first_then_figures_then_tables(
    visit, report
):
    seen, _ = visit
    config = yaml.safe_load((report / "config" / "config.yaml").read_text())["studies"]
    studies.load()
    for study, page in seen.items():
        assert page["title"] == study
        # the report lists the page first, then the figures, then the parquet tables
        assert [section for section, _ in page["rows"]][0] == "1 study page", page["rows"]
        assert page["sections"][:3] == ["claims", "figures", "tables"], study
        assert "verdicts" in page, f"{study}: the claims table is not displayed"
        claims = _claims(report, study)
        verdict = "verdict" if "verdict" in claims else "result"
        assert page["claims_header"][0] == verdict, study
        assert page["verdicts"] == claims[verdict].tolist(), study
        assert set(page["verdicts"]) <= VERDICTS, study
        # the claims table, then each other table of the study kind, link their parquet files
        tables = studies.STUDIES.get(config[study]["kind"]).tables
        others = [f"{t}.parquet" for t in tables if t != "claims"]
        assert page["parquet_links"] == ["claims.parquet", *others], study


def test_every_figure_decodes_on_its_study_page_and_on_its_own(visit, report):
    seen, _ = visit
    for study, page in seen.items():
        expected = sorted(p.stem for p in (report / "results" / study / "figures").glob("*.png"))
        assert sorted(alt.removeprefix("figure ") for alt in page["images"]) == expected
        assert all(width > 0 for width in page["images"].values()), (study, page["images"])
        assert sorted(page["figures"]) == expected, study
        assert all(width > 0 for width in page["figures"].values()), (study, page["figures"])
