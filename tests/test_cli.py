"""The command line: streaming, the report, --json, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import minfer
from minfer.cli import main


def test_generate_streams_the_same_text_as_the_api(capsys, default_model):
    assert main(["generate", "And the king said", "--max-new-tokens", "12"]) == 0
    out, err = capsys.readouterr()
    want = minfer.generate(default_model, "And the king said", 12)
    assert out == "And the king said" + want.text + "\n"
    n_prompt = len(default_model.tokenizer.encode("And the king said"))
    assert f"prefill {n_prompt} tok" in err and "decode" in err and "TTFT" in err


def test_json_output(capsys):
    assert main(["generate", "Once upon a time", "--max-new-tokens", "5", "--json",
                 "--temperature", "0.7", "--seed", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 1 <= len(data["tokens"]) <= 5 and isinstance(data["text"], str)
    assert data["stats"]["new_tokens"] == len(data["tokens"])
    assert data["tokens"] == minfer.generate(minfer.load_model(), "Once upon a time", 5, temperature=0.7, seed=3).tokens


@pytest.mark.parametrize("args, message", [
    (["--model", "/nonexistent/dir"], "no model directory"),
    (["--temperature", "-1"], "temperature"),
    (["--backend", "numba"], "numba"),
    (["--max-new-tokens", "0"], "max_new_tokens"),
    (["--model", "tests/fixtures/tiny-gpt2"], "no tokenizer"),
])
def test_errors_are_one_line_and_exit_2(capsys, args, message):
    assert main(["generate", "Hi", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("minfer: error:") and message in err and err.count("\n") == 1


def test_console_script_runs(tmp_path):
    env = {**os.environ, "MINFER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "minfer.cli", "generate", "The", "--max-new-tokens", "3"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("The")
    assert "finish: length" in proc.stderr
