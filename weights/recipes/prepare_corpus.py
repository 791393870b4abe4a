"""Prepare the classroom corpus: the King James Bible as plain text, split into train and held-out.

Source: Debian's `bible-kjv` package (`apt-get install bible-kjv`, version recorded in the output),
whose `bible` command prints the Authorized (King James) Version. The exact extraction command is

    bible -l100000 Gen1:1-Rev22:21

Without `-f`, `bible` pretty-prints: a "Genesis 1" heading line whenever the book or chapter
changes, then each verse indented and numbered ("  1 In the beginning God created..."), with blank
lines around the headings. `-l100000` sets the wrap width far beyond the longest verse (528
characters), so every verse stays on one line. (`bible -f` prints the same verse texts prefixed
with abbreviations such as "SSol3:1"; we use the pretty form because its headings give the full
book names.) The parser rejects any line that is neither a heading, a verse nor blank, and checks
the totals (66 books, 1,189 chapters, 31,102 verses), so wrapped or changed output fails loudly.

Training text, one chapter after another, a blank line between chapters:

    Genesis 1
    In the beginning God created the heaven and the earth.
    And the earth was without form, and void; ...

    Genesis 2
    ...

Why this shape: one verse a line keeps the Bible's own unit of sense (a verse is about a sentence)
and lets the model learn where verses end; verse numbers are dropped because they are layout, not
text; the "Book N" heading tells the model where it is and lets a student prompt with "Psalms 23\n".
Whitespace inside a verse is collapsed to single spaces (the source has two double spaces and one
trailing space).

Held-out: every 20th chapter in canonical order (chapter index % 20 == 19, counting from 0 at
Genesis 1), i.e. 59 of the 1,189 chapters, spread over the whole book rather than one block of it.

Usage (stdlib only, deterministic):
    python weights/recipes/prepare_corpus.py [--out data/kjv]
It writes train.txt and heldout.txt (UTF-8) and prints their sizes and sha256 for the model card.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIBLE_COMMAND = ["bible", "-l100000", "Gen1:1-Rev22:21"]
HELDOUT_EVERY = 20  # chapter i is held out when i % HELDOUT_EVERY == HELDOUT_EVERY - 1
N_BOOKS, N_CHAPTERS, N_VERSES = 66, 1189, 31102  # the KJV's totals, to catch a changed source

HEADING = re.compile(r"^(?P<book>[1-3]? ?[A-Z][A-Za-z ]*) (?P<chapter>\d+)$")  # "Song of Solomon 2"
VERSE = re.compile(r"^  (?P<verse>\d+) (?P<text>.*)$")  # "  16 For God so loved the world, ..."


@dataclass
class Chapter:
    book: str  # full name, e.g. "1 Samuel"
    number: int  # chapter number within the book, from 1
    verses: list[str]  # verse texts in order, references stripped

    def as_text(self) -> str:
        """The chapter as training text: a "Book N" heading line, then one verse per line."""
        return "\n".join([f"{self.book} {self.number}", *self.verses])


def run_bible() -> str:
    """Run the extraction command and return its output; explain how to get `bible` if missing."""
    if shutil.which("bible") is None:
        sys.exit("the `bible` command is missing: install it with `apt-get install bible-kjv`")
    result = subprocess.run(BIBLE_COMMAND, capture_output=True, text=True, encoding="utf-8", check=True)
    return result.stdout


def parse_chapters(output: str) -> list[Chapter]:
    """Pretty-printed `bible` output -> chapters in canonical order, verse numbers removed."""
    chapters: list[Chapter] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        if m := HEADING.match(line):
            chapters.append(Chapter(m["book"], int(m["chapter"]), []))
        elif (m := VERSE.match(line)) and chapters:
            chapters[-1].verses.append(" ".join(m["text"].split()))
        else:
            raise ValueError(f"unexpected line in `bible` output (wrapped?): {line[:80]!r}")
    return chapters


def check_totals(chapters: list[Chapter]) -> None:
    """Fail if the source is not the whole KJV (a different package version or a parsing slip)."""
    n_books = len({c.book for c in chapters})
    n_verses = sum(len(c.verses) for c in chapters)
    if (n_books, len(chapters), n_verses) != (N_BOOKS, N_CHAPTERS, N_VERSES):
        raise ValueError(
            f"expected {N_BOOKS} books, {N_CHAPTERS} chapters, {N_VERSES} verses; got {n_books}, "
            f"{len(chapters)}, {n_verses}: check `{' '.join(BIBLE_COMMAND)}` by hand"
        )


def split_heldout(chapters: list[Chapter]) -> tuple[list[Chapter], list[Chapter]]:
    """(train, held-out): every HELDOUT_EVERY-th chapter in canonical order is held out."""
    is_heldout = [i % HELDOUT_EVERY == HELDOUT_EVERY - 1 for i in range(len(chapters))]
    train = [c for c, h in zip(chapters, is_heldout) if not h]
    heldout = [c for c, h in zip(chapters, is_heldout) if h]
    return train, heldout


def as_corpus(chapters: list[Chapter]) -> str:
    """Chapters separated by one blank line, the file ending in a newline."""
    return "\n\n".join(c.as_text() for c in chapters) + "\n"


def package_version() -> str:
    """The installed bible-kjv package version (for the model card), or 'unknown'."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "bible-kjv"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_and_describe(path: Path, text: str, n_chapters: int) -> None:
    """Write text as UTF-8 (newlines untranslated) and print its size and sha256."""
    data = text.encode("utf-8")
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    print(f"{path}: {n_chapters} chapters, {len(data):,} bytes, {len(text):,} chars, sha256 {sha}")


def main() -> None:
    p = argparse.ArgumentParser(description="Extract the KJV Bible into train/held-out text.")
    p.add_argument("--out", type=Path, default=ROOT / "data" / "kjv")
    args = p.parse_args()

    output = run_bible()
    chapters = parse_chapters(output)
    check_totals(chapters)
    train, heldout = split_heldout(chapters)
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"source: bible-kjv {package_version()}, `{' '.join(BIBLE_COMMAND)}`, "
        f"sha256 {hashlib.sha256(output.encode('utf-8')).hexdigest()}"
    )
    write_and_describe(args.out / "train.txt", as_corpus(train), len(train))
    write_and_describe(args.out / "heldout.txt", as_corpus(heldout), len(heldout))


if __name__ == "__main__":
    main()
