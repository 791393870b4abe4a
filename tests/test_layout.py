"""The package's layout: the README's table names every module where it lives, the stages in
their order, and the old module paths still import as the same modules."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import minfer

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minfer"


def readme_rows() -> dict[str, str]:
    """The Layout table's rows for minfer and its subpackages: path -> what."""
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(minfer/[\w/]*)` \| (.*) \|$", text, flags=re.M)
    return dict(rows)


def modules_in(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}


def test_the_readme_names_every_module_in_its_own_row():
    rows = readme_rows()
    folders = [PACKAGE] + [p for p in PACKAGE.iterdir() if (p / "__init__.py").exists() and p.name != "_weights"]
    assert {f"minfer/{p.relative_to(PACKAGE)}/".replace("/./", "/") for p in folders} == set(rows)
    for folder in folders:
        row = rows[f"minfer/{folder.relative_to(PACKAGE)}/".replace("/./", "/")]
        named = set(re.findall(r"`(\w+)`", row))
        expected = modules_in(folder) | (modules_in(folder / "kernels") if folder.name == "fast" else set())
        missing = expected - named  # (the fast row lists its kernels/ folder's modules too)
        assert not missing, f"{folder}: {sorted(missing)} not in the README's layout table"


def test_the_layout_is_one_table():
    """Markdown ends a table at the first line that is not a row: every row, from `minfer/` to
    `.ci/run`, must follow the header without a gap or a paragraph between."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| path | what |") : text.index("| `.ci/run` |")]
    assert all(line.startswith("|") for line in table.splitlines())


def test_the_stages_are_listed_in_the_order_their_docstrings_number_them():
    stages = {}
    for path in PACKAGE.glob("*.py"):
        doc = path.read_text().split('"""')[1] if path.read_text().startswith('"""') else ""
        found = re.match(r"Stage (\d+),", doc)
        if found:
            stages[int(found.group(1))] = path.stem
    assert sorted(stages) == list(range(1, len(stages) + 1)) and len(stages) >= 8
    row = readme_rows()["minfer/"]
    listed = [(name, int(n)) for name, n in re.findall(r"`(\w+)` \((\d+)", row)]
    assert listed == [(stages[n], n) for n in sorted(stages)]


def test_only_stages_and_public_faces_sit_at_the_top():
    top = modules_in(PACKAGE)
    tooling = {"calibrate", "counts", "profiler", "report", "bench", "whatif", "hardware", "loading", "fast"}
    assert not top & tooling, f"tooling at the top of minfer/: {sorted(top & tooling)}"


@pytest.mark.parametrize("old", sorted(minfer.MOVED))
def test_an_old_module_path_imports_the_same_module(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(minfer.MOVED[old])
    assert module.__name__ == minfer.MOVED[old] and module.__spec__.name == minfer.MOVED[old]
    assert getattr(minfer, old.split(".")[1]) is module  # minfer.counts, as an attribute


def test_modules_under_an_old_package_path_are_the_new_ones_too():
    from minfer.kernels import quant
    from minfer.kernels.matvec import linear

    import minfer.fast.kernels.matvec
    import minfer.fast.kernels.quant

    assert quant is minfer.fast.kernels.quant and linear is minfer.fast.kernels.matvec.linear


def test_an_unknown_attribute_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_module'"):
        minfer.not_a_module  # noqa: B018
