"""Graded exercises: the student writes one of minfer's central functions into a stub, and one
command grades it against the library's own function, with a hint for each failed check.

    minfer exercises list           the exercises
    minfer exercises start 01       copy the stub of exercise 01 here
    minfer exercises check 01       grade it (exit status 0 when every check passes)
    minfer exercises solution 01    where the reference solution is (for teachers)

From Python: `grade("01", "ex01_attention.py")` returns one `CheckResult` per check.
The stubs are in `minfer/exercises/stubs/`, the reference solutions in
`minfer/exercises/solutions/`, the checks in `minfer/exercises/checks.py`.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import itertools
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minfer.errors import InvalidInputError
from minfer.exercises.checks import CHECKS, Check, CheckResult, run_checks

__all__ = ["EXERCISES", "Exercise", "CheckResult", "grade", "load_functions", "add_exercises_parser", "run_exercises"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Exercise:
    """One exercise: what to write, in which file, which lesson it goes with, how it is graded."""

    id: str  # "01" .. "09"
    title: str
    lesson: str  # the lesson it goes with
    functions: tuple[str, ...]  # what the student writes
    filename: str  # the stub's file name, also the default file `check` grades

    @property
    def stub(self) -> Path:
        """The untouched stub that `start` copies."""
        return HERE / "stubs" / self.filename

    @property
    def solution(self) -> Path:
        """The reference solution (for teachers; CI grades it and it must pass)."""
        return HERE / "solutions" / self.filename

    @property
    def task(self) -> str:
        """The stub's module docstring: the task, with the shapes."""
        return ast.get_docstring(ast.parse(self.stub.read_text(encoding="utf-8"))) or ""

    @property
    def checks(self) -> list[Check]:
        return CHECKS[self.id]


EXERCISES: dict[str, Exercise] = {
    e.id: e
    for e in [
        Exercise(
            "01",
            "softmax and causal attention",
            "03 attention and the causal mask",
            ("softmax", "causal_attention"),
            "ex01_attention.py",
        ),
        Exercise("02", "layer norm", "02 one forward pass", ("layer_norm",), "ex02_layer_norm.py"),
        Exercise(
            "03", "the KV cache", "05 the KV cache and decode", ("append_kv", "cached_attention"), "ex03_kv_cache.py"
        ),
        Exercise("04", "top-k and top-p filters", "06 sampling", ("top_k_filter", "top_p_filter"), "ex04_sampling.py"),
        Exercise(
            "05",
            "counting a decode step",
            "08 FLOPs vs bytes",
            ("decode_step_flops", "decode_step_bytes"),
            "ex05_counting.py",
        ),
        Exercise("06", "RoPE (rotate-half)", "13 from GPT-2 to Llama", ("apply_rope",), "ex06_rope.py"),
        Exercise(
            "07",
            "grouped-query decode attention",
            "13 from GPT-2 to Llama",
            ("grouped_decode_attention",),
            "ex07_gqa.py",
        ),
        Exercise(
            "08",
            "the block table (paged cache)",
            "14 paged attention and prefix caching",
            ("slot_of", "write_kv", "read_kv"),
            "ex08_block_table.py",
        ),
        Exercise(
            "09",
            "one scheduler step",
            "15 continuous batching",
            ("schedule_step",),
            "ex09_scheduler.py",
        ),
    ]
}


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise "01" (also accepts "1"), or an error listing the ids there are."""
    key = str(exercise_id).strip().zfill(2)
    if key not in EXERCISES:
        raise InvalidInputError(
            f"there is no exercise {exercise_id!r}; choose one of {', '.join(EXERCISES)} (see: minfer exercises list)"
        )
    return EXERCISES[key]


_module_ids = itertools.count()


def load_functions(exercise: Exercise, path: str | Path) -> dict[str, Callable]:
    """Import the student's file by path and return the functions the exercise asks for."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"no file {path}: copy the stub first (minfer exercises start {exercise.id}), "
            f"or name your file (minfer exercises check {exercise.id} path/to/{exercise.filename})"
        )
    name = f"minfer_exercise_{exercise.id}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)  # the student's own code, run at their request
    except Exception as e:
        where = f" (line {e.lineno})" if isinstance(e, SyntaxError) else ""
        raise InvalidInputError(
            f"{path} does not import: {type(e).__name__}: {e}{where}; fix it and check again"
        ) from None
    finally:
        sys.modules.pop(name, None)
    missing = [f for f in exercise.functions if not callable(getattr(module, f, None))]
    if missing:
        raise InvalidInputError(
            f"{path} does not define {', '.join(missing)}: exercise {exercise.id} asks for "
            f"{', '.join(exercise.functions)} (a fresh stub: minfer exercises start {exercise.id} --force)"
        )
    return {f: getattr(module, f) for f in exercise.functions}


def grade(exercise_id: str, path: str | Path) -> list[CheckResult]:
    """Run every check of an exercise on the student's file; one CheckResult per check.

    Example:
        >>> [r.passed for r in grade("02", "ex02_layer_norm.py")]
        [True, False]
    """
    exercise = get_exercise(exercise_id)
    return run_checks(exercise.checks, load_functions(exercise, path))


# ---- the command line: `minfer exercises ...` -------------------------------------------------


def add_exercises_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `exercises` (list, start, check, solution) to the CLI's subcommands."""
    ex = commands.add_parser("exercises", help="graded exercises: write a function, check it against minfer's")
    sub = ex.add_subparsers(dest="exercises_command", required=True)
    sub.add_parser("list", help="the exercises, with the lesson each goes with")
    start = sub.add_parser("start", help="copy an exercise's stub into this directory")
    start.add_argument("id", help="the exercise, e.g. 01")
    start.add_argument("--dir", default=".", help="where to copy it (default: the current directory)")
    start.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    check = sub.add_parser("check", help="grade your file; exit status 0 when every check passes")
    check.add_argument("id", help="the exercise, e.g. 01")
    check.add_argument("file", nargs="?", default=None, help="your file (default: the stub's name, here)")
    sol = sub.add_parser("solution", help="print the path of the reference solution (for teachers)")
    sol.add_argument("id", help="the exercise, e.g. 01")
    return ex


def run_exercises(args: argparse.Namespace) -> int:
    """Run `minfer exercises ...`; returns the exit status (check: 0 all pass, 1 otherwise)."""
    command = args.exercises_command
    if command == "list":
        for e in EXERCISES.values():
            print(f"{e.id}  {e.title:<30} write {', '.join(e.functions):<36} lesson {e.lesson}")
        print("start one with: minfer exercises start 01")
        return 0
    exercise = get_exercise(args.id)
    if command == "start":
        return _start(exercise, Path(args.dir), args.force)
    if command == "check":
        return _check(exercise, Path(args.file) if args.file else Path.cwd() / exercise.filename)
    if command == "solution":
        print(exercise.solution)
        return 0
    raise InvalidInputError(f"unknown exercises command {command!r}; choose list, start, check or solution")


def _start(exercise: Exercise, directory: Path, force: bool) -> int:
    target = directory / exercise.filename
    if target.exists() and not force:
        raise InvalidInputError(
            f"{target} already exists: edit it and run `minfer exercises check "
            f"{exercise.id}`, or pass --force to replace it with a fresh stub"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(exercise.stub, target)
    except OSError as e:
        raise InvalidInputError(f"cannot write {target}: {e.strerror or e}") from None
    print(
        f"wrote {target}: write {', '.join(exercise.functions)} in it, then run: "
        f"minfer exercises check {exercise.id}" + (f" {target}" if directory != Path(".") else "")
    )
    return 0


def _check(exercise: Exercise, path: Path) -> int:
    results = run_checks(exercise.checks, load_functions(exercise, path))
    for r in results:
        print(f"PASS {r.name}" if r.passed else f"FAIL {r.name}: {r.hint}")
    n_pass = sum(r.passed for r in results)
    if n_pass == len(results):
        print(f"exercise {exercise.id}: all {len(results)} checks pass")
        return 0
    print(f"exercise {exercise.id}: {n_pass} of {len(results)} checks pass")
    return 1
