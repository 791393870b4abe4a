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
    assert (
        main(["generate", "Once upon a time", "--max-new-tokens", "5", "--json", "--temperature", "0.7", "--seed", "3"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert 1 <= len(data["tokens"]) <= 5 and isinstance(data["text"], str)
    assert data["stats"]["new_tokens"] == len(data["tokens"])
    assert data["tokens"] == minfer.generate(minfer.load_model(), "Once upon a time", 5, temperature=0.7, seed=3).tokens


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "{tmp}/absent"], "no model directory"),  # a path no other process can have made
        (["--temperature", "-1"], "temperature"),
        (["--quantize", "int8"], "backend='numba'"),
        (["--max-new-tokens", "0"], "max_new_tokens"),
        (["--model", "tests/fixtures/tiny-gpt2"], "no tokenizer"),
    ],
)
def test_errors_are_one_line_and_exit_2(capsys, tmp_path, args, message):
    assert main(["generate", "Hi", *[a.format(tmp=tmp_path) for a in args]]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("minfer: error:") and message in err and err.count("\n") == 1


def test_console_script_runs(tmp_path):
    env = {**os.environ, "MINFER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "minfer.cli", "generate", "The", "--max-new-tokens", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("The")
    assert "finish: length" in proc.stderr


def test_sampling_flags_and_stop_string(capsys, default_model):
    args = [
        "generate",
        "And the king said",
        "--max-new-tokens",
        "30",
        "--temperature",
        "0.9",
        "--top-k",
        "40",
        "--top-p",
        "0.9",
        "--min-p",
        "0.02",
        "--repetition-penalty",
        "1.2",
        "--frequency-penalty",
        "0.1",
        "--presence-penalty",
        "0.1",
        "--seed",
        "4",
        "--stop",
        ",",
        "--json",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    params = minfer.SamplingParams(
        temperature=0.9,
        top_k=40,
        top_p=0.9,
        min_p=0.02,
        repetition_penalty=1.2,
        frequency_penalty=0.1,
        presence_penalty=0.1,
        seed=4,
    )
    want = minfer.generate(default_model, "And the king said", 30, params=params, stop_strings=[","])
    assert data["tokens"] == want.tokens and data["text"] == want.text and "," not in data["text"]
    assert data["stats"]["finish_reason"] == want.finish_reason


@pytest.mark.parametrize(
    "flag, value, name",
    [
        ("--top-p", "1.5", "top_p"),
        ("--top-k", "-1", "top_k"),
        ("--min-p", "1", "min_p"),
        ("--repetition-penalty", "0", "repetition_penalty"),
    ],
)
def test_bad_sampling_flag_is_one_line(capsys, flag, value, name):
    assert main(["generate", "Hi", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minfer: error:") and name in err and err.count("\n") == 1


def test_json_is_strict_json_with_a_single_token(capsys):
    assert main(["generate", "And", "--max-new-tokens", "1", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert data["stats"]["decode_tokens_per_s"] is None and data["stats"]["new_tokens"] == 1
