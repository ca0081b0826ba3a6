"""report.html in a real browser (Debian's chromium through chromedriver, headless): the page
renders without console errors, and the explorer shows, after the slider is moved or the frontier
clicked, exactly the numbers iaseg computed in Python. Skips where no browser is installed
(.ci/run installs one)."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from iaseg.metrics.html import explorer_data, markdown_blocks, render_page

CHROMIUM = os.environ.get("IASEG_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("IASEG_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not (Path(exe).is_file() or shutil.which(exe)):
            pytest.skip(f"no browser: {exe} not found (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1400", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # never downloads a driver
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A page whose explorer holds 21 offsets of random confusion matrices (5 classes, 2 groups)."""
    rng = np.random.default_rng(4)
    classes = ["road", "building", "car", "person", "sign"]
    groups = {"G1": ["road", "building"], "G2": ["car", "person", "sign"]}
    confusions = rng.integers(0, 400, (21, 5, 5))
    confusions[3, :, 4] = 0  # 'sign' never predicted at one offset: undefined precision, '-'
    frontier = {"classes": classes, "deltas": [round(-1 + 0.25 * i, 2) for i in range(21)], "base_offsets": [0] * 5,
                "sets": {"G2": {"classes": groups["G2"], "confusions": confusions}}}
    explorer = explorer_data(frontier, "G2", groups, "iaseg calibrate --checkpoint m.pt --offset G2={offset} --out r.json")
    path = tmp_path_factory.mktemp("page") / "report.html"
    blocks = markdown_blocks("## Per class (%)\n\n| Class | road |\n|:---|---:|\n| IoU | 12.5 |\n")
    path.write_text(render_page("Evaluation report", blocks, explorer=explorer))
    return path, explorer


def _numbers(driver):
    """{(kind, name, metric): (text, data-value)} of every explorer cell."""
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#explorer td[data-metric]')).map(function (td) {"
        " return [td.hasAttribute('data-group') ? 'groups' : 'classes',"
        " td.getAttribute('data-group') || td.getAttribute('data-class'), td.getAttribute('data-metric'),"
        " td.textContent, td.getAttribute('data-value')]; });")
    return {(k, n, m): (text, value) for k, n, m, text, value in cells}


def _check(driver, explorer, index):
    point = explorer["points"][index]
    assert driver.find_element("id", "offset-value").text == explorer["labels"][index]
    cells = _numbers(driver)
    assert len(cells) == 3 * (len(explorer["groups"]) + 1 + len(explorer["classes"]))
    for (kind, name, metric), (text, value) in cells.items():
        expected = point["mean"][metric] if name == "mean" else point[kind][name][metric]
        assert json.loads(value) == expected, (index, kind, name, metric)      # the very float, no rounding
        assert text == ("-" if expected is None else f"{100 * expected:.1f}"), (index, name, metric)
    command = driver.find_element("id", "rule-command").text
    assert command == f"iaseg calibrate --checkpoint m.pt --offset G2={explorer['labels'][index]} --out r.json"


def test_the_page_renders_and_the_slider_shows_pythons_numbers(browser, page):
    from selenium.webdriver.common.keys import Keys

    path, explorer = page
    browser.get(path.as_uri())
    assert browser.title == "Evaluation report"
    assert browser.find_element("css selector", "main table").is_displayed()
    _check(browser, explorer, explorer["start"])
    slider = browser.find_element("id", "offset")
    slider.click()                                   # a click on the track's middle moves the thumb there
    index = int(slider.get_attribute("value"))
    assert index == 10
    _check(browser, explorer, index)
    for key, steps, expected in ((Keys.END, 1, 20), (Keys.LEFT, 3, 17), (Keys.HOME, 1, 0), (Keys.RIGHT, 3, 3)):
        for _ in range(steps):
            slider.send_keys(key)                    # the keyboard moves it, as a user does
        assert int(slider.get_attribute("value")) == expected
        _check(browser, explorer, expected)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_a_click_on_the_frontier_picks_the_nearest_offset(browser, page):
    from selenium.webdriver.common.action_chains import ActionChains

    path, explorer = page
    browser.get(path.as_uri())
    svg = browser.find_element("id", "frontier")
    xs = [p["groups"]["G2"]["recall"] for p in explorer["points"]]
    ys = [p["mean"]["iou"] for p in explorer["points"]]
    target = int(np.argmax(xs))                      # the rightmost point: nothing else is nearer to it
    size = svg.size
    # the plot's coordinates (viewBox 360 x 240, margins as in explorer.js) -> offsets from the centre
    fx = 44 + (360 - 44 - 12) * (xs[target] - min(xs)) / (max(xs) - min(xs))
    fy = 240 - 34 - (240 - 12 - 34) * (ys[target] - min(ys)) / (max(ys) - min(ys))
    ActionChains(browser).move_to_element_with_offset(
        svg, int(fx * size["width"] / 360 - size["width"] / 2), int(fy * size["height"] / 240 - size["height"] / 2)
    ).click().perform()
    _check(browser, explorer, target)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
