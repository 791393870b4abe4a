"""The continuous-batching engine: every request's output equals `minfer.generate` on it alone,
whatever its arrival step, its company, chunked prefill, prefix sharing or preemption; and the
block manager's books balance (every block returns, cached prefixes stay findable)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

import minfer
from minfer.checkpoints.store import CLASSROOM_DIR
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.sampling import SamplingParams
from minfer.serving import LLM, BlockManager, Engine, PagedKVCache, PagedSequence, block_hash, slot_of
from minfer.serving.paged import gather

CASES = [  # (checkpoint, backend): both families, both backends
    ("tiny-gpt2", "numpy"),
    ("tiny-llama-mqa", "numpy"),
    ("tiny-qwen3", "numpy"),
    ("classroom", "numpy"),
    ("tiny-gpt2", "numba"),
    ("tiny-qwen2", "numba"),
]


def load(name: str, backend: str = "numpy") -> minfer.Model:
    path = CLASSROOM_DIR if name == "classroom" else FIXTURES / name
    return minfer.load_model(path, backend=backend)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: "-".join(c))
def model(request):
    return load(*request.param)


def workload(model: minfer.Model, n: int, seed: int):
    """n requests: random prompts (some sharing a 2-block prefix), lengths, budgets and arrival steps."""
    rng = np.random.default_rng(seed)
    shared = rng.integers(0, model.config.n_vocab, 2 * 8).tolist()  # two blocks of 8
    out = []
    for i in range(n):
        prompt = rng.integers(0, model.config.n_vocab, int(rng.integers(1, 40))).tolist()
        if i % 4 == 0:
            prompt = shared + prompt
        out.append((prompt, int(rng.integers(1, 24)), int(rng.integers(0, 30))))  # (prompt, max_new, arrival step)
    return out


def run(engine: Engine, requests, params_of) -> dict[int, minfer.Generation]:
    """Feed the requests at their arrival steps; step until every one is done."""
    ids, done, step = {}, {}, 0
    while len(done) < len(requests):
        for i, (prompt, max_new, arrive) in enumerate(requests):
            if arrive == step:
                ids[engine.add_request(prompt, max_new, params_of(i), stop_tokens=())] = i
        for out in engine.step():
            if out.finished:
                done[ids[out.request_id]] = out.generation
        step += 1
    return done


@pytest.mark.parametrize("sampling", ["greedy", "seeded"])
def test_32_requests_with_preemption_equal_generate_alone(model, sampling):
    requests = workload(model, 32, seed=1)
    params_of = (
        (lambda i: SamplingParams())
        if sampling == "greedy"
        else (lambda i: SamplingParams(temperature=0.9, top_p=0.95, seed=i))
    )
    # 10 blocks of 8 positions: a handful of sequences at a time, so decodes must preempt
    engine = Engine(model, max_batch=8, kv_blocks=10, block_size=8, max_step_tokens=24)
    done = run(engine, requests, params_of)
    assert engine.preemptions > 0  # the test exercised recomputation
    for i, (prompt, max_new, _) in enumerate(requests):
        alone = minfer.generate(model, prompt, max_new, stop_tokens=(), params=params_of(i))
        assert done[i].tokens == alone.tokens, f"request {i}"
        assert done[i].finish_reason == alone.finish_reason
    stats = engine.stats()
    assert stats.kv_blocks_used == 0 and stats.running == stats.waiting == 0
    assert stats.generated_tokens >= sum(len(g.tokens) for g in done.values())  # recomputed tokens are not re-counted


def test_text_stops_and_stream_pieces_equal_generate():
    model = load("classroom")
    prompts = ["And the king said", "In the beginning", "Blessed are the"]
    engine = Engine(model, max_batch=4)
    pieces: dict[int, str] = {}
    rids = [engine.add_request(p, 40, stop_strings=["LORD", ","]) for p in prompts]
    finals = {}
    while engine.has_work():
        for out in engine.step():
            pieces[out.request_id] = pieces.get(out.request_id, "") + out.text
            if out.finished:
                finals[out.request_id] = out
    for rid, p in zip(rids, prompts):
        alone = minfer.generate(model, p, 40, stop_strings=["LORD", ","])
        assert finals[rid].generation.text == alone.text == pieces[rid]
        assert finals[rid].finish_reason == alone.finish_reason


def test_prefix_cache_shares_blocks_and_skips_their_prefill():
    model = load("classroom")
    engine = Engine(model, max_batch=4, block_size=16)
    system = model.tokenizer.encode(" And the LORD spake unto Moses, saying," * 8)[:64]  # four full blocks
    first = engine.add_request(system + [10, 11], 4)
    while engine.has_work():
        engine.step()
    before = engine.stats()
    second = engine.add_request(system + [12, 13, 14], 4)
    engine.step()
    after = engine.stats()
    assert after.prefix_cache_hits - before.prefix_cache_hits == 64  # the four blocks, found
    assert after.last_step.prefill_tokens == 3  # only the new tail was computed
    done = {}
    while engine.has_work():
        done.update({o.request_id: o.generation for o in engine.step() if o.finished})
    assert done[second].tokens == minfer.generate(model, system + [12, 13, 14], 4).tokens
    assert first != second and engine.stats().kv_blocks_used == 0 and engine.stats().kv_blocks_cached >= 4


def test_abort_frees_blocks_and_reports_abort():
    model = load("tiny-gpt2")
    engine = Engine(model, max_batch=4, block_size=4)
    rid = engine.add_request([1, 2, 3, 4, 5, 6], 50, stop_tokens=())
    engine.step()
    assert engine.stats().kv_blocks_used > 0
    engine.abort(rid)
    (out,) = engine.step()
    assert out.finished and out.finish_reason == "abort" and out.request_id == rid
    assert engine.stats().kv_blocks_used == 0 and not engine.has_work()


def test_long_prompt_is_chunked_while_decodes_go_on():
    model = load("tiny-gpt2")
    engine = Engine(model, max_batch=4, block_size=4, max_step_tokens=16)
    short = engine.add_request([1, 2, 3], 30, stop_tokens=())
    engine.step()  # short is prefilled and decoding
    engine.add_request(list(range(1, 61)), 2, stop_tokens=())  # 60 tokens: four chunks
    made = []
    for _ in range(4):
        outs = engine.step()
        made.append(any(o.request_id == short and o.token_ids for o in outs))
        assert engine.last_step.prefill_tokens <= 16 - 1
    assert all(made)  # the short request got a token at every step of the long prefill


def test_logprobs_are_log_softmax_of_the_logits():
    model = load("tiny-gpt2")
    engine = Engine(model)
    engine.add_request([5, 6, 7], 1, logprobs=3, stop_tokens=())
    (out,) = engine.step()
    logits = model.prefill([5, 6, 7], model.new_cache(8)).astype(np.float64)  # [n_vocab]
    want = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()  # [n_vocab]
    (lp,) = out.logprobs
    assert lp.token == int(logits.argmax()) and lp.logprob == pytest.approx(want.max(), abs=1e-5)
    assert [t for t, _ in lp.top] == np.argsort(-want)[:3].tolist()


def test_llm_generate_keeps_prompt_order():
    model = load("classroom")
    prompts = ["In the beginning", "And the king said", "Blessed"]
    gens = LLM(model, max_batch=2).generate(prompts, 8)
    assert [g.tokens for g in gens] == [minfer.generate(model, p, 8).tokens for p in prompts]


def test_requests_that_cannot_run_are_refused_at_once():
    model = load("tiny-gpt2")
    n_ctx = model.config.n_ctx
    engine = Engine(model, kv_blocks=4, block_size=4)
    with pytest.raises(ContextOverflowError, match=f"n_ctx={n_ctx}"):
        engine.add_request([1] * (n_ctx + 1), 4)
    with pytest.raises(InvalidInputError, match="kv_blocks"):
        engine.add_request([1] * 10, 20)  # 30 positions need 8 blocks of 4
    with pytest.raises(InvalidInputError, match="max_step_tokens"):
        Engine(model, max_batch=16, max_step_tokens=16)
    with pytest.raises(InvalidInputError, match="SamplingParams"):
        engine.add_request([1], 2, params={"temperature": 1})
    for bad in ([], [model.config.n_vocab], [-1]):  # refused at once, never run as garbage
        with pytest.raises(InvalidInputError):
            engine.add_request(bad, 2)
    with pytest.raises(InvalidInputError, match="block_size"):
        Engine(model, block_size=n_ctx + 1)
    assert not engine.has_work()  # nothing bad was queued


def test_slot_of_and_gather_read_through_the_table():
    table = np.array([7, 2, 9])
    assert slot_of(table, 0, 16) == (7, 0) and slot_of(table, 20, 16) == (2, 4) and slot_of(table, 47, 16) == (9, 15)
    pool = np.arange(10 * 2 * 4 * 3, dtype=np.float32).reshape(10, 2, 4, 3)  # [n_blocks, n_kv_head, block_size, d_head]
    got = gather(pool, np.array([3, 1]), 6)  # [2, 6, 3]
    want = np.concatenate([pool[3], pool[1][:, :2]], axis=1)  # block 3's four positions, then block 1's first two
    np.testing.assert_array_equal(got, want)


def test_paged_prefill_in_chunks_equals_contiguous_prefill():
    model = load("tiny-qwen3")
    c = model.config
    ids = np.arange(1, 30)  # [29]
    pool = PagedKVCache.empty(c, 12, 4)
    seq = PagedSequence(pool, np.array([11, 0, 5, 3, 9, 1, 2, 4]), 0)  # a shuffled table
    for lo, hi in ((0, 7), (7, 8), (8, 29)):
        logits = model.runner.prefill_paged(ids[lo:hi], seq)  # [n_vocab]
    want = model.prefill(ids, model.new_cache(32))  # [n_vocab]
    np.testing.assert_allclose(logits, want, atol=1e-4 * np.abs(want).max())
    assert seq.length == 29


def test_block_manager_counts_references_and_evicts_least_recently_freed():
    m = BlockManager(3, block_size=2)
    a, b = m.allocate(), m.allocate()
    h = m.register(a, None, [1, 2])
    assert m.lookup(None, [1, 2]) == a and m.ref_count[a] == 2  # shared
    assert m.lookup(None, [1, 3]) is None and m.lookup(h, [1, 2]) is None  # other tokens, other parent
    m.release(a)
    m.release(a)
    m.release(b)
    assert m.block_map() == ["cached", "free", "free"]
    assert m.lookup(None, [1, 2]) == a  # still findable after its users left
    m.release(a)
    assert [m.allocate() for _ in range(3)] == [2, 1, 0]  # never-used block, then b, then a (evicted last)
    assert m.lookup(None, [1, 2]) is None and block_hash(None, [1, 2]) not in m.cached


def test_requests_added_and_aborted_from_other_threads_while_stepping():
    """add_request and abort from two threads at once while the engine steps: every request is
    answered exactly once, the kept ones equal generate, and every block comes back."""
    import threading

    model = load("tiny-gpt2")
    engine = Engine(model, max_batch=4, kv_blocks=12, block_size=4)
    ids: dict[int, list[int]] = {}
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(8):
            prompt = rng.integers(0, model.config.n_vocab, int(rng.integers(1, 10))).tolist()
            rid = engine.add_request(prompt, 6, stop_tokens=())
            with lock:
                ids[rid] = prompt
            if rid % 3 == 0:
                engine.abort(rid)

    threads = [threading.Thread(target=client, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    done: dict[int, minfer.serving.RequestOutput] = {}
    while any(t.is_alive() for t in threads) or engine.has_work():
        for out in engine.step():
            assert out.request_id not in done  # answered once
            if out.finished:
                done[out.request_id] = out
    assert sorted(done) == sorted(ids) and engine.stats().kv_blocks_used == 0
    for rid, out in done.items():
        if out.finish_reason != "abort":
            assert out.generation.tokens == minfer.generate(model, ids[rid], 6, stop_tokens=()).tokens
