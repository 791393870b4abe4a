"""Load the built documentation site in headless Chromium and check that it renders.

    python .ci/check_site.py SITE_DIR

Serves SITE_DIR on localhost, opens the home page and one lesson page in Debian's `chromium`
(driven by Selenium through the system's `chromedriver`, so nothing is downloaded), and checks
on each: the page title, at least one figure that loaded (an <img> with a natural width, or an
inline SVG), a code block, and no errors in the browser console. Exits 1 with one line per
problem, else prints what it saw.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGES = {  # path -> words the title must contain
    "index.html": "minfer",
    "lessons/09_roofline/index.html": "roofline",
}
FIGURE_JS = ("return Array.from(document.querySelectorAll('article img'))"
             ".filter(i => i.complete && i.naturalWidth > 0).length"
             " + document.querySelectorAll('article svg.matplotlib, article .jp-RenderedImage img').length;")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would bury the result
        pass


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def check_page(driver: webdriver.Chrome, url: str, title_word: str) -> list[str]:
    """Problems on one page (empty if it rendered)."""
    driver.get(url)
    problems = []
    if title_word.lower() not in driver.title.lower():
        problems.append(f"{url}: title {driver.title!r} lacks {title_word!r}")
    figures = driver.execute_script(FIGURE_JS)
    if not figures:
        problems.append(f"{url}: no figure rendered")
    code = len(driver.find_elements("css selector", "article pre"))  # markdown and notebook code cells alike
    if not code:
        problems.append(f"{url}: no code block")
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    problems += [f"{url}: console error: {m}" for m in errors]
    print(f"{url}: title {driver.title!r}, {figures} figure(s), {code} code block(s), {len(errors)} console errors")
    return problems


def main(site: str) -> int:
    server = serve(Path(site))
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    driver = browser()
    try:
        problems = [p for path, word in PAGES.items() for p in check_page(driver, base + path, word)]
    finally:
        driver.quit()
        server.shutdown()
    for p in problems:
        print(f"check_site: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
