"""`minfer profile` and `minfer calibrate` on the command line (lesson 08)."""

from __future__ import annotations

import json

import pytest

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
    assert [r["variant"] for r in data["rows"]] == ["numpy", "numba-int8"]
    assert [r["weights"] for r in data["rows"]] == ["float32", "int8"]
    assert all(r["decode_tokens_per_s"] > 0 and r["ttft_ms"] > 0 for r in data["rows"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants", "numpy,cuda"], "unknown variant 'cuda'"),
        (["--prompt-tokens", "250", "--new-tokens", "10"], "exceed n_ctx=256"),
        (["--rounds", "0"], "at least 1"),
    ],
)
def test_bench_errors_are_one_line(capsys, cached_ceilings, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
