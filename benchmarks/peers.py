"""minfer against its peers: the same GPT-2 124M weights in minfer, transformers and llama.cpp.

    python benchmarks/peers.py [--rounds 3] [--systems minfer-numpy,llama-f32,...] [--quick]
                               [--unset-openblas] [--json-out results.json]

Set up the model and the optional peers first (benchmarks/README.md): `make_gguf.py` writes the
random-weight checkpoint and its GGUF files, the reference venv runs transformers, a separate
venv runs llama.cpp. A system whose interpreter, files or backend are missing is reported as
not available and skipped.

What is measured, for each system, with 2 threads:
  prefill  tok/s over a prompt of 128 and of 512 tokens, from an empty cache. The same span is
           the time to first token (TTFT): the prompt's forward pass, the last position's
           logits, and their argmax.
  decode   tok/s of greedy decoding (batch 1) with 16 and with 512 tokens already in the cache,
           and the time per output token (TPOT, median step); shown next to the bytes one step
           must read (weights + KV cache) as a share of the memory bandwidth measured in the
           same run, and prefill next to its FLOPs as a share of the measured sgemm peak.

How: every system lives in its own worker process (its own allocator, BLAS and thread pool); a
parent that holds no model drives them. Round r runs every system once, in an order rotated
each round; the workers that are not measuring are stopped (SIGSTOP), so an idle thread pool
cannot spin on a core. The table shows the median over rounds. The machine is shared and its
bandwidth drifts, so the bandwidth and sgemm peak are measured at the start, middle and end.
Before timing, every system's logits on the same 8 tokens are compared with minfer's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
N_CHECK = 8  # tokens of the logits check before timing
# The variables that decide which threads and BLAS kernels the workers get: recorded in the JSON.
ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


# --- the systems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    """One way to run the model: which interpreter runs its worker and what it stores."""

    name: str
    kind: str  # "minfer", "naive", "hf" or "llama": the worker's runner
    python: str  # "minfer", "hf" or "llama": which interpreter option runs the worker
    about: str  # one line for the table's legend
    matrix_bytes: float  # bytes per weight-matrix element (the LM head included)
    kv_bytes: int  # bytes per cached key or value element
    scales: bool = False  # int8: a float32 scale per output column of each matrix (per wte row)
    decode_only: bool = False  # no cache, so no prefill to time
    options: dict = field(default_factory=dict)


SYSTEMS = {
    s.name: s
    for s in [
        System(
            "minfer-numpy",
            "minfer",
            "minfer",
            "minfer, NumPy backend (OpenBLAS), float32",
            4,
            4,
            options={"backend": "numpy"},
        ),
        System(
            "minfer-numba", "minfer", "minfer", "minfer, Numba backend, float32", 4, 4, options={"backend": "numba"}
        ),
        System(
            "minfer-numba-int8",
            "minfer",
            "minfer",
            "minfer, Numba backend, int8 matrices with a float32 scale per output column, float32 KV cache",
            1,
            4,
            scales=True,
            options={"backend": "numba", "quantize": "int8"},
        ),
        System("hf-torch", "hf", "hf", "transformers + PyTorch, float32, sdpa, DynamicCache", 4, 4),
        System(
            "llama-f32",
            "llama",
            "llama",
            "llama.cpp (llama-cpp-python), f32 GGUF, f16 KV cache",
            4,
            2,
            options={"outtype": "f32"},
        ),
        System(
            "llama-f16",
            "llama",
            "llama",
            "llama.cpp (llama-cpp-python), f16 GGUF, f16 KV cache",
            2,
            2,
            options={"outtype": "f16"},
        ),
        System(
            "naive-numpy",
            "naive",
            "minfer",
            "minfer Model.forward over the whole sequence per token: no KV cache",
            4,
            4,
            decode_only=True,
        ),
    ]
}


@dataclass(frozen=True)
class Plan:
    """The work of one round, per system."""

    prefill_lengths: tuple[int, ...]  # prompt lengths timed from an empty cache
    decode_contexts: tuple[int, ...]  # tokens already cached when decoding starts
    decode_tokens: int  # greedy steps timed per decode measurement
    naive_tokens: int  # steps for the system without a cache (each re-runs the whole sequence)
    stream_bytes: int  # bandwidth measurement: bytes streamed
    stream_repeats: int
    matmul_n: int  # sgemm peak: side of the square matrices
    matmul_repeats: int


FULL_PLAN = Plan((128, 512), (16, 512), 32, 4, 1 << 30, 5, 3072, 5)
QUICK_PLAN = Plan((32, 128), (16, 128), 8, 2, 256 << 20, 3, 1536, 3)


# --- worker side: one runner per kind, all with the same four methods --------------------------
# A runner holds one model and one cache. reset() empties the cache (not timed); prefill(ids)
# and decode(token) return the greedy next token; logits(ids) returns the last position's logits
# as a list, for the check.


class MinferRunner:
    """minfer's Model with its preallocated KVCache."""

    def __init__(self, model_dir: str, options: dict):
        import numpy as np

        import minfer

        kwargs = {k: v for k, v in options.items() if k != "backend"}
        self.np = np
        self.model = minfer.load_model(model_dir, backend=options.get("backend", "numpy"), **kwargs)
        self.cache = self.model.new_cache()

    def info(self) -> dict:
        import numba

        return {
            "numpy": self.np.__version__,
            "numba": numba.__version__,
            "blas": openblas_info(),
            "model": repr(self.model),
        }

    def reset(self) -> None:
        # A new cache per prompt, as minfer.generate makes one: its first writes fault the pages
        # in, a cost that llama.cpp, which keeps one cache for its context's life, does not pay.
        self.cache = self.model.new_cache()  # [n_layer, n_head, n_ctx, d_head] x 2, zeroed

    def prefill(self, ids: list[int]) -> int:
        return int(self.np.argmax(self.model.prefill(ids, self.cache)))  # argmax of [n_vocab]

    def decode(self, token: int) -> int:
        return int(self.np.argmax(self.model.decode(token, self.cache)))  # argmax of [n_vocab]

    def logits(self, ids: list[int]) -> list[float]:
        self.reset()
        return self.model.prefill(ids, self.cache).tolist()  # [n_vocab]


class NaiveRunner(MinferRunner):
    """The textbook loop without a KV cache: each token re-runs the whole sequence, and the LM
    head on every position (Model.forward)."""

    def reset(self) -> None:
        self.ids: list[int] = []

    def prefill(self, ids: list[int]) -> int:
        self.ids = list(ids)
        return int(self.np.argmax(self.model.forward(self.ids)[-1]))  # [n_seq, n_vocab] -> last row

    def decode(self, token: int) -> int:
        self.ids.append(token)
        return int(self.np.argmax(self.model.forward(self.ids)[-1]))  # [n_seq, n_vocab] -> last row

    def logits(self, ids: list[int]) -> list[float]:
        return self.model.forward(ids)[-1].tolist()  # [n_vocab]


class HFRunner:
    """transformers' GPT2LMHeadModel in float32: prefill = one forward over the prompt (LM head
    on the last position only, as generate() does), decode = one token with the cache."""

    def __init__(self, model_dir: str, options: dict, threads: int):
        import inspect

        import torch
        from transformers import GPT2LMHeadModel

        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        self.torch = torch
        self.model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
        # transformers 5 renamed the argument past_key_values to cache
        params = inspect.signature(self.model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.cache = None

    def info(self) -> dict:
        import transformers

        return {
            "torch": self.torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": self.torch.get_num_threads(),
            "attn_implementation": self.model.config._attn_implementation,
        }

    def reset(self) -> None:
        self.cache = None

    def _step(self, ids: list[int]):
        out = self.model(
            input_ids=self.torch.tensor([ids]), use_cache=True, logits_to_keep=1, **{self.cache_arg: self.cache}
        )
        self.cache = out[self.cache_arg]
        return out.logits[0, -1]  # [n_vocab]

    def prefill(self, ids: list[int]) -> int:
        return int(self._step(ids).argmax())

    def decode(self, token: int) -> int:
        return int(self._step([token]).argmax())

    def logits(self, ids: list[int]) -> list[float]:
        self.reset()
        return self._step(ids).tolist()


class LlamaRunner:
    """llama.cpp through llama-cpp-python: prefill = eval(prompt) after reset, in batches of 512;
    decode = eval([token]); logits_all=False, so only the last position gets logits."""

    def __init__(self, gguf_path: str, threads: int):
        import llama_cpp
        import numpy as np

        self.np, self.llama_cpp = np, llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=gguf_path,
            n_ctx=1024,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            logits_all=False,
            verbose=False,
        )
        self.n_vocab = self.llm.n_vocab()

    def info(self) -> dict:
        return {
            "llama_cpp_python": self.llama_cpp.__version__,
            "numpy": self.np.__version__,
            "system_info": self.llama_cpp.llama_print_system_info().decode().strip(),
            "flash_attn_type": int(self.llm.context_params.flash_attn_type),
            "n_ubatch": int(self.llm.context_params.n_ubatch),
        }

    def reset(self) -> None:
        self.llm.reset()  # n_tokens = 0; the next eval drops the cached positions from there on

    def _last_logits(self):
        ptr = self.llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return self.np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))  # [n_vocab], a view

    def prefill(self, ids: list[int]) -> int:
        self.llm.eval(ids)
        return int(self._last_logits().argmax())

    def decode(self, token: int) -> int:
        self.llm.eval([token])
        return int(self._last_logits().argmax())

    def logits(self, ids: list[int]) -> list[float]:
        self.reset()
        self.llm.eval(ids)
        return self._last_logits().tolist()


def make_runner(system: System, args: argparse.Namespace):
    """The runner of a system; raises when the system cannot run here (yet)."""
    if system.kind == "minfer":
        return MinferRunner(args.model_dir, system.options)
    if system.kind == "naive":
        return NaiveRunner(args.model_dir, {"backend": "numpy"})
    if system.kind == "hf":
        return HFRunner(args.model_dir, system.options, args.threads)
    return LlamaRunner(str(gguf_path(args, system.options["outtype"])), args.threads)


def openblas_info() -> dict | None:
    """Which OpenBLAS numpy loaded and the kernel it chose (the core type), read through ctypes
    from the library itself, as threadpoolctl does."""
    import ctypes

    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            get_core = getattr(lib, f"{prefix}openblas_get_corename{suffix}", None)
            get_config = getattr(lib, f"{prefix}openblas_get_config{suffix}", None)
            if get_core is not None and get_config is not None:
                get_core.restype = get_config.restype = ctypes.c_char_p
                return {"library": path, "corename": get_core().decode(), "config": get_config().decode()}
    return None


def time_prefill(runner, ids: list[int]) -> float:
    """Seconds from token ids to the first generated token, from an empty cache (= TTFT)."""
    runner.reset()
    start = time.perf_counter()
    runner.prefill(ids)
    return time.perf_counter() - start


def time_decode(runner, ids: list[int], n_steps: int) -> list[float]:
    """Seconds of each of n_steps greedy decode steps after an (untimed) prefill of ids."""
    runner.reset()
    token = runner.prefill(ids)
    steps = []
    for _ in range(n_steps):
        start = time.perf_counter()
        token = runner.decode(token)
        steps.append(time.perf_counter() - start)
    return steps


def prompt(n: int, seed: int, n_vocab: int) -> list[int]:
    """n random token ids below the end-of-text token: the same for every system."""
    rng = random.Random(seed)
    return [rng.randrange(n_vocab - 1) for _ in range(n)]


def handle(runner, request: dict, n_vocab: int) -> dict:
    """One request from the parent -> its reply."""
    ids = prompt(request.get("n", 0), request.get("seed", 0), n_vocab)
    if request["cmd"] == "logits":
        return {"logits": runner.logits(ids)}
    if request["cmd"] == "prefill":
        return {"seconds": time_prefill(runner, ids)}
    if request["cmd"] == "decode":
        return {"steps": time_decode(runner, ids, request["steps"])}
    raise ValueError(f"unknown request {request['cmd']!r}")


def worker_main(args: argparse.Namespace) -> None:
    """A worker: load one system, then answer the parent's requests, one JSON line each."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # whatever a library prints goes to stderr; stdout carries only the replies
    replies = os.fdopen(reply_fd, "w", buffering=1)
    system = SYSTEMS[args.worker]
    try:
        runner = make_runner(system, args)
    except Exception as e:  # an unfinished backend (InvalidInputError, TypeError), missing package or file
        replies.write(json.dumps({"available": False, "reason": f"{type(e).__name__}: {e}"}) + "\n")
        return
    replies.write(json.dumps({"available": True, "info": runner.info()}) + "\n")
    n_vocab = json.loads((Path(args.model_dir) / "config.json").read_text())["vocab_size"]
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            return
        replies.write(json.dumps(handle(runner, request, n_vocab)) + "\n")


def calibrate_main(args: argparse.Namespace) -> None:
    """A one-shot worker: this machine's read bandwidth and sgemm peak, as one JSON line."""
    from minfer.perf.calibrate import measure_bandwidth_gbs, measure_matmul_gflops

    plan = QUICK_PLAN if args.quick else FULL_PLAN
    result = {
        "bandwidth_gbs": measure_bandwidth_gbs(plan.stream_bytes, plan.stream_repeats),
        "sgemm_gflops": measure_matmul_gflops(plan.matmul_n, plan.matmul_repeats),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result))


# --- parent side: workers, rounds, medians ------------------------------------------------------


class Worker:
    """A system's worker process, spoken to in JSON lines; stopped while others measure."""

    def __init__(self, system: System, python: str, args: argparse.Namespace, env: dict, log_dir: Path):
        self.system = system
        self.log_path = log_dir / f"{system.name}.log"
        cmd = [python, "-P", str(Path(__file__).resolve()), "--worker", system.name, *worker_flags(args)]
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True, cwd=REPO
        )
        self.stopped = False
        self.info: dict = {}  # versions and settings, as the worker reports them once loaded

    def read(self, timeout: float) -> dict:
        """The worker's next reply; raises with its log if it dies or goes silent."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            tail = self.log_path.read_text()[-2000:]
            raise RuntimeError(f"worker {self.system.name} gave no reply (log {self.log_path}):\n{tail}")
        return json.loads(line)

    def ask(self, request: dict, timeout: float = 1800) -> dict:
        self.resume()
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.read(timeout)
        self.pause()
        return reply

    def pause(self) -> None:
        if not self.stopped and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.stopped = True

    def resume(self) -> None:
        if self.stopped:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.stopped = False

    def close(self) -> None:
        self.resume()
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def worker_flags(args: argparse.Namespace) -> list[str]:
    """The options a worker needs, passed on from the parent's command line."""
    flags = ["--model-dir", str(args.model_dir), "--gguf-dir", str(args.gguf_dir), "--threads", str(args.threads)]
    return flags + (["--quick"] if args.quick else [])


def gguf_path(args: argparse.Namespace, outtype: str) -> Path:
    return Path(args.gguf_dir) / f"gpt2-124m-random-{outtype}.gguf"


def worker_env(args: argparse.Namespace) -> dict:
    """The machine's environment with every thread pool set to --threads; with
    --unset-openblas, also without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE."""
    env = dict(os.environ)
    for name in ENV_VARS[2:]:  # the thread counts
        env[name] = str(args.threads)
    if args.unset_openblas:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def python_for(system: System, args: argparse.Namespace) -> str:
    return {"minfer": args.minfer_python, "hf": args.hf_python, "llama": args.llama_python}[system.python]


def start_workers(systems: list[System], args, env, log_dir) -> tuple[list[Worker], dict]:
    """Start the workers one at a time (loading is not timed); report the unavailable ones."""
    workers, unavailable = [], {}
    for system in systems:
        python = python_for(system, args)
        if not Path(python).exists():
            unavailable[system.name] = f"no interpreter at {python} (see benchmarks/README.md)"
            continue
        print(f"loading {system.name} ...", file=sys.stderr, flush=True)
        worker = Worker(system, python, args, env, log_dir)
        hello = worker.read(timeout=1800)
        if not hello["available"]:
            unavailable[system.name] = f"not available yet: {hello['reason']}"
            worker.close()
            continue
        worker.info = hello["info"]
        worker.pause()
        workers.append(worker)
    return workers, unavailable


def calibrate_now(args, env) -> dict:
    """Bandwidth and sgemm peak, measured in a short-lived process while every worker is stopped."""
    cmd = [args.minfer_python, "-P", str(Path(__file__).resolve()), "--calibrate"]
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_logits(workers: list[Worker]) -> dict:
    """Every system's last-position logits on the same N_CHECK tokens, compared with the first
    system's (minfer-numpy when it runs): max |difference| and whether the argmax agrees."""
    request = {"cmd": "logits", "n": N_CHECK, "seed": 12345}
    ref = workers[0].ask(request)["logits"]
    ref_argmax = max(range(len(ref)), key=ref.__getitem__)
    checks = {}
    for w in workers:
        logits = ref if w is workers[0] else w.ask(request)["logits"]
        checks[w.system.name] = {
            "reference": workers[0].system.name,
            "max_abs_diff": max(abs(a - b) for a, b in zip(logits, ref)),
            "max_abs_logit": max(abs(b) for b in ref),
            "argmax_agrees": max(range(len(logits)), key=logits.__getitem__) == ref_argmax,
        }
    return checks


def run_round(workers: list[Worker], plan: Plan, r: int, samples: dict) -> None:
    """Every system once, starting with a different one each round; appends to samples."""
    k = r % len(workers)
    for w in workers[k:] + workers[:k]:
        s = samples.setdefault(w.system.name, {})
        if not w.system.decode_only:
            for n in plan.prefill_lengths:
                reply = w.ask({"cmd": "prefill", "n": n, "seed": r})
                s.setdefault(f"prefill_{n}", []).append(reply["seconds"])
        n_steps = plan.naive_tokens if w.system.decode_only else plan.decode_tokens
        for ctx in plan.decode_contexts:
            reply = w.ask({"cmd": "decode", "n": ctx, "seed": 1000 + r, "steps": n_steps})
            s.setdefault(f"decode_{ctx}", []).append(reply["steps"])
        print(f"  round {r + 1}: {w.system.name} done", file=sys.stderr, flush=True)


def warm_up(workers: list[Worker], plan: Plan) -> None:
    """One untimed pass of the longest prefill and a few decode steps: compiles Numba kernels,
    faults in the weights' pages, starts the thread pools."""
    for w in workers:
        if not w.system.decode_only:
            w.ask({"cmd": "prefill", "n": max(plan.prefill_lengths), "seed": 999})
        w.ask({"cmd": "decode", "n": max(plan.decode_contexts), "seed": 999, "steps": 2})


# --- theory: bytes and FLOPs of a step ----------------------------------------------------------


def model_counts(model_dir: Path) -> dict:
    """Parameter counts of a GPT-2 config: the matrices (LM head = wte included), the vectors."""
    hf = json.loads((Path(model_dir) / "config.json").read_text())
    d, L, V = hf["n_embd"], hf["n_layer"], hf["vocab_size"]
    block_matrices = d * 3 * d + d * d + d * 4 * d + 4 * d * d  # c_attn, c_proj, c_fc, mlp.c_proj
    block_vectors = 4 * d + 3 * d + d + 4 * d + d  # ln_1, ln_2 (2 each), biases
    block_outputs = 3 * d + d + 4 * d + d  # output columns of the four matrices
    return {
        "n_layer": L,
        "n_embd": d,
        "n_vocab": V,
        "n_ctx": hf["n_positions"],
        "block_matrices": L * block_matrices,
        "lm_head": V * d,
        "vectors": L * block_vectors + 2 * d,
        "scales": L * block_outputs + V,
    }


def decode_bytes(c: dict, system: System, context: float) -> float:
    """Bytes one decode step reads: every weight matrix and the LM head (and their int8 scales),
    the vectors (float32), one position-embedding row, and the keys and values of `context`
    cached positions."""
    vectors = c["vectors"] + c["n_embd"] + (c["scales"] if system.scales else 0)  # float32
    weights = (c["block_matrices"] + c["lm_head"]) * system.matrix_bytes + vectors * 4
    kv = 2 * c["n_layer"] * context * c["n_embd"] * system.kv_bytes
    return weights + kv


def prefill_flops(c: dict, n: int) -> float:
    """FLOPs of a prefill of n tokens: the block matmuls for every token, causal attention
    (scores and weighted sum over n(n+1)/2 pairs), the LM head on the last position."""
    attention = 2 * 2 * c["n_layer"] * c["n_embd"] * n * (n + 1) / 2
    return 2 * n * c["block_matrices"] + attention + 2 * c["lm_head"]


# --- summary --------------------------------------------------------------------------------------


def summarize(samples: dict, plan: Plan, counts: dict, ceilings: list[dict]) -> dict:
    """Medians over rounds of every measurement, with the rooflines' shares."""
    bandwidth = max(c["bandwidth_gbs"] for c in ceilings)  # a ceiling is the best the machine did
    peak = max(c["sgemm_gflops"] for c in ceilings)
    out = {}
    for name, s in samples.items():
        row = {
            f"prefill_{n}": prefill_summary(s[f"prefill_{n}"], n, counts, peak)
            for n in plan.prefill_lengths
            if f"prefill_{n}" in s
        }
        for ctx in plan.decode_contexts:
            row[f"decode_{ctx}"] = decode_summary(s[f"decode_{ctx}"], SYSTEMS[name], ctx, counts, bandwidth)
        out[name] = row
    return out


def prefill_summary(times: list[float], n: int, counts: dict, peak_gflops: float) -> dict:
    """Prefill of n tokens, from the seconds of each round: tok/s, TTFT, GFLOP/s and its share
    of the sgemm peak, and the spread between the slowest and the fastest round."""
    t, gflop = statistics.median(times), prefill_flops(counts, n) / 1e9
    return {
        "tok_s": n / t,
        "ttft_ms": 1e3 * t,
        "gflops": gflop / t,
        "peak_share": gflop / t / peak_gflops,
        "spread": max(times) / min(times),
    }


def decode_summary(rounds: list[list[float]], system: System, ctx: int, counts: dict, bandwidth_gbs: float) -> dict:
    """Decode after ctx cached tokens, from each round's step times: tok/s, TPOT (median step),
    and the GB/s the step's bytes imply, as a share of the measured bandwidth."""
    n_steps = len(rounds[0])
    per_round = [n_steps / sum(steps) for steps in rounds]  # tok/s of each round
    tok_s = statistics.median(per_round)
    entry = {
        "tok_s": tok_s,
        "tpot_ms": 1e3 * statistics.median(statistics.median(r) for r in rounds),
        "steps": n_steps,
        "spread": max(per_round) / min(per_round),
    }
    if not system.decode_only:  # without a cache, a step's bytes are not those of decode_bytes
        step_bytes = decode_bytes(counts, system, ctx + (n_steps - 1) / 2)  # at the mean context
        entry |= {
            "bytes_per_token": step_bytes,
            "gbs": step_bytes * tok_s / 1e9,
            "bandwidth_share": step_bytes * tok_s / 1e9 / bandwidth_gbs,
        }
    return entry


NOISY = 1.5  # rounds whose slowest and fastest differ by more than this are flagged


def fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def fmt_rate(e: dict | None, spec: str) -> str:
    """A tok/s cell, starred when the rounds disagreed (something else took a core)."""
    return "—" if e is None else format(e["tok_s"], spec) + ("*" if e["spread"] > NOISY else "")


def ratio(row: dict, base: dict | None, key: str) -> str:
    if base is None or key not in row or key not in base:
        return "—"
    return f"{row[key]['tok_s'] / base[key]['tok_s']:.2f}x"


def tables(summary: dict, plan: Plan, baseline: str, unavailable: dict) -> str:
    """The results as two markdown tables (prefill, decode) and the list of skipped systems."""
    base = summary.get(baseline)
    p = plan.prefill_lengths
    lines = [
        "| system | "
        + " | ".join(f"prefill {n} tok/s | TTFT {n} ms | % sgemm peak" for n in p)
        + f" | x {baseline} ({p[-1]}) |",
        "|---|" + "---:|" * (3 * len(p) + 1),
    ]
    for name, row in summary.items():
        cells = []
        for n in p:
            e = row.get(f"prefill_{n}")
            cells += [fmt_rate(e, ".0f"), fmt(e and e["ttft_ms"], ".1f"), fmt(e and 100 * e["peak_share"], ".0f")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio(row, base, f'prefill_{p[-1]}')} |")
    c = plan.decode_contexts
    lines += [
        "",
        "| system | "
        + " | ".join(f"decode @{x} tok/s | TPOT @{x} ms | GB/s @{x} | % bandwidth @{x}" for x in c)
        + f" | x {baseline} (@{c[0]}) |",
        "|---|" + "---:|" * (4 * len(c) + 1),
    ]
    for name, row in summary.items():
        cells = []
        for x in c:
            e = row[f"decode_{x}"]
            cells += [
                fmt_rate(e, ".1f"),
                fmt(e["tpot_ms"], ".1f"),
                fmt(e.get("gbs"), ".1f"),
                fmt(e.get("bandwidth_share") and 100 * e["bandwidth_share"], ".0f"),
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio(row, base, f'decode_{c[0]}')} |")
    lines += [
        "",
        f"\\* the rounds' fastest and slowest differ by more than {NOISY}x: another process "
        "took a core during a round (the samples are in the JSON)",
    ]
    lines += [f"- {name}: {why}" for name, why in unavailable.items()]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    bench = Path(os.environ.get("MINFER_BENCH_DIR", "/work/bench"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, from: {', '.join(SYSTEMS)} (default: all)"
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians over them")
    p.add_argument("--quick", action="store_true", help="short prompts and few tokens: a smoke test")
    p.add_argument("--threads", type=int, default=2, help="threads of every system (default 2)")
    p.add_argument(
        "--unset-openblas",
        action="store_true",
        help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the workers' environment",
    )
    p.add_argument(
        "--baseline", default="llama-f32", help="system the x columns divide by (if it did not run: the first system)"
    )
    p.add_argument("--json-out", type=Path, help="write every sample and the summary as JSON here")
    p.add_argument("--from-json", type=Path, help="measure nothing: print the tables of a saved --json-out")
    p.add_argument(
        "--model-dir",
        type=Path,
        default=bench / "gpt2-124m-random",
        help="the Hugging Face-format checkpoint (benchmarks/make_gguf.py writes it)",
    )
    p.add_argument("--gguf-dir", type=Path, default=bench / "gguf", help="where the GGUF files are")
    p.add_argument("--minfer-python", default=sys.executable, help="interpreter with minfer")
    p.add_argument("--hf-python", default="/work/refenv/bin/python", help="interpreter with torch and transformers")
    p.add_argument(
        "--llama-python", default=str(bench / "llamavenv" / "bin" / "python"), help="interpreter with llama-cpp-python"
    )
    p.add_argument("--worker", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    p.add_argument("--calibrate", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        p.error(f"--rounds and --threads must be at least 1, got {args.rounds} and {args.threads}")
    unknown = [s for s in args.systems.split(",") if s not in SYSTEMS]
    if unknown:
        p.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    return args


def check_model_dir(args: argparse.Namespace) -> None:
    if not (args.model_dir / "model.safetensors").exists():
        sys.exit(
            f"no checkpoint at {args.model_dir}; make it first with "
            f"`/work/refenv/bin/python benchmarks/make_gguf.py` (see benchmarks/README.md)"
        )


def measure(args: argparse.Namespace, plan: Plan) -> dict:
    """Start the workers, check their logits, run the rounds with the ceilings at start, middle
    and end; return everything measured."""
    env = worker_env(args)
    systems = [SYSTEMS[s] for s in args.systems.split(",")]
    log_dir = Path(tempfile.mkdtemp(prefix="minfer-peers-"))
    workers, unavailable = start_workers(systems, args, env, log_dir)
    try:
        if not workers:
            sys.exit(f"no system could run: {unavailable}")
        checks = check_logits(workers)
        warm_up(workers, plan)
        ceilings, samples = [calibrate_now(args, env)], {}
        for r in range(args.rounds):
            run_round(workers, plan, r, samples)
            if r == (args.rounds - 1) // 2 and args.rounds > 2:
                ceilings.append(calibrate_now(args, env))
        ceilings.append(calibrate_now(args, env))
        infos = {w.system.name: w.info for w in workers}
    finally:
        for w in workers:
            w.close()
    shutil.rmtree(log_dir)  # kept only when a worker failed: its error names the log
    return {"checks": checks, "ceilings": ceilings, "samples": samples, "infos": infos, "unavailable": unavailable}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.calibrate:
        return calibrate_main(args)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in report["plan"].items()})
        report["summary"] = summarize(report["samples"], plan, report["counts"], report["ceilings"])
        return print_report(report, plan, args.baseline)
    check_model_dir(args)
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    report = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": args.rounds,
        "threads": args.threads,
        "plan": plan.__dict__,
        "env": {k: worker_env(args).get(k) for k in ENV_VARS},
        "cpu": cpu_name(),
        "minfer_git": git_describe(),
        "counts": model_counts(args.model_dir),
    }
    report |= measure(args, plan)
    report["summary"] = summarize(report["samples"], plan, report["counts"], report["ceilings"])
    print_report(report, plan, args.baseline)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.json_out}")


def git_describe() -> str | None:
    """The commit minfer was measured at, '-dirty' when the work tree has changes."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def print_report(report: dict, plan: Plan, baseline: str) -> None:
    bw = [c["bandwidth_gbs"] for c in report["ceilings"]]
    peak = [c["sgemm_gflops"] for c in report["ceilings"]]
    print(
        f"\n`{report['command']}` — {report['started']}, {report['cpu']}, {report['threads']} threads, "
        f"{report['rounds']} rounds (medians), minfer at {report.get('minfer_git')}"
    )
    print(f"OpenBLAS env: CORETYPE={report['env']['OPENBLAS_CORETYPE']} L2_SIZE={report['env']['OPENBLAS_L2_SIZE']}")
    print(
        f"read bandwidth GB/s (start, middle, end): {', '.join(f'{x:.1f}' for x in bw)}; "
        f"sgemm GFLOP/s: {', '.join(f'{x:.0f}' for x in peak)}; shares use the best of each\n"
    )
    print(
        "logits check (8 tokens, last position) vs "
        + next(iter(report["checks"].values()))["reference"]
        + ": "
        + "; ".join(
            f"{n} {c['max_abs_diff']:.1e}{'' if c['argmax_agrees'] else ' ARGMAX DIFFERS'}"
            for n, c in report["checks"].items()
        )
        + "\n"
    )
    if baseline not in report["summary"]:
        baseline = next(iter(report["summary"]))  # the x columns divide by the first system run
    print(tables(report["summary"], plan, baseline, report["unavailable"]))
    print("\n" + "\n".join(f"- {s.name}: {s.about}" for s in SYSTEMS.values() if s.name in report["summary"]))


if __name__ == "__main__":
    main()
