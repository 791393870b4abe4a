"""The profiler: measured time beside counted FLOPs and bytes, per phase and per op (lesson 08).

    with minfer.Profiler() as prof:
        minfer.generate(model, "And the king said", 32)
    prof.report()          # a table: each phase against this machine's ceilings; the top ops
    prof.to_dict()         # the same as JSON-ready data

It wraps, it does not clutter: while the `with` block runs, `Model.forward`, `prefill`, `decode`
and `minfer.batch.decode_batch` are replaced by timing wrappers, and (unless `ops=False`) so are
the op functions that minfer's modules call (`linear`, `layer_norm`, `gelu`, `causal_attention`,
`KVCache.update`, and for the Llama family `rms_norm`, `apply_rope`, `silu`, ...). On exit
everything is put back. The model code never knows.

Counts do not come from the wrappers: each model call is recorded with its shapes, and
`minfer.perf.counts.step_costs` turns them into FLOPs and bytes when you ask. The wrappers only
measure time, each op's *exclusive* time (its own, minus the wrapped ops it calls): the time of
a block not spent in any op is its residual adds and reshapes, reported as the op "residual".
Ops are named as the checkpoint names their weights ("attn.c_attn", "self_attn.q_proj",
"mlp.gate_proj", "ln_1", "input_layernorm", ...), so the counts of `minfer.perf.counts` and the
measured times meet under one key.

Two things of a Llama-family step are not functions and so are not timed apart: the token
embedding (a gather, `w.embed_tokens[ids]`, counted as "embed") and the RoPE tables made once
per step; their time is in "other". On the Numba backend a step is compiled code the wrappers
cannot see into, so most of its time is "other" too; its counts are the same as NumPy's.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from time import perf_counter

from minfer import attention, batch, block, embed, generation, layers, llama, mlp, rope
from minfer import model as model_module
from minfer.cost import Cost
from minfer.errors import InvalidInputError
from minfer.kvcache import BatchSlots, KVCache
from minfer.model import Model
from minfer.perf.counts import FAMILIES, Arch, step_costs
from minfer.perf.profile import Profile, SweepRow

PHASE_ORDER = ("prefill", "decode", "forward")


@dataclass(frozen=True)
class Step:
    """One recorded model call: enough shapes to count it, and how long it took."""

    phase: str  # "prefill", "decode" or "forward"
    arch: Arch
    n_new: int  # new tokens per sequence
    n_past: int  # positions cached before the call (the longest sequence's, in a batch)
    n_batch: int
    lm_rows: int  # rows the LM head ran on
    cached: bool
    kv_positions: int  # cache positions in use after the call, summed over the batch
    seconds: float

    def costs(self) -> list:
        return step_costs(self.arch, self.n_new, self.n_past, self.n_batch, self.lm_rows, self.cached)


class Profiler:
    """Records every model call made inside `with Profiler() as prof:`.

    `ops=True` (default) also times each op, which costs a few microseconds per op call;
    `ops=False` times whole calls only, for runs where that overhead matters.
    """

    _active: Profiler | None = None  # one profiler at a time: the wrappers are global

    def __init__(self, ops: bool = True):
        self.ops = ops
        self.steps: list[Step] = []
        self.op_seconds: dict[tuple[str, int | None, str], float] = defaultdict(float)
        self.sampling_seconds = 0.0  # time in minfer.sampling.sample, between model calls
        self.sampling_calls = 0
        self.models: list[Model] = []
        self._names: dict[int, tuple[int | None, str]] = {}  # id(weight array) -> (layer, op)
        self._restore: list[tuple[object, str, object]] = []
        self._phase: str | None = None
        self._stack: list[float] = []  # per open op: time spent in the wrapped ops it called
        self._layer: int | None = None
        self._attn = "attn"  # the checkpoint's name of the running model's attention ("self_attn": Llama)
        self._counted: tuple[int, dict] | None = None

    # --- context manager: install and remove the wrappers ------------------------------------
    def __enter__(self) -> Profiler:
        if Profiler._active is not None:
            raise InvalidInputError("a Profiler is already recording; profilers cannot be nested")
        Profiler._active = self
        for target, name, wrap in self._targets():
            self._patch(target, name, wrap(getattr(target, name)))
        return self

    def __exit__(self, *exc) -> None:
        for target, name, original in reversed(self._restore):
            setattr(target, name, original)
        self._restore.clear()
        Profiler._active = None

    def _patch(self, target, name: str, wrapper) -> None:
        """Replace target.name, and every minfer module's own reference to the same function."""
        original = getattr(target, name)
        holders = [target] + [m for m in _MODULES if m is not target and getattr(m, name, None) is original]
        for holder in holders:
            self._restore.append((holder, name, getattr(holder, name)))
            setattr(holder, name, wrapper)

    def _targets(self) -> list:
        phases = [
            (Model, "forward", self._phase_wrapper("forward", _no_cache, _forward_shape)),
            (Model, "prefill", self._phase_wrapper("prefill", _cache_before, _cache_shape)),
            (Model, "decode", self._phase_wrapper("decode", _cache_before, _cache_shape)),
            (batch, "decode_batch", self._phase_wrapper("decode", _batch_before, _batch_shape)),
            (generation, "sample", self._sampling_wrapper),
        ]
        if not self.ops:
            return phases
        named, fixed, attn = self._named_op, self._fixed_op, self._attention_op
        return phases + [
            (layers, "linear", named),
            (layers, "layer_norm", named),
            (layers, "rms_norm", named),
            (block, "block", named),
            (attention, "self_attention", named),
            (mlp, "mlp", named),
            (llama, "llama_block", named),
            (llama, "grouped_attention", named),
            (llama, "swiglu_mlp", named),
            (layers, "gelu", fixed("mlp.gelu")),
            (layers, "silu", fixed("mlp.silu")),
            (rope, "apply_rope", attn("rope")),
            (attention, "causal_attention", attn("attention")),
            (embed, "embed", fixed("embed", top=True)),
            (embed, "lm_head", fixed("lm_head", top=True)),
            (KVCache, "update", self._layer_arg_op("kv_write")),
            (BatchSlots, "update", self._layer_arg_op("kv_write")),
        ]

    # --- wrappers -------------------------------------------------------------------------------
    def _phase_wrapper(self, phase: str, state_of, shape_of):
        """Time a whole model call and record its shapes: `state_of(args, kwargs)` reads the cache
        before the call, `shape_of(args, result, before)` the shapes after it."""

        def wrap(fn):
            @functools.wraps(fn)
            def timed(*args, **kwargs):
                if self._phase is not None:  # a model call inside another: already being timed
                    return fn(*args, **kwargs)
                model, before = args[0], state_of(args, kwargs)
                self._learn(model)
                self._attn = FAMILIES[model.config.family].attn
                self._phase, self._stack = phase, [0.0]
                t0 = perf_counter()
                try:
                    result = fn(*args, **kwargs)
                finally:
                    seconds = perf_counter() - t0
                    self._phase = None
                self._record(phase, model, shape_of(args, result, before), seconds)
                return result

            return timed

        return wrap

    def _record(self, phase: str, model: Model, shape: tuple, seconds: float) -> None:
        n_new, n_past, n_batch, lm_rows, cached, kv_positions, kv_size = shape
        arch = Arch.from_model(model, kv_size)
        self.steps.append(Step(phase, arch, n_new, n_past, n_batch, lm_rows, cached, kv_positions, seconds))
        if self.ops:  # time in the call outside every op: argument checks, cache bookkeeping
            self.op_seconds[(phase, None, "other")] += seconds - self._stack[0]

    def _sampling_wrapper(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sampling_seconds += perf_counter() - t0
                self.sampling_calls += 1

        return timed

    def _op_wrapper(self, fn, key):
        """Time fn's exclusive seconds under (phase, layer, op) = key(args)."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self._phase is None:
                return fn(*args, **kwargs)
            layer, op = key(args)
            stack = self._stack
            stack.append(0.0)
            t0 = perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = perf_counter() - t0
                inner = stack.pop()
                stack[-1] += elapsed
                self.op_seconds[(self._phase, layer, op)] += elapsed - inner

        return timed

    def _named_op(self, fn):
        """Ops named by the weights they are given (args[1]): linear, layer_norm, block, ..."""

        def key(args):
            layer, op = self._names.get(id(args[1]), (self._layer, fn.__name__))
            if layer is not None:
                self._layer = layer
            return layer, op

        return self._op_wrapper(fn, key)

    def _fixed_op(self, op: str, top: bool = False):
        """Ops with one name, in the current layer (or outside the blocks when `top`)."""
        return lambda fn: self._op_wrapper(fn, lambda args: (None if top else self._layer, op))

    def _attention_op(self, op: str):
        """Ops of the attention, in the current layer, named after the running model's attention:
        "attention" -> "attn.attention" (GPT-2) or "self_attn.attention" (Llama)."""
        return lambda fn: self._op_wrapper(fn, lambda args: (self._layer, f"{self._attn}.{op}"))

    def _layer_arg_op(self, op: str, index: int = 1):
        """Attention ops that are told their layer: KVCache.update(self, layer, ...) and BatchSlots'."""
        return lambda fn: self._op_wrapper(fn, lambda args: (int(args[index]), f"{self._attn}.{op}"))

    def _learn(self, model: Model) -> None:
        """Map each weight array of a newly seen model to the op that uses it (`_OP_WEIGHTS`)."""
        if any(m is model for m in self.models):
            return
        self.models.append(model)
        for layer, op, a in _OP_WEIGHTS[model.config.family](model.weights):
            self._names[id(a)] = (layer, op)

    # --- results ----------------------------------------------------------------------------------
    def _counts(self) -> dict:
        """{(phase, layer, op): Cost} summed over the recorded steps (cached until the next step)."""
        if self._counted is None or self._counted[0] != len(self.steps):
            sums: dict = {}
            for step in self.steps:
                for oc in step.costs():
                    key = (step.phase, oc.layer, oc.op)
                    sums[key] = sums.get(key, Cost()) + oc.cost
            self._counted = (len(self.steps), sums)
        return self._counted[1]

    def phases(self) -> dict[str, dict]:
        """Per phase: calls, tokens, FLOPs, bytes (split by kind), seconds and the rates."""
        out = {}
        for phase in PHASE_ORDER:
            steps = [s for s in self.steps if s.phase == phase]
            if not steps and phase == "forward":
                continue
            cost = sum((c for (p, _, _), c in self._counts().items() if p == phase), Cost())
            seconds = sum(s.seconds for s in steps)
            out[phase] = {
                "calls": len(steps),
                "tokens": sum(s.n_new * s.n_batch for s in steps),
                "flops": cost.flops,
                **cost.to_dict(),
                "seconds": seconds,
                **_rates(cost.flops, cost.bytes, seconds),
            }
        return out

    def op_rows(self) -> list[dict]:
        """One row per (phase, layer, op): counted cost, and measured seconds (None if not timed)."""
        counts, keys = self._counts(), list(self._counts())
        keys += [k for k in self.op_seconds if k not in counts]
        calls = Counter(s.phase for s in self.steps)  # each op runs once per call of its phase
        rows = []
        for phase, layer, op in keys:
            cost = counts.get((phase, layer, op), Cost())
            seconds = self.op_seconds.get((phase, layer, op)) if self.ops else None
            rows.append(
                {
                    "phase": phase,
                    "layer": layer,
                    "op": op,
                    "calls": calls[phase],
                    **cost.to_dict(),
                    "seconds": seconds,
                    **_rates(cost.flops, cost.bytes, seconds),
                }
            )
        return rows

    def step_rows(self) -> list[dict]:
        """One row per model call, in order: the timeline."""
        rows = []
        for s in self.steps:
            cost = sum((oc.cost for oc in s.costs()), Cost())
            rows.append(
                {
                    "phase": s.phase,
                    "tokens": s.n_new * s.n_batch,
                    "batch": s.n_batch,
                    "context": s.n_past + s.n_new,
                    "kv_bytes": s.kv_positions * s.arch.kv_bytes_per_token(),
                    "flops": cost.flops,
                    "bytes": cost.bytes,
                    "seconds": s.seconds,
                }
            )
        return rows

    def to_dict(self, ceilings=None) -> dict:
        """JSON-ready: {"model", "mode", "phases", "ops", "steps", "sampling"}, plus "ceilings"
        and each phase's share of them when `ceilings` (from `minfer.perf.calibrate`) is given."""
        m = self.models[0] if self.models else None
        phases = self.phases()
        data = {
            "model": None
            if m is None
            else {
                "name": m.name,
                "family": m.config.family,
                "n_params": m.n_params(),
                "weight_bytes": Arch.from_model(m).weight_bytes(),
                "weight_dtype": m.weight_dtype,
                "backend": m.backend,
            },
            "mode": "ops" if self.ops else "phases",
            "phases": phases,
            "ops": self.op_rows(),
            "steps": self.step_rows(),
            "sampling": {"calls": self.sampling_calls, "seconds": self.sampling_seconds},
        }
        if ceilings is not None:
            data["ceilings"] = ceilings.to_dict()
            for p in phases.values():
                p |= shares(p, ceilings)
        return data

    def profile(self) -> Profile:
        """What was recorded, as typed data: the figures' input (`minfer.plots.roofline`)."""
        return Profile.from_dict(self.to_dict(), check=False)

    def report(self, ceilings=None, top: int = 8, file=None, width: int = 118) -> str:
        """Print (to `file`, default stdout) and return the phase table and the top ops by time.

        `ceilings` defaults to the ones `minfer calibrate` cached, if any."""
        from minfer.perf.report import render_report  # rich is imported only when a report is asked for

        if ceilings is None:
            from minfer.perf.calibrate import load_ceilings

            ceilings = load_ceilings()
        text = render_report(self.to_dict(ceilings), top, width)
        print(text, file=file or sys.stdout, end="")
        return text


def profile_generation(
    model: Model, prompt, max_new_tokens: int = 32, batch: int = 1, ops: bool = True, warmup: bool = True
) -> tuple[Profiler, list]:
    """Generate greedily under a Profiler (after an unprofiled warm-up, so one-time costs do not
    count) and return it with the Generations. Stop tokens are off, so every run is as long as
    asked (the context window still ends it)."""
    from minfer.batch import generate_batch
    from minfer.generation import generate

    def run():
        if batch == 1:
            return [generate(model, prompt, max_new_tokens, stop_tokens=())]
        return generate_batch(model, [prompt] * batch, max_new_tokens, stop_tokens=())

    if warmup:
        generate(model, prompt, 2, stop_tokens=())
    with Profiler(ops=ops) as prof:
        gens = run()
    return prof, gens


def decode_sweep(model: Model, prompt, max_new_tokens: int, sizes: list[int]) -> list[SweepRow]:
    """Decode at each batch size in `sizes` (phase timing only): one roofline point per size,
    each a SweepRow (batch, tokens, flops, bytes, seconds, and tokens_per_s)."""
    rows = []
    for b in sizes:
        prof, _ = profile_generation(model, prompt, max_new_tokens, b, ops=False, warmup=False)
        d = prof.phases()["decode"]
        rows.append(SweepRow(d["flops"], d["bytes"], d["seconds"], batch=b, tokens=d["tokens"]))
    return rows


def shares(phase: dict, ceilings) -> dict:
    """A phase's achieved rates as fractions of the machine's peak FLOP/s and bandwidth."""
    if not phase["seconds"]:
        return {"share_of_peak": None, "share_of_bandwidth": None}
    return {
        "share_of_peak": phase["gflops"] / ceilings.peak_gflops,
        "share_of_bandwidth": phase["gbs"] / ceilings.bandwidth_gbs,
    }


def _rates(flops: int, nbytes: int, seconds: float | None) -> dict:
    """Arithmetic intensity and achieved GFLOP/s and GB/s (None when nothing was timed)."""
    timed = bool(seconds)
    return {
        "flop_per_byte": flops / nbytes if nbytes else None,
        "gflops": flops / seconds / 1e9 if timed else None,
        "gbs": nbytes / seconds / 1e9 if timed else None,
    }


# --- which op each weight belongs to, per family ---------------------------------------------------
# A wrapped op that is handed a weight (`linear(x, weight, bias)`, `rms_norm(x, gain)`, a block
# its BlockWeights) is named by it. A block's, attention's or MLP's own time, outside the ops it
# calls, is its residual adds and reshapes ("residual"); in SwiGLU it is the product gate * up.
def gpt2_op_weights(w) -> list[tuple[int | None, str, object]]:
    """(layer, op, weight) for every weight a GPT-2 op is handed."""
    out: list[tuple[int | None, str, object]] = [(None, "ln_f", w.ln_f.weight)]
    for layer, bw in enumerate(w.h):
        named = {
            "ln_1": bw.ln_1.weight,
            "ln_2": bw.ln_2.weight,
            "attn.c_attn": bw.attn.c_attn.weight,
            "attn.c_proj": bw.attn.c_proj.weight,
            "mlp.c_fc": bw.mlp.c_fc.weight,
            "mlp.c_proj": bw.mlp.c_proj.weight,
        }
        out += [(layer, op, a) for op, a in named.items()]
        out += [(layer, "residual", bw), (layer, "residual", bw.attn), (layer, "residual", bw.mlp)]
    return out


def llama_op_weights(w) -> list[tuple[int | None, str, object]]:
    """(layer, op, weight) for every weight a Llama-family op is handed (q_norm, k_norm: Qwen3's)."""
    out: list[tuple[int | None, str, object]] = [(None, "norm", w.norm)]
    for layer, bw in enumerate(w.layers):
        a, m = bw.self_attn, bw.mlp
        named = {
            "input_layernorm": bw.input_layernorm,
            "post_attention_layernorm": bw.post_attention_layernorm,
            "self_attn.q_proj": a.q_proj.weight,
            "self_attn.k_proj": a.k_proj.weight,
            "self_attn.v_proj": a.v_proj.weight,
            "self_attn.o_proj": a.o_proj.weight,
            "self_attn.q_norm": a.q_norm,
            "self_attn.k_norm": a.k_norm,
            "mlp.gate_proj": m.gate_proj.weight,
            "mlp.up_proj": m.up_proj.weight,
            "mlp.down_proj": m.down_proj.weight,
        }
        out += [(layer, op, x) for op, x in named.items() if x is not None]
        out += [(layer, "residual", bw), (layer, "residual", a), (layer, "mlp.gate*up", m)]
    return out


_OP_WEIGHTS = {"gpt2": gpt2_op_weights, "llama": llama_op_weights}  # config.family -> its weights' ops


# --- reading the shapes of a call from its arguments ----------------------------------------------
def _cache_before(args, kwargs):
    """prefill(ids, cache, ...) / decode(token, cache): the cache and its length before the call."""
    cache = args[2] if len(args) > 2 else kwargs["cache"]
    return cache, cache.length


def _cache_shape(args, result, before):
    """The cache's growth says how many tokens were new; the logits, how many rows the LM head ran on."""
    cache, n_past = before
    lm_rows = result.shape[0] if result.ndim == 2 else 1
    return cache.length - n_past, n_past, 1, lm_rows, True, cache.length, cache.k.dtype.itemsize


def _no_cache(args, kwargs):
    return None


def _forward_shape(args, result, before):
    n = result.shape[0]  # forward: every position, no cache
    return n, 0, 1, n, False, 0, 4


def _batch_before(args, kwargs):
    """decode_batch(model, tokens, cache, rows): the cache and the longest row's length."""
    cache, rows = args[2], args[3]
    return cache, int(cache.lengths[rows].max())


def _batch_shape(args, result, before):
    cache, n_past = before
    n_rows = len(args[3])
    return 1, n_past, n_rows, n_rows, True, int(cache.lengths.sum()), cache.k.dtype.itemsize


_MODULES = [attention, batch, block, embed, generation, layers, llama, mlp, model_module, rope]
