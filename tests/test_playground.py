"""The playground page of `minfer serve` in a real browser (Debian's headless chromium through
Selenium, as .ci/check_site.py drives it): type a prompt, click Generate, and watch the answer
stream in while the engine panels leave their idle state."""

from __future__ import annotations

import shutil
import time

import pytest
from server_helpers import running

import minfer

pytest.importorskip("selenium", reason="selenium drives the browser (pip install -e '.[test]')")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
NEW_TOKENS = 200  # a few seconds of decoding on the NumPy backend: time to watch the panels move
FINISH = {"stop": "stop", "stop_string": "stop", "length": "length", "context": "length"}  # minfer's -> OpenAI's
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run does)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 1000)
    yield driver
    driver.quit()


def wait_for(condition, seconds: float = 30, what: str = "the page"):
    """Poll `condition()` until it is truthy; its value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def test_the_answer_streams_in_and_the_panels_follow_the_engine(browser):
    with running("--model", "classroom", "--max-batch", "4") as server:
        browser.get(server.url + "/")

        def text(element_id: str) -> str:
            return browser.find_element(By.ID, element_id).text

        def cells(state: str) -> int:  # blocks shown in this state: used, cached or free
            return len(browser.find_elements(By.CSS_SELECTOR, f"#block-map .cell.{state}"))

        wait_for(lambda: "classroom" in text("model-line"), what="the model's name")
        total = int(text("blocks-total"))
        assert total > 0 and cells("free") == total and text("batch-size") == "0"  # idle: every block free

        prompt = browser.find_element(By.ID, "prompt")
        prompt.clear()
        prompt.send_keys("In the beginning")
        max_tokens = browser.find_element(By.ID, "max-tokens")
        max_tokens.clear()
        max_tokens.send_keys(str(NEW_TOKENS))
        browser.find_element(By.ID, "temperature").clear()
        browser.find_element(By.ID, "temperature").send_keys("0")
        browser.find_element(By.ID, "generate").click()

        lengths = set()  # the answer's lengths seen while it streams: several, if it arrives piece by piece

        def streaming() -> bool:
            lengths.add(len(text("output-text")))
            return len(lengths) >= 3

        wait_for(streaming, what="text streaming in")
        wait_for(lambda: cells("used") > 0, what="a used block in the block map")
        wait_for(lambda: text("batch-size") == "1", what="a batch of one")
        wait_for(lambda: float(text("tokens-per-second")) > 0, what="tokens per second")
        assert text("step-flops") != "0" and text("step-bytes") != "0"

        status = wait_for(lambda: "finished" in text("status") and text("status"), 60, "the end of the answer")
        want = minfer.generate(minfer.load_model("classroom"), "In the beginning", NEW_TOKENS)  # greedy, as asked
        assert f"finished: {FINISH[want.finish_reason]}" in status and f"{len(want.tokens)} new tokens" in status
        assert browser.find_element(By.ID, "output-text").get_attribute("textContent") == want.text
        wait_for(lambda: cells("used") == 0, what="the blocks freed")
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
