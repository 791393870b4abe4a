"""Load the built documentation site in headless Chromium and check that it renders.

    python .ci/check_site.py SITE_DIR [--screenshots DIR]

First, without a browser: every internal link (href and src) of every page points to a file the
site has, including the links inside the rendered lesson notebooks, which `mkdocs build
--strict` does not check. Then it serves SITE_DIR on localhost, opens the home page and every
lesson page in Debian's `chromium` (driven by Selenium through the system's `chromedriver`, so
nothing is downloaded), and checks on each: the page title, at least one figure that loaded (an
<img> with a natural width, or an inline SVG), a code block, and no errors in the browser
console. `--screenshots DIR` also saves a full-width PNG of each page. Exits 1 with one line per
problem, else prints what it saw.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# pages that must show a figure, and a word each one's title must contain; every other lesson
# page is checked for its title, a code block and a clean console (lesson 01 draws no figure)
WITH_FIGURES = {"index.html": "minfer", "lessons/09_roofline/index.html": "roofline"}
FIGURE_JS = (
    "return Array.from(document.querySelectorAll('article img'))"
    ".filter(i => i.complete && i.naturalWidth > 0).length"
    " + document.querySelectorAll('article svg.matplotlib, article .jp-RenderedImage img').length;"
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would bury the result
        pass


class Links(html.parser.HTMLParser):
    """The href and src values of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


def broken_links(site: Path) -> list[str]:
    """Internal links, on every page of the built site, to files the site does not have."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        parser = Links()
        parser.feed(page.read_text(errors="replace"))
        for link in parser.found:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:  # another site, or an anchor on this page
                continue
            root = site if parts.path.startswith("/") else page.parent  # 404.html links from the root
            target = (root / unquote(parts.path).lstrip("/")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{page.relative_to(site)}: broken link {link!r}")
    return problems


def pages(site: Path) -> dict[str, str]:
    """The home page and every lesson page -> a word each title must contain."""
    lessons = sorted(p.relative_to(site).as_posix() for p in site.glob("lessons/*/index.html"))
    return {**{p: "minfer" for p in lessons}, **WITH_FIGURES}


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


def check_page(driver: webdriver.Chrome, base: str, path: str, title_word: str, shot: Path | None) -> list[str]:
    """Problems on one page (empty if it rendered); saves a screenshot to `shot` if given."""
    url = base + path
    driver.get(url)
    problems = []
    if title_word.lower() not in driver.title.lower():
        problems.append(f"{url}: title {driver.title!r} lacks {title_word!r}")
    figures = driver.execute_script(FIGURE_JS)
    if not figures and path in WITH_FIGURES:
        problems.append(f"{url}: no figure rendered")
    code = len(driver.find_elements("css selector", "article pre"))  # markdown and notebook code cells alike
    if not code:
        problems.append(f"{url}: no code block")
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    problems += [f"{url}: console error: {m}" for m in errors]
    print(f"{url}: title {driver.title!r}, {figures} figure(s), {code} code block(s), {len(errors)} console errors")
    if shot is not None:
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(height, 6000))
        driver.save_screenshot(str(shot))
        driver.set_window_size(1280, 900)
    return problems


def screenshot_path(shots: Path | None, path: str) -> Path | None:
    """Where the screenshot of page `path` goes ("lessons/03_attention/index.html" -> 03_attention.png)."""
    if shots is None:
        return None
    shots.mkdir(parents=True, exist_ok=True)
    return shots / f"{Path(path).parent.name or 'home'}.png"


def main(site: Path, shots: Path | None) -> int:
    problems = broken_links(site)
    print(f"links: {len(problems)} broken")
    server = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    driver = browser()
    driver.set_window_size(1280, 900)
    try:
        for path, word in pages(site).items():
            problems += check_page(driver, base, path, word, screenshot_path(shots, path))
    finally:
        driver.quit()
        server.shutdown()
    for p in problems:
        print(f"check_site: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("site", type=Path, help="the directory mkdocs built")
    cli.add_argument("--screenshots", type=Path, help="save a PNG of each page checked here")
    args = cli.parse_args()
    sys.exit(main(args.site, args.screenshots))
