"""One profiled generation against this machine's ceilings, and what profiling costs.

    python benchmarks/roofline.py [--model DIR | --gpt2-124m] [--prompt-tokens 256] [--new-tokens 32]
                                 [--repeats 5] [--sweep 1,4,16] [--plot FILE] [--json-out FILE]

In one run (this machine is shared and noisy: ratios measured side by side, not absolute figures):
1. the ceilings, measured now (`minfer.perf.calibrate.calibrate()`, full size);
2. the profiler's overhead: greedy generations run without a profiler, under
   `Profiler(ops=False)` and under `Profiler()`, interleaved, `--repeats` times each; the table
   shows median decode tok/s and the ratio to the unprofiled run;
3. one profiled generation: per phase FLOPs, bytes, FLOP/byte, time, GFLOP/s, GB/s and the share
   of the ceilings just measured (the `minfer profile` report), and the roofline and timeline
   plots with a decode batch sweep when `--plot` is given.
Prints the tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

import minfer
from minfer.config import Config
from minfer.generation import generate
from minfer.model import Model
from minfer.perf.calibrate import calibrate
from minfer.perf.profiler import Profiler, decode_sweep, profile_generation
from minfer.perf.report import sweep_line
from minfer.tokenizer import Tokenizer
from minfer.weights import random_weights

GPT2_124M = Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257, eos_token_id=50256)


def decode_rate(model: Model, ids: list[int], n_new: int, mode: str) -> float:
    """Decode tok/s of one greedy generation with no profiler, phases only, or every op timed."""
    if mode == "none":
        return generate(model, ids, n_new, stop_tokens=()).decode_tokens_per_second
    with Profiler(ops=mode == "ops"):
        g = generate(model, ids, n_new, stop_tokens=())
    return g.decode_tokens_per_second


def overhead(model: Model, ids: list[int], n_new: int, repeats: int) -> dict:
    """Median decode tok/s per mode, the modes interleaved so they share the machine's mood."""
    modes = ("none", "phases", "ops")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    decode_rate(model, ids, 4, "none")  # warm-up
    for _ in range(repeats):
        for m in modes:
            rates[m].append(decode_rate(model, ids, n_new, m))
    med = {m: statistics.median(r) for m, r in rates.items()}
    return {m: {"decode_tokens_per_s": med[m], "ratio_to_none": med[m] / med["none"]} for m in modes}


def main() -> None:
    p = argparse.ArgumentParser(description="A profiled generation against this machine's ceilings.")
    p.add_argument("--model", default=None, help="a model directory (default: the default model)")
    p.add_argument("--gpt2-124m", action="store_true", help="GPT-2 124M's shape with random weights")
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sweep", default="1,4,16", help="decode batch sizes for the roofline ('' for none)")
    p.add_argument("--plot", default=None, help="roofline PNG/SVG (the timeline is written beside it)")
    p.add_argument("--json-out", default=None, help="also write the whole profile here")
    a = p.parse_args()
    if a.gpt2_124m:
        model = Model(GPT2_124M, random_weights(GPT2_124M, seed=0), Tokenizer.gpt2(), name="gpt2-124M-shape (random)")
    else:
        model = minfer.load_model(a.model)
    n_prompt = min(a.prompt_tokens, model.config.n_ctx - a.new_tokens)  # leave room to decode
    if n_prompt < a.prompt_tokens:
        print(f"prompt shortened to {n_prompt} tokens: n_ctx is {model.config.n_ctx}")
    ids = np.random.default_rng(0).integers(0, model.config.n_vocab - 1, n_prompt).tolist()

    roof = calibrate()
    print(f"ceilings now: {roof.peak_gflops:.1f} GFLOP/s float32 matmul, {roof.bandwidth_gbs:.1f} GB/s read")
    cost = overhead(model, ids, a.new_tokens, a.repeats)
    print(f"\nprofiler overhead on decode ({a.repeats} interleaved runs, median):")
    for mode, r in cost.items():
        print(f"  {mode:<7} {r['decode_tokens_per_s']:>8.1f} tok/s  x{r['ratio_to_none']:.3f}")

    prof, _ = profile_generation(model, ids, a.new_tokens, ops=True)
    sizes = [int(b) for b in a.sweep.split(",")] if a.sweep else []
    sweep = decode_sweep(model, ids, a.new_tokens, sizes) if sizes else None
    print()
    prof.report(roof)
    for row in sweep or []:
        print(sweep_line(row))
    sweep_rows = [r.to_dict() for r in sweep] if sweep else None
    data = prof.to_dict(roof) | {"sweep": sweep_rows, "overhead": cost, "prompt_tokens": n_prompt}
    if a.plot:
        from minfer.cli import write_plots

        for path in write_plots(prof.profile(), roof, a.plot, sweep):
            print(f"wrote {path}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(data, indent=1))
    print(
        json.dumps(
            {
                "model": model.name,
                "ceilings": roof.to_dict(),
                "phases": data["phases"],
                "overhead": cost,
                "sweep": sweep_rows,
            }
        )
    )


if __name__ == "__main__":
    main()
