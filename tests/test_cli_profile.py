"""`minfer profile`, `minfer whatif` and `minfer calibrate` on the command line (lessons 08 and 12),
for GPT-2 and the Llama family."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from conftest import FIXTURES

from minfer.cli import main
from minfer.perf.calibrate import Ceilings, ceilings_path, load_ceilings, save_ceilings


@pytest.fixture
def cached_ceilings(tmp_path, monkeypatch):
    """Made-up ceilings in a fresh MINFER_HOME, so the profile does not measure the machine."""
    monkeypatch.setenv("MINFER_HOME", str(tmp_path))
    c = Ceilings(
        peak_gflops=100.0,
        bandwidth_gbs=20.0,
        matmul_n=8,
        stream_bytes=8,
        threads=1,
        cpu="test",
        measured_at="2026-11-27T00:00:00+00:00",
        env={},
    )
    save_ceilings(c)
    return c


def test_profile_json_has_phases_ops_and_ceilings(capsys, cached_ceilings):
    assert main(["profile", "And the king said", "--max-new-tokens", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ceilings"]["peak_gflops"] == 100.0
    assert data["phases"]["prefill"]["calls"] == 1 and data["phases"]["decode"]["tokens"] == 4
    decode = data["phases"]["decode"]
    assert decode["share_of_peak"] == pytest.approx(decode["gflops"] / 100.0)
    assert {r["op"] for r in data["ops"]} >= {"lm_head", "attn.c_attn", "attn.attention", "mlp.gelu"}


def test_profile_report_sweep_and_plots(capsys, cached_ceilings, tmp_path):
    plot = tmp_path / "roof.svg"
    assert (
        main(
            [
                "profile",
                "And the king said",
                "--max-new-tokens",
                "4",
                "--batch",
                "2",
                "--sweep",
                "1,2",
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "phases" in out and "top 8 ops" in out and "sweep: batch   2" in out
    assert plot.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert (tmp_path / "roof-timeline.svg").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--plot", "roof.jpg"], "--plot must end in .png or .svg"),
        (["--sweep", "1,two"], "--sweep takes batch sizes"),
        (["--sweep", "0"], "at least 1"),
        (["--batch", "0"], "--batch must be at least 1"),
    ],
)
def test_profile_errors_are_one_line(capsys, cached_ceilings, args, message):
    assert main(["profile", "x", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minfer: error:") and message in err and err.count("\n") == 1


def test_calibrate_quick_measures_and_caches(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINFER_HOME", str(tmp_path))
    assert main(["calibrate", "--quick", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == str(ceilings_path())
    cached = load_ceilings()
    assert cached.peak_gflops == data["peak_gflops"] > 0 and cached.bandwidth_gbs > 0


def test_bench_compares_variants_as_json(capsys, cached_ceilings):
    assert (
        main(
            [
                "bench",
                "--variants",
                "numpy,numba-int8",
                "--prompt-tokens",
                "8",
                "--new-tokens",
                "3",
                "--rounds",
                "1",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    # both classroom models by default, GPT-2 and Llama, each on every variant
    assert [(r["model"], r["variant"]) for r in data["rows"]] == [
        ("classroom", "numpy"),
        ("classroom", "numba-int8"),
        ("classroom-llama", "numpy"),
        ("classroom-llama", "numba-int8"),
    ]
    assert [r["weights"] for r in data["rows"]] == ["float32", "int8"] * 2
    assert all(r["decode_tokens_per_s"] > 0 and r["ttft_ms"] > 0 for r in data["rows"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants", "numpy,cuda"], "unknown variant 'cuda'"),
        (["--prompt-tokens", "250", "--new-tokens", "10"], "exceed n_ctx=256"),
        (["--model", "classroom-llama", "--prompt-tokens", "500", "--new-tokens", "20"], "exceed n_ctx=512"),
        (["--rounds", "0"], "at least 1"),
    ],
)
def test_bench_errors_are_one_line(capsys, cached_ceilings, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# --- the Llama family ----------------------------------------------------------------------------
@pytest.fixture
def llama_dir(tmp_path):
    """tiny-llama-mqa (512 ids, random weights, no tokenizer of its own) with a made-up byte-level
    tokenizer: the 256 bytes, 255 two-byte tokens and the end-of-text id 511, so a text prompt
    can be given and every id the model picks printed."""
    path = tmp_path / "tiny-llama-mqa"
    shutil.copytree(FIXTURES / "tiny-llama-mqa", path)
    tokens = [bytes([i]) for i in range(256)] + [b"a" + bytes([i]) for i in range(255)]
    lines = (f"{base64.b64encode(t).decode()} {rank}\n" for rank, t in enumerate(tokens))
    (path / "tokenizer.tiktoken").write_text("".join(lines))
    return path


LLAMA_OPS = {
    "input_layernorm",
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.rope",
    "self_attn.kv_write",
    "self_attn.attention",
    "self_attn.o_proj",
    "post_attention_layernorm",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.silu",
    "mlp.gate*up",
    "mlp.down_proj",
    "norm",
    "lm_head",
}


def test_profile_a_llama_checkpoint_as_json(capsys, cached_ceilings, llama_dir):
    args = ["profile", "And the king said", "--model", str(llama_dir), "--max-new-tokens", "4", "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["family"] == "llama" and data["phases"]["decode"]["tokens"] == 3
    assert {r["op"] for r in data["ops"] if r["seconds"] is not None} >= LLAMA_OPS
    assert main([*args, "--backend", "numba"]) == 0  # compiled: the same counts, the time mostly "other"
    fast = json.loads(capsys.readouterr().out)
    assert fast["model"]["backend"] == "numba"
    for phase in ("prefill", "decode"):
        assert fast["phases"][phase]["flops"] == data["phases"][phase]["flops"]


def test_profile_report_and_roofline_of_a_llama_checkpoint(capsys, cached_ceilings, llama_dir, tmp_path):
    plot = tmp_path / "roof.svg"
    args = ["profile", "In", "--model", str(llama_dir), "--max-new-tokens", "3", "--top", "40", "--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert all(op in out for op in LLAMA_OPS) and "RoPE tables" in out
    assert plot.read_text().lstrip().startswith(("<?xml", "<svg"))


@pytest.mark.parametrize("model", ["tiny-qwen3", "tiny-qwen2/config.json"])
def test_whatif_reads_a_llama_family_config(capsys, model):
    assert main(["whatif", "--model", str(FIXTURES / model), "--hardware", "h100-sxm", "--output", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Roofline bounds") and str(FIXTURES / model) in out and "h100-sxm" in out
    assert main(["whatif", "--arch", "qwen3-0.6b", "--hardware", "h100-sxm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["projections"][0]["arch"] == "qwen3-0.6b"
