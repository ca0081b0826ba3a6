"""metrics/html.py: Markdown blocks, the explorer's numbers (against a float64 numpy reference),
a self-contained page; and the page in a real browser (Debian's chromium through chromedriver,
headless): it renders without console errors, and the explorer shows, after the slider is moved
or the frontier clicked, exactly the numbers iaseg computed in Python. The browser tests skip
where no browser is installed (.ci/run installs one)."""
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from iaseg.metrics.html import explorer_data, markdown_blocks, render_page


def test_markdown_blocks_of_the_report_layouts(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 3), (255, 0, 0)).save(tmp_path / "fig.png")
    md = ("# Title\n\n- a: **1**\n- b: `x|y`\n\nSome text\ngoes on.\n\n| Group | G2 | |\n|:---|---:|---:|\n"
          "| Class | car | a \\| b |\n| IoU | **+1.0** | - |\n\n![the figure](fig.png)\n![gone](missing.png)\n")
    blocks = markdown_blocks(md, tmp_path)
    assert [b["kind"] for b in blocks] == ["h", "list", "p", "table", "figure"]
    assert blocks[0] == {"kind": "h", "level": 2, "spans": [{"kind": "text", "text": "Title"}]}
    assert blocks[1]["items"][0] == [{"kind": "text", "text": "a: "}, {"kind": "strong", "text": "1"}]
    assert blocks[2]["spans"] == [{"kind": "text", "text": "Some text goes on."}]
    table = blocks[3]
    assert table["align"] == ["left", "right", "right"]
    assert [c[0]["text"] if c else "" for c in table["header"]] == ["Group", "G2", ""]
    assert table["rows"][0][2] == [{"kind": "text", "text": "a | b"}]
    assert table["rows"][1][1] == [{"kind": "strong", "text": "+1.0"}]
    assert blocks[4]["src"].startswith("data:image/png;base64,") and blocks[4]["caption"] == "the figure"


def _reference(m, classes, groups):
    """float64 numpy per-class metrics, group and overall means over defined values."""
    m = np.asarray(m, dtype=np.float64)
    tp = np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = {"precision": tp / m.sum(0), "recall": tp / m.sum(1), "iou": tp / (m.sum(0) + m.sum(1) - tp)}
    out = {"mean": {k: np.nanmean(v) for k, v in per.items()}, "groups": {}}
    for g, members in groups.items():
        ids = [classes.index(c) for c in members]
        out["groups"][g] = {k: np.nanmean(v[ids]) if not np.isnan(v[ids]).all() else None for k, v in per.items()}
    out["classes"] = {c: {k: None if np.isnan(v[i]) else v[i] for k, v in per.items()} for i, c in enumerate(classes)}
    return out


def test_explorer_numbers_are_each_offsets_report():
    rng = np.random.default_rng(0)
    classes, groups = ["road", "car", "person"], {"G1": ["road"], "G2": ["car", "person"]}
    confusions = rng.integers(0, 50, (5, 3, 3))
    confusions[2, :, 2] = 0  # person never predicted at this offset: precision undefined
    frontier = {"classes": classes, "deltas": [-0.5, 0.0, 0.5, 1.0, 1.5], "base_offsets": [0, 0, 0],
                "sets": {"G2": {"classes": ["car", "person"], "confusions": confusions}}}
    data = explorer_data(frontier, "G2", groups, "iaseg calibrate --offset G2={offset}")
    assert data["start"] == 1 and data["labels"] == ["-0.5", "0", "0.5", "1", "1.5"]
    for m, point in zip(confusions, data["points"]):
        ref = _reference(m, classes, groups)
        for k in ("precision", "recall", "iou"):
            assert point["mean"][k] == pytest.approx(ref["mean"][k], abs=1e-12)
            for g in groups:
                assert point["groups"][g][k] == pytest.approx(ref["groups"][g][k], abs=1e-12)
            for c in classes:
                assert point["classes"][c][k] == (None if ref["classes"][c][k] is None
                                                  else pytest.approx(ref["classes"][c][k], abs=1e-12))
    assert data["points"][2]["classes"]["person"]["precision"] is None


def test_the_page_is_self_contained_and_escapes_text():
    frontier = {"classes": ["a", "b"], "deltas": [0.0, 1.0], "base_offsets": [0, 0],
                "sets": {"G2": {"classes": ["b"], "confusions": np.array([[[5, 1], [2, 3]], [[4, 2], [1, 4]]])}}}
    explorer = explorer_data(frontier, "G2", {"G1": ["a"], "G2": ["b"]}, "iaseg calibrate </script> {offset}")
    html = render_page("<b>T</b>", markdown_blocks("| x |\n|---:|\n| <i>1</i> |\n"), explorer=explorer)
    assert "<b>T</b>" not in html and "&lt;b&gt;T&lt;/b&gt;" in html and "&lt;i&gt;1&lt;/i&gt;" in html
    block = re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(block.replace("<\\/", "</"))["command"] == "iaseg calibrate </script> {offset}"
    assert not re.search(r'(src|href)="(https?:)?//', html)


# -- in a real browser ---------------------------------------------------------------------------

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
