"""The graded exercises: every reference solution passes, every untouched stub fails, planted
mistakes get the hint that names them, and `minfer exercises` list/start/check/solution work."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from minfer.errors import InvalidInputError
from minfer.exercises import EXERCISES, add_exercises_parser, grade, run_exercises


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="minfer")
    add_exercises_parser(parser.add_subparsers(dest="command", required=True))
    return run_exercises(parser.parse_args(argv))


def test_registry_has_nine_exercises_with_stub_solution_and_task():
    assert list(EXERCISES) == ["01", "02", "03", "04", "05", "06", "07", "08", "09"]
    for e in EXERCISES.values():
        assert e.stub.is_file() and e.solution.is_file() and e.stub.name == e.solution.name
        assert len(e.task) > 200 and f"check {e.id}" in e.task  # the task, and how to grade it
        assert e.checks


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_reference_solution_passes_every_check(exercise_id):
    results = grade(exercise_id, EXERCISES[exercise_id].solution)
    assert [r for r in results if not r.passed] == []
    assert len(results) >= 2


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_untouched_stub_fails_every_check_with_not_written_yet(exercise_id):
    results = grade(exercise_id, EXERCISES[exercise_id].stub)
    assert not any(r.passed for r in results)
    assert all("not written yet" in r.hint for r in results)


def planted(tmp_path: Path, exercise_id: str, *edits: tuple[str, str]) -> Path:
    """The reference solution with `old` replaced by `new` for each edit: a planted mistake."""
    source = EXERCISES[exercise_id].solution.read_text()
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    path = tmp_path / f"planted_{exercise_id}.py"
    path.write_text(source)
    return path


def hints(exercise_id: str, path: Path) -> list[str]:
    return [r.hint for r in grade(exercise_id, path) if not r.passed]


MISTAKES = {
    "attention without the mask": (
        "01",
        [("scores = np.where(future, -np.inf, scores)", "scores = scores")],
        "causal mask is missing",
    ),
    "mask aligned to the first positions": ("01", [("np.arange(n_k - n_q, n_k)", "np.arange(n_q)")], "LAST n_q"),
    "scores not scaled": ("01", [("/ math.sqrt(d_head)", "")], "divide q k^T by sqrt(d_head)"),
    "unstable softmax": ("01", [("np.exp(x - x.max(axis=-1, keepdims=True))", "np.exp(x)")], "subtract the row max"),
    "softmax over every number": ("01", [("e.sum(axis=-1, keepdims=True)", "e.sum()")], "over the whole array"),
    "softmax not normalised": ("01", [("return e / e.sum(axis=-1, keepdims=True)", "return e")], "do not sum to 1"),
    "wrong output shape": (
        "01",
        [("return softmax(scores) @ v", "return (softmax(scores) @ v).transpose(0, 2, 1)")],
        "expected shape [1, 4, 8], got [1, 8, 4]",
    ),
    "unbiased variance": (
        "02",
        [("((x - mean) ** 2).mean(axis=-1, keepdims=True)", "x.var(axis=-1, ddof=1, keepdims=True)")],
        "divide by n_embd, not n_embd - 1",
    ),
    "eps outside the sqrt": ("02", [("np.sqrt(var + eps)", "(np.sqrt(var) + eps)")], "inside the sqrt"),
    "eps ignored": ("02", [("np.sqrt(var + eps)", "np.sqrt(var + 1e-5)")], "the eps argument is ignored"),
    "kv cache written at length + 1": ("03", [("[:, length:end]", "[:, length + 1:end + 1]")], "wrote at length + 1?"),
    "kv cache not written in place": (
        "03",
        [("    end = length", "    k_cache, v_cache = k_cache.copy(), v_cache.copy()\n    end = length")],
        "in place",
    ),
    "kv cache: only the values written": (
        "03",
        [("    end = length", "    k_cache = k_cache.copy()\n    end = length")],
        "only the values were written",
    ),
    "kv cache wrong length returned": ("03", [("return end", "return end - 1")], "return the new length"),
    "cached attention over length + 1": (
        "03",
        [
            ("k_cache[:, :length], v_cache[:, :length]", "k_cache[:, :length + 1], v_cache[:, :length + 1]"),
            ("np.arange(length)[None, :]", "np.arange(length + 1)[None, :]"),
            ("np.arange(length - n_new, length)", "np.arange(length + 1 - n_new, length + 1)"),
        ],
        "attended over length + 1 positions",
    ),
    "top-k drops ties": (
        "04",
        [("logits >= kth", "np.isin(np.arange(len(logits)), np.argsort(logits)[-k:])")],
        "tied with the k-th largest",
    ),
    "top-k removes to 0": (
        "04",
        [("np.where(logits >= kth, logits, -np.inf)", "np.where(logits >= kth, logits, 0.0)")],
        "set them to -inf",
    ),
    "top-p one token too few": (
        "04",
        [("np.cumsum(probs[order]) <= 1 - p", "np.cumsum(probs[order]) - probs[order] < 1 - p")],
        "one token too few",
    ),
    "top-p writes into its input": (
        "04",
        [("return np.where(remove, -np.inf, logits)", "logits[remove] = -np.inf\n    return logits")],
        "modified its input",
    ),
    "flops without the LM head": (
        "05",
        [("matmuls + attention) + lm_head", "matmuls + attention)")],
        "LM head is missing",
    ),
    "a multiply-add as one FLOP": (
        "05",
        [
            (
                "return n_layer * (matmuls + attention) + lm_head",
                "return (n_layer * (matmuls + attention) + lm_head) // 2",
            )
        ],
        "a multiply-add is 2 FLOPs",
    ),
    "bytes without the KV cache": (
        "05",
        [("(weights + kv_cache) * size", "weights * size")],
        "KV cache read is missing",
    ),
    "numbers, not bytes": ("05", [("n_past + 1, 4", "n_past + 1, 1")], "4 bytes a number"),
    "an exception": (
        "05",
        [('"""FLOPs of one GPT-2 decode step after n_past cached tokens (main terms)."""', 'raise ValueError("oops")')],
        "raised ValueError: oops",
    ),
    "RoPE on interleaved pairs": (
        "06",
        [
            ("x1, x2 = x[..., :half], x[..., half:]", "x1, x2 = x[..., 0::2], x[..., 1::2]"),
            ("rotated = np.concatenate([-x2, x1], axis=-1)", "rotated = np.stack([-x2, x1], axis=-1).reshape(x.shape)"),
            ("np.concatenate([np.cos(angles), np.cos(angles)], axis=-1)", "np.repeat(np.cos(angles), 2, axis=-1)"),
            ("np.concatenate([np.sin(angles), np.sin(angles)], axis=-1)", "np.repeat(np.sin(angles), 2, axis=-1)"),
        ],
        "rotated neighbouring pairs (0, 1), (2, 3)",
    ),
    "RoPE turned the wrong way": ("06", [("[-x2, x1]", "[x2, -x1]")], "rotated the wrong way"),
    "RoPE positions off by one": (
        "06",
        [("np.asarray(positions)[:, None]", "(np.asarray(positions) + 1)[:, None]")],
        "off by one (positions + 1)",
    ),
    "RoPE positions ignored": (
        "06",
        [("np.asarray(positions)[:, None]", "np.arange(x.shape[1])[:, None]")],
        "instead of `positions`",
    ),
    "RoPE without the second half of cos and sin": (
        "06",
        [
            ("[np.cos(angles), np.cos(angles)]", "[np.cos(angles), np.ones_like(angles)]"),
            ("[np.sin(angles), np.sin(angles)]", "[np.sin(angles), np.zeros_like(angles)]"),
        ],
        "the second half is not rotated",
    ),
    "RoPE theta ignored": ("06", [("1.0 / theta **", "1.0 / 10000.0 **")], "theta argument is ignored"),
    "RoPE angles in float32": (
        "06",
        [("(positions)[:, None] * inv_freq", "(positions, np.float32)[:, None] * inv_freq.astype(np.float32)")],
        "lost precision",
    ),
    "GQA head h reads KV head h % n_kv_head": (
        "07",
        [
            (
                "q.reshape(n_kv_head, n_head // n_kv_head, d_head)",
                "q.reshape(-1, n_kv_head, d_head).transpose(1, 0, 2)",
            ),
            ("return out.reshape(n_head, d_head)", "return out.transpose(1, 0, 2).reshape(n_head, d_head)"),
        ],
        "h % n_kv_head",
    ),
    "GQA scores not scaled": ("07", [("/ math.sqrt(d_head)", "")], "not scaled: divide q . k by sqrt(d_head)"),
    "GQA over the whole buffer": (
        "07",
        [("k_cache[:, :length], v_cache[:, :length]", "k_cache, v_cache")],
        "attended over the whole buffer",
    ),
    "GQA over length + 1": (
        "07",
        [("k_cache[:, :length], v_cache[:, :length]", "k_cache[:, : length + 1], v_cache[:, : length + 1]")],
        "attended over length + 1 positions",
    ),
    "slot_of without the table": (
        "08",
        [("return int(table[position // block_size]), position % block_size", "return position // block_size, 0")],
        "returned the logical block",
    ),
    "slot_of offset and block swapped": (
        "08",
        [
            (
                "return int(table[position // block_size]), position % block_size",
                "return position % block_size, int(table[position // block_size])",
            )
        ],
        "return (block, offset)",
    ),
    "write_kv indexes the heads with the offset": (
        "08",
        [
            ("k_pool[block, :, offset] = k", "k_pool[block, offset] = k"),
            ("v_pool[block, :, offset] = v", "v_pool[block, offset] = v"),
        ],
        "the offset indexes axis 2",
    ),
    "write_kv into a copy": (
        "08",
        [
            (
                "    block, offset = slot_of(",
                "    k_pool, v_pool = k_pool.copy(), v_pool.copy()\n    block, offset = slot_of(",
            )
        ],
        "the pools are unchanged",
    ),
    "read_kv ignores the table": (
        "08",
        [("blocks = pool[table[:used]]", "blocks = pool[:used]")],
        "read blocks 0, 1, 2",
    ),
    "read_kv keeps the unfilled tail": (
        "08",
        [("return keys[:, :n_keys]", "return keys")],
        "expected shape [3, 1, 5], got [3, 4, 5]",
    ),
    "read_kv without moving the heads": (
        "08",
        [("blocks.transpose(1, 0, 2, 3).reshape(", "blocks.reshape(")],
        "without moving the heads first",
    ),
    "scheduler preempts the oldest": ("09", [("preempt(running[-1])", "preempt(running[0])")], "preempted the OLDEST"),
    "scheduler budget ignores decodes": (
        "09",
        [("budget = max_step_tokens - len(plan.decodes)", "budget = max_step_tokens")],
        "max_step_tokens - len(decodes)",
    ),
    "scheduler sends the preempted to the back": (
        "09",
        [("queue.appendleft(s)", "queue.append(s)")],
        "FRONT of the waiting queue",
    ),
    "scheduler keeps a preempted cache": (
        "09",
        [("free, s.n_blocks, s.n_cached = free + s.n_blocks, 0, 0", "free, s.n_blocks = free + s.n_blocks, 0")],
        "loses its cache",
    ),
    "scheduler ignores max_batch": ("09", [(" and len(running) < max_batch", "")], "fewer than max_batch"),
    "scheduler rounds blocks down": (
        "09",
        [("-(-n_positions // block_size)", "n_positions // block_size")],
        "ceil(p / block_size)",
    ),
    "scheduler changes its arguments": (
        "09",
        [("running = [replace(s) for s in running]", "running = list(running)")],
        "changed its arguments",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_planted_mistake_gets_its_hint(tmp_path, mistake):
    exercise_id, edits, expected = MISTAKES[mistake]
    failed = hints(exercise_id, planted(tmp_path, exercise_id, *edits))
    assert failed, f"{mistake}: every check passed"
    assert any(expected in h for h in failed), failed


def test_missing_function_and_broken_file_are_clear_errors(tmp_path):
    path = tmp_path / "ex01_attention.py"
    path.write_text("import numpy as np\n\ndef softmax(x):\n    return x\n")
    with pytest.raises(InvalidInputError, match="does not define causal_attention"):
        grade("01", path)
    path.write_text("def softmax(x)\n    return x\n")
    with pytest.raises(InvalidInputError, match="does not import: SyntaxError"):
        grade("01", path)
    with pytest.raises(InvalidInputError, match="minfer exercises start 02"):
        grade("02", tmp_path / "nothing.py")


def test_cli_list_prints_the_nine_exercises(capsys):
    assert run(["exercises", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line[:2] for line in lines[:9]] == ["01", "02", "03", "04", "05", "06", "07", "08", "09"]
    assert "causal_attention" in lines[0] and "lesson 08" in lines[4]
    assert "apply_rope" in lines[5] and "grouped_decode_attention" in lines[6] and "lesson 13" in lines[6]
    assert "slot_of, write_kv, read_kv" in lines[7] and "lesson 14" in lines[7]
    assert "schedule_step" in lines[8] and "lesson 15" in lines[8]


def test_cli_start_copies_the_stub_and_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run(["exercises", "start", "01"]) == 0
    copied = tmp_path / "ex01_attention.py"
    assert copied.read_text() == EXERCISES["01"].stub.read_text()
    copied.write_text("# my work")
    with pytest.raises(InvalidInputError, match="already exists.*--force"):
        run(["exercises", "start", "01"])
    assert copied.read_text() == "# my work"
    assert run(["exercises", "start", "1", "--force"]) == 0
    assert copied.read_text() == EXERCISES["01"].stub.read_text()
    assert run(["exercises", "start", "03", "--dir", "work"]) == 0
    assert (tmp_path / "work" / "ex03_kv_cache.py").is_file()


def test_cli_check_exits_0_on_a_solution_and_1_on_a_stub(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ex02_layer_norm.py").write_text(EXERCISES["02"].solution.read_text())
    assert run(["exercises", "check", "02"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS layer_norm") and out[-1] == "exercise 02: all 2 checks pass"
    run(["exercises", "start", "04"])
    capsys.readouterr()
    assert run(["exercises", "check", "04"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL top_k_filter") and "not written yet" in out[0]
    assert out[-1] == "exercise 04: 0 of 4 checks pass"
    assert run(["exercises", "check", "05", str(EXERCISES["05"].solution)]) == 0


def test_cli_solution_prints_the_path(capsys):
    assert run(["exercises", "solution", "03"]) == 0
    assert Path(capsys.readouterr().out.strip()) == EXERCISES["03"].solution


def test_cli_unknown_id_and_missing_file_raise_invalid_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="no exercise '99'.*01, 02, 03, 04, 05"):
        run(["exercises", "check", "99"])
    with pytest.raises(InvalidInputError, match="no file .*ex01_attention.py.*exercises start 01"):
        run(["exercises", "check", "01"])


def test_the_scheduler_check_reads_the_engine_and_its_rules_agree():
    """Exercise 09 grades against minfer's Engine: the hand-worked plans are the Engine's, and
    the rules the hints are built from (`_model_plan`) decide as the Engine does, on states that
    preempt, re-admit, chunk and fill the batch."""
    from minfer.exercises.checks import _HAND_CASES, _engine_plan, _model_plan, _scheduler_scenarios

    for what, scenario, plan in _HAND_CASES:
        assert _engine_plan(scenario) == plan, what
    scenarios = _scheduler_scenarios(51, 150, tight=True) + _scheduler_scenarios(52, 150, tight=False)
    plans = [_engine_plan(s) for s in scenarios]
    assert [_model_plan(s) for s in scenarios] == plans
    readmitted = [p for p in plans if set(p[2]) & set(p[3])]
    assert sum(bool(p[2]) for p in plans) > 50 and readmitted and sum(bool(p[3]) for p in plans) > 50
