"""What thread safety costs: threads sharing one loaded model, and the decode step's own checks.

    python benchmarks/threads.py [--model DIR | --gpt2-124m] [--threads 1,2,4] [--tokens 48] [--rounds 3]

Two measurements, each side by side in one run (read the ratios, not the absolute figures):

1. **Threads sharing one model.** N threads each generate `--tokens` greedy tokens after their
   own prompt, on one `backend="numba"` model. Aggregate tok/s = N x tokens / wall time. Run
   twice, in two fresh processes: under Numba's default `workqueue` threading layer, where
   minfer serializes the compiled calls with a lock (workqueue aborts the process when two
   threads enter parallel kernels at once), and under `omp` (NUMBA_THREADING_LAYER=omp), which
   takes concurrent calls, so no lock. The NumPy backend is measured too: it needs no lock.
2. **The per-call overhead of a safe decode.** `Model.decode` claims the cache, checks it and
   the token against the config, and allocates the step's scratch per call (so threads cannot
   share it). That Python-side work is timed alone (best of the rounds) beside a whole decode
   step: a difference of microseconds is lost in this machine's noise when two whole steps are
   compared.

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from time import perf_counter

import numpy as np

import minfer
from minfer.config import Config
from minfer.model import Model
from minfer.weights import random_weights

PROMPTS = [
    "And the king said",
    "In the beginning",
    "The LORD is my shepherd",
    "And it came to pass",
    "Blessed are the poor",
    "Now the serpent was",
    "Let there be light",
    "Behold, I stand",
]


def load(args: argparse.Namespace, backend: str) -> Model:
    if args.gpt2_124m:
        cfg = Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257, eos_token_id=50256)
        return Model(
            cfg, random_weights(cfg, seed=0), minfer.Tokenizer.gpt2(), backend=backend, name="gpt2-124M-shape (random)"
        )
    return minfer.load_model(args.model, backend=backend)


def aggregate_rate(model: Model, n_threads: int, tokens: int) -> float:
    """Tokens per second of n_threads generating at once on one model."""

    def run(i: int) -> None:
        minfer.generate(model, PROMPTS[i % len(PROMPTS)], tokens, stop_tokens=())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    t = perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return n_threads * tokens / (perf_counter() - t)


def decode_overhead(model: Model, steps: int, rounds: int) -> dict:
    """What a safe decode adds in Python, timed alone (the whole step is too noisy here to show a
    difference of microseconds): claiming the cache, checking it and the token against the
    config, allocating the step's scratch. Beside it, a whole Model.decode step. Best of rounds."""
    from minfer.fast import new_run_state
    from minfer.kvcache import check_cache, in_use

    c = model.config
    cache = model.new_cache(steps + 1)

    def python_side() -> None:
        for _ in range(steps):
            with in_use(cache):
                check_cache(cache, c.n_layer, c.n_head, c.d_head, 1, c.n_ctx)
                new_run_state(c, cache.max_seq)

    def decode_all() -> None:
        cache.reset()
        for _ in range(steps):
            model.decode(5, cache)

    side, step = float("inf"), float("inf")
    for _ in range(rounds):
        t = perf_counter()
        python_side()
        side = min(side, (perf_counter() - t) / steps)
        t = perf_counter()
        decode_all()
        step = min(step, (perf_counter() - t) / steps)
    return {"step_ms": 1e3 * step, "python_side_us": 1e6 * side, "share": side / step}


def child(args: argparse.Namespace) -> None:
    """One process, one threading layer: rates by thread count (median of rounds), as JSON."""
    import numba

    from minfer import fast

    out = {}
    for backend in ("numba", "numpy") if args.with_numpy else ("numba",):
        model = load(args, backend)
        minfer.generate(model, PROMPTS[0], 4)  # compile or warm up
        rates = {
            n: float(np.median([aggregate_rate(model, n, args.tokens) for _ in range(args.rounds)]))
            for n in args.thread_counts
        }
        out[backend] = rates
        if backend == "numba":
            out["layer"] = numba.threading_layer()
            out["lock"] = fast.backend._LAYER["needs_lock"]
            out["overhead"] = decode_overhead(model, 4 * args.tokens, args.rounds)
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description="Threads sharing one model, and the safe decode's overhead.")
    p.add_argument("--model", default=None, help="a model directory (default: the default model)")
    p.add_argument("--gpt2-124m", action="store_true", help="GPT-2 124M's shape with random weights")
    p.add_argument("--threads", default="1,2,4")
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--with-numpy", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.thread_counts = [int(n) for n in args.threads.split(",")]
    if args.child:
        child(args)
        return
    runs = {}
    for layer in ("workqueue", "omp"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--threads",
            args.threads,
            "--tokens",
            str(args.tokens),
            "--rounds",
            str(args.rounds),
        ] + (["--with-numpy"] if layer == "workqueue" else [])
        cmd += ["--gpt2-124m"] if args.gpt2_124m else (["--model", args.model] if args.model else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NUMBA_THREADING_LAYER": layer})
        if proc.returncode != 0:
            print(
                f"{layer}: failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})"
            )
            continue
        runs[layer] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"aggregate decode tok/s, N threads each generating {args.tokens} tokens on one shared model "
        f"(median of {args.rounds})"
    )
    print(f"{'backend / layer':<26}" + "".join(f"{f'{n} thr':>10}" for n in args.thread_counts) + f"{'N/1':>8}")
    rows = [(f"numba / {k} ({'lock' if r['lock'] else 'no lock'})", r["numba"]) for k, r in runs.items()]
    if "workqueue" in runs and "numpy" in runs["workqueue"]:
        rows.append(("numpy", runs["workqueue"]["numpy"]))
    for name, rates in rows:
        rates = {int(n): v for n, v in rates.items()}
        last = args.thread_counts[-1]
        print(
            f"{name:<26}"
            + "".join(f"{rates[n]:>10.0f}" for n in args.thread_counts)
            + f"{rates[last] / rates[args.thread_counts[0]]:>8.2f}"
        )
    for k, r in runs.items():
        o = r["overhead"]
        print(
            f"decode step ({k}): {o['step_ms']:.3f} ms, of which the cache claim, the checks and the "
            f"per-call scratch take {o['python_side_us']:.1f} us ({o['share']:.1%})"
        )
    print(json.dumps({"tokens": args.tokens, "rounds": args.rounds, "runs": runs}))


if __name__ == "__main__":
    main()
