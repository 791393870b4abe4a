"""The profiler: counts that match minfer.perf.counts for every backend and family, exclusive op
times that add up to the phase time, the wrappers removed afterwards, and the JSON shape (lessons
08 and 13)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import FIXTURES

import minfer
from minfer import layers, llama, rope
from minfer.errors import InvalidInputError
from minfer.kvcache import KVCache
from minfer.model import BACKENDS, Model
from minfer.perf.counts import FAMILIES, Arch, step_costs, total
from minfer.perf.profiler import Profiler

PHASE_KEYS = {
    "calls",
    "tokens",
    "flops",
    "bytes",
    "bytes_read",
    "bytes_written",
    "weight_bytes",
    "kv_read",
    "kv_write",
    "act_read",
    "act_write",
    "seconds",
    "flop_per_byte",
    "gflops",
    "gbs",
}
OP_KEYS = {"phase", "layer", "op", "calls", "flops", "bytes", "bytes_read", "bytes_written", "seconds"}


@pytest.fixture(scope="module")
def model() -> Model:
    return minfer.load_model()


def profile_generation(model, ops=True, n=6):
    with Profiler(ops=ops) as prof:
        g = minfer.generate(model, "And the king said", n)
    return prof, g


@pytest.mark.parametrize("backend", BACKENDS)
def test_counts_equal_the_analytical_counts_whatever_the_backend(backend):
    model = minfer.load_model(backend=backend)
    prof, g = profile_generation(model)
    arch, n_prompt = Arch.from_model(model), len(g.prompt_tokens)
    phases = prof.phases()
    assert phases["prefill"]["flops"] == total(step_costs(arch, n_prompt, 0)).flops
    decode = sum((total(step_costs(arch, 1, n_prompt + i)) for i in range(len(g.tokens) - 1)), start=total([]))
    assert phases["decode"]["flops"] == decode.flops
    assert phases["decode"]["bytes"] == decode.bytes
    assert phases["decode"]["tokens"] == len(g.tokens) - 1 == phases["decode"]["calls"]


def test_every_timed_op_is_a_counted_op_and_every_counted_op_is_timed(model):
    prof, _ = profile_generation(model)
    counted = {(r["phase"], r["layer"], r["op"]) for r in prof.op_rows() if r["bytes"]}
    timed = {k for k, s in prof.op_seconds.items() if k[2] != "other"}
    assert timed == counted


def test_exclusive_op_times_add_up_to_the_phase_time(model):
    prof, _ = profile_generation(model)
    for phase, p in prof.phases().items():
        ops = sum(r["seconds"] for r in prof.op_rows() if r["phase"] == phase)
        assert ops == pytest.approx(p["seconds"], rel=1e-9)
        assert all(r["seconds"] >= 0 for r in prof.op_rows() if r["op"] != "other")


def test_profiling_changes_no_result_and_unwraps_on_exit(model):
    ids = model.tokenizer.encode("In the beginning")
    want = model.forward(ids)
    originals = (layers.linear, minfer.attention.linear, Model.decode, KVCache.update)
    with Profiler():
        got = model.forward(ids)
    np.testing.assert_array_equal(got, want)
    assert (layers.linear, minfer.attention.linear, Model.decode, KVCache.update) == originals
    with pytest.raises(InvalidInputError), Profiler():
        model.decode(-1, model.new_cache())  # a failed call records nothing and still unwraps
    assert Model.decode is originals[2]


def test_a_failed_call_is_not_recorded(model):
    with Profiler() as prof:
        with pytest.raises(InvalidInputError):
            model.prefill([model.config.n_vocab], model.new_cache())
    assert prof.steps == []


def test_profilers_do_not_nest():
    with Profiler(), pytest.raises(InvalidInputError, match="nested"):
        with Profiler():
            pass


def test_forward_is_its_own_phase(model):
    with Profiler() as prof:
        model.forward(list(range(10)))
    p = prof.phases()["forward"]
    assert p["tokens"] == 10 and p["kv_read"] == p["kv_write"] == 0
    assert p["flops"] == total(step_costs(Arch.from_model(model), 10, 0, lm_rows=10, cached=False)).flops


def test_batched_decode_is_counted_per_batch_step(model):
    with Profiler() as prof:
        gens = minfer.generate_batch(model, ["And the king said", "In"], 4)
    decode_steps = [s for s in prof.steps if s.phase == "decode"]
    assert [s.n_batch for s in decode_steps] == [2, 2, 2]
    assert prof.phases()["decode"]["tokens"] == sum(len(g.tokens) - 1 for g in gens)
    assert prof.phases()["prefill"]["calls"] == 2


def test_phase_only_mode_counts_the_same_without_op_times(model):
    with_ops, _ = profile_generation(model, ops=True)
    phases_only, _ = profile_generation(model, ops=False)
    for phase in ("prefill", "decode"):
        assert phases_only.phases()[phase]["flops"] == with_ops.phases()[phase]["flops"]
    assert all(r["seconds"] is None for r in phases_only.op_rows())


def test_to_dict_is_json_with_the_documented_schema(model):
    prof, g = profile_generation(model)
    ceilings = type(
        "C",
        (),
        {
            "peak_gflops": 100.0,
            "bandwidth_gbs": 20.0,
            "to_dict": lambda self: {"peak_gflops": 100.0, "bandwidth_gbs": 20.0},
        },
    )()
    data = json.loads(json.dumps(prof.to_dict(ceilings)))
    assert set(data) >= {"model", "mode", "phases", "ops", "steps", "sampling", "ceilings"}
    assert PHASE_KEYS <= set(data["phases"]["prefill"]) and PHASE_KEYS <= set(data["phases"]["decode"])
    assert all(OP_KEYS <= set(r) for r in data["ops"])
    decode = data["phases"]["decode"]
    assert decode["share_of_bandwidth"] == pytest.approx(decode["gbs"] / 20.0)
    assert [s["phase"] for s in data["steps"]] == ["prefill"] + ["decode"] * (len(g.tokens) - 1)
    assert [s["context"] for s in data["steps"]][-1] == len(g.prompt_tokens) + len(g.tokens) - 1


def test_report_shows_each_phase_and_the_top_ops(model):
    prof, _ = profile_generation(model)
    text = prof.report(file=io.StringIO())
    assert "prefill" in text and "decode" in text and "lm_head" in text
    assert "decode bytes per token: weights" in text


# Modules that hold a timed op without computing the model with it: the twin references the
# kernels are tested against, the graders' references, and the module that defines `sample`.
NOT_ON_THE_MODEL_PATH = {
    "minfer.fast.kernels",
    "minfer.fast.kernels.attention",
    "minfer.fast.kernels.elementwise",
    "minfer.fast.kernels.rope",
    "minfer.exercises.checks",
    "minfer.sampling",
    "minfer.serving.engine",  # runs the backend directly and times its own steps (StepStats), not under Profiler
}


def test_every_module_that_holds_a_timed_op_is_patched_by_the_profiler():
    """The profiler replaces each op in every module of its list that imported it by name; a
    module outside the list that calls `linear` (say) would escape op timing unseen."""
    import importlib
    import pkgutil
    import types

    from minfer.perf import profiler

    modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(minfer.__path__, "minfer.")]
    targets = [(t, n) for t, n, _ in profiler.Profiler()._targets() if isinstance(t, types.ModuleType)]
    ops = {id(getattr(t, n)): f"{t.__name__}.{n}" for t, n in targets}
    assert len(ops) >= 10
    escaped = {
        m.__name__: sorted(ops[id(v)] for v in vars(m).values() if id(v) in ops)
        for m in modules
        if m not in profiler._MODULES and m.__name__ not in NOT_ON_THE_MODEL_PATH
    }
    assert {name: held for name, held in escaped.items() if held} == {}


# --- the Llama family --------------------------------------------------------------------------------
# tiny-llama-mqa: 4 query heads on 1 KV head, llama3 RoPE, tied head; tiny-qwen3: q/k norms,
# head_dim 24. No tokenizer: prompts are token ids.
LLAMA_PROMPT = [5, 17, 42, 7, 300, 11]


def llama_model(name: str, backend: str = "numpy") -> Model:
    if backend == "numba":
        pytest.importorskip("minfer.fast.llama", reason="the Llama family's Numba backend has not landed")
    return minfer.load_model(FIXTURES / name, backend=backend)


@pytest.fixture(scope="module", params=["tiny-llama-mqa", "tiny-qwen3"])
def llama_fixture(request) -> Model:
    return llama_model(request.param)


def profile_llama(model, n=5, ops=True):
    with Profiler(ops=ops) as prof:
        g = minfer.generate(model, LLAMA_PROMPT, n, stop_tokens=())
    return prof, g


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["tiny-llama-mqa", "tiny-qwen3"])
def test_llama_counts_per_phase_equal_the_arch_formula(name, backend):
    model = llama_model(name, backend)
    prof, g = profile_llama(model)
    arch, n_prompt = Arch.from_model(model), len(LLAMA_PROMPT)
    assert arch.family == "llama" and arch.n_kv_head < arch.n_head
    phases = prof.phases()
    prefill = total(step_costs(arch, n_prompt, 0))
    assert (phases["prefill"]["flops"], phases["prefill"]["bytes"]) == (prefill.flops, prefill.bytes)
    decode = sum((total(step_costs(arch, 1, n_prompt + i)) for i in range(len(g.tokens) - 1)), start=total([]))
    assert (phases["decode"]["flops"], phases["decode"]["bytes"]) == (decode.flops, decode.bytes)
    assert phases["decode"]["kv_read"] == sum(
        2 * arch.n_layer * arch.n_kv_head * (n_prompt + i + 1) * arch.d_head * 4 for i in range(len(g.tokens) - 1)
    )  # every step reads the n_kv_head heads of the whole cache, float32
    kv_bytes = [s["kv_bytes"] for s in prof.step_rows()]
    assert kv_bytes[-1] == (n_prompt + len(g.tokens) - 1) * arch.kv_bytes_per_token()


def test_every_llama_op_is_timed_under_its_checkpoint_name(llama_fixture):
    prof, _ = profile_llama(llama_fixture)
    counted = {(r["phase"], r["layer"], r["op"]) for r in prof.op_rows() if r["bytes"]}
    timed = {k for k, s in prof.op_seconds.items() if k[2] != "other"}
    assert timed <= counted
    # the token embedding is a line (a gather), not a function: counted, its time in "other"
    assert counted - timed == {("prefill", None, "embed"), ("decode", None, "embed")}
    ops = {op for _, layer, op in timed if layer == 0}
    want = {"input_layernorm", "post_attention_layernorm", "residual", *FAMILIES["llama"].matrices}
    want |= {f"self_attn.{op}" for op in ("rope", "kv_write", "attention")} | {"mlp.silu", "mlp.gate*up"}
    if llama_fixture.config.qk_norm:
        want |= {"self_attn.q_norm", "self_attn.k_norm"}
    assert ops == want
    assert {op for _, layer, op in timed if layer is None} == {"norm", "lm_head"}


def test_llama_exclusive_op_times_add_up_to_the_phase_time(llama_fixture):
    prof, _ = profile_llama(llama_fixture)
    for phase, p in prof.phases().items():
        rows = [r for r in prof.op_rows() if r["phase"] == phase and r["seconds"] is not None]
        assert sum(r["seconds"] for r in rows) == pytest.approx(p["seconds"], rel=1e-9)
        assert all(r["seconds"] >= 0 for r in rows if r["op"] != "other")


def test_profiling_a_llama_model_changes_no_result_and_unwraps(llama_fixture):
    model = llama_fixture
    want = model.forward(LLAMA_PROMPT)
    originals = (layers.rms_norm, llama.rms_norm, llama.apply_rope, rope.apply_rope, llama.silu, llama.llama_block)
    with Profiler() as prof:
        got = model.forward(LLAMA_PROMPT)
        assert llama.apply_rope is not originals[2]  # wrapped inside the block
    np.testing.assert_array_equal(got, want)
    assert (layers.rms_norm, llama.rms_norm, llama.apply_rope, rope.apply_rope, llama.silu, llama.llama_block) == (
        originals
    )
    forward = prof.phases()["forward"]
    assert forward["flops"] == total(step_costs(Arch.from_model(model), 6, 0, lm_rows=6, cached=False)).flops
    assert forward["kv_read"] == forward["kv_write"] == 0


def test_llama_batched_decode_is_counted_per_batch_step():
    model = llama_model("tiny-qwen3")
    with Profiler() as prof:
        gens = minfer.generate_batch(model, [LLAMA_PROMPT, LLAMA_PROMPT[:2]], 4, stop_tokens=())
    decode_steps = [s for s in prof.steps if s.phase == "decode"]
    assert [s.n_batch for s in decode_steps] == [2, 2, 2]
    assert prof.phases()["decode"]["flops"] == sum(total(s.costs()).flops for s in decode_steps)
    assert prof.phases()["decode"]["tokens"] == sum(len(g.tokens) - 1 for g in gens)
    timed = {op for (phase, _, op) in prof.op_seconds if phase == "decode"}
    assert {"self_attn.kv_write", "self_attn.rope", "mlp.silu"} <= timed  # BatchSlots.update, named for Llama


def test_a_profile_of_gpt2_then_llama_names_each_family_s_ops(model):
    with Profiler() as prof:
        minfer.generate(model, "And", 2)
        minfer.generate(llama_model("tiny-llama-mqa"), LLAMA_PROMPT, 2, stop_tokens=())
    ops = {op for (_, _, op) in prof.op_seconds}
    assert {"attn.attention", "attn.kv_write", "self_attn.attention", "self_attn.kv_write"} <= ops


def test_the_llama_report_names_its_ops(llama_fixture):
    prof, _ = profile_llama(llama_fixture)
    text = prof.report(file=io.StringIO(), top=40)
    for op in ("self_attn.q_proj", "self_attn.rope", "mlp.gate_proj", "mlp.silu", "lm_head"):
        assert op in text
    assert "RoPE tables" in text and prof.to_dict()["model"]["family"] == "llama"
