"""Fused causal attention: scores, softmax and the weighted sum of values in one pass per query,
never writing a [n_q, n_k] score matrix to memory (twin: minfer.attention.causal_attention).

Decode (`decode_attention`): one query per head against the `length` cached keys. Its scores
fit in a [length] row, passed in as scratch, so the kernel allocates nothing.

Paged decode (`paged_decode_attention`, what both families' compiled decode steps call): a batch
of rows, each one new query per head against its own cached keys, read through its block table
(minfer.serving.paged): position p of row r lives in block tables[r, p // block_size] at offset
p % block_size of the pool. The kernel walks a row's logical blocks and reads each physical one
in place, a [block_size, d_head] view, so nothing is gathered and the inner loops are those of a
contiguous cache. A contiguous cache is the special case of one block of max_seq positions per
sequence (`batch_decode_attention`, `grouped_decode_attention`: tables = slots[:, None]).

Grouped-query attention (the Llama family): n_head query heads share n_kv_head <= n_head
key/value heads, a group of n_head / n_kv_head query heads per KV head. The kernel works per
(row, KV head): each cached key is loaded once and dotted with every query of its group while it
sits in registers, and each value is loaded once and added into every query's output. So the
cache is read once per step, not once per query head: what makes grouped-query attention cheap
at decode (GPT-2 is the group of one).

Prefill (`prefill_attention`): n_q queries at once. The reference builds every head's
[n_q, n_k] score matrix: for a 1024-token prompt that is 12 heads x 4 MiB, far more than the
cache, so it is written to memory and read back three times (max, exp, sum). Here the queries
and keys are cut into blocks; a query block meets one key block at a time, whose keys and values
stay in cache while every query of the block uses them. Key blocks wholly in the causal future
of a query block are never visited: the masked half of the work is skipped, not computed.

The softmax is computed online (FlashAttention's trick). A query keeps a running max m, a
running sum l of exp(s - m) and a running output o = sum exp(s - m) v. When a key block brings a
larger max m', everything so far was scaled by exp(-m) instead of exp(-m'): multiply l and o by
exp(m - m') and carry on. After the last block, o / l is exactly softmax(scores) @ v.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from minfer.attention import causal_attention
from minfer.fast.kernels.elementwise import FAST

# Below this many multiply-adds (n_head x length x d_head) decode attention runs on one thread:
# waking the thread pool costs a few microseconds (measured in benchmarks/kernels.py).
PARALLEL_MIN_WORK = 1 << 15


# q: [d_head], k, v: [max_seq, d_head], scores: [max_seq] scratch -> out: [d_head]
@njit(cache=True, fastmath=FAST)
def _attend(q, k, v, length, scores, out):
    """One query against keys [0, length): out = softmax(k q / sqrt(d_head)) @ v."""
    d_head = q.shape[0]
    scale = np.float32(1.0 / math.sqrt(d_head))
    top = np.float32(-np.inf)
    for t in range(length):
        s = np.float32(0.0)
        for d in range(d_head):
            s += q[d] * k[t, d]
        scores[t] = s * scale
        top = max(top, scores[t])
    for d in range(d_head):
        out[d] = np.float32(0.0)
    total = np.float32(0.0)
    for t in range(length):
        p = np.float32(math.exp(scores[t] - top))
        total += p
        for d in range(d_head):
            out[d] += p * v[t, d]
    for d in range(d_head):
        out[d] /= total


@njit(cache=True)
def _decode_attention_serial(q, k_cache, v_cache, length, out, scores):  # as decode_attention
    for h in range(q.shape[0]):
        _attend(q[h], k_cache[h], v_cache[h], length, scores[h], out[h])


@njit(parallel=True, cache=True)
def _decode_attention_parallel(q, k_cache, v_cache, length, out, scores):  # as decode_attention
    for h in prange(q.shape[0]):  # heads are independent: one per iteration, split between threads
        _attend(q[h], k_cache[h], v_cache[h], length, scores[h], out[h])


# q: [n_head, d_head] f32, k_cache, v_cache: [n_head, max_seq, d_head], length: keys to attend to,
# scores: [n_head, >= length] f32 scratch -> out: [n_head, d_head]
@njit(cache=True)
def decode_attention(q, k_cache, v_cache, length, out, scores):
    """Attention of the one new token: the cache already holds its key and value at length - 1.
    Parallel over heads once the cache is long enough to pay for waking the threads."""
    if q.shape[0] * length * q.shape[1] < PARALLEL_MIN_WORK:
        _decode_attention_serial(q, k_cache, v_cache, length, out, scores)
    else:
        _decode_attention_parallel(q, k_cache, v_cache, length, out, scores)


def decode_attention_numpy(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, length: int) -> np.ndarray:
    """decode_attention's twin: the reference causal_attention with one query. -> [n_head, d_head]"""
    return causal_attention(q[:, None, :], k_cache[:, :length], v_cache[:, :length])[:, 0]


# --- decode through block tables: the one kernel both families' decode steps call -------------


@njit(cache=True, fastmath=FAST)
def _attend_one(q, k_pool, v_pool, j, table, length, scores, out):
    """_attend through a block table, for a group of one (GPT-2): one query against KV head j's
    keys [0, length), each read in place from the block its table names. q: [d_head],
    k_pool, v_pool: [n_blocks, n_kv_head, block_size, d_head], table: [n_table] int,
    scores: [>= length] scratch -> out: [d_head]"""
    d_head, block_size = q.shape[0], k_pool.shape[2]
    scale = np.float32(1.0 / math.sqrt(d_head))
    top = np.float32(-np.inf)
    for t0 in range(0, length, block_size):  # logical block t0 // block_size: a view of its physical block
        kb = k_pool[table[t0 // block_size], j]  # [block_size, d_head], no copy
        for o in range(min(block_size, length - t0)):
            s = np.float32(0.0)
            for d in range(d_head):
                s += q[d] * kb[o, d]
            scores[t0 + o] = s * scale
            top = max(top, scores[t0 + o])
    for d in range(d_head):
        out[d] = np.float32(0.0)
    total = np.float32(0.0)
    for t0 in range(0, length, block_size):
        vb = v_pool[table[t0 // block_size], j]  # [block_size, d_head]
        for o in range(min(block_size, length - t0)):
            p = np.float32(math.exp(scores[t0 + o] - top))
            total += p
            for d in range(d_head):
                out[d] += p * vb[o, d]
    for d in range(d_head):
        out[d] /= total


@njit(cache=True, fastmath=FAST)
def _attend_group(q, k_pool, v_pool, j, table, length, scores, out):
    """A group of queries sharing KV head j against one sequence's keys [0, length), each read
    in place from the block its table names. q: [group, d_head], k_pool, v_pool: [n_blocks,
    n_kv_head, block_size, d_head], table: [n_table] int, scores: [group, >= length] scratch
    -> out: [group, d_head]"""
    group, d_head = q.shape
    block_size = k_pool.shape[2]
    scale = np.float32(1.0 / math.sqrt(d_head))
    for t0 in range(0, length, block_size):  # logical block t0 // block_size: a view of its physical block
        kb = k_pool[table[t0 // block_size], j]  # [block_size, d_head], no copy
        for o in range(min(block_size, length - t0)):  # key t0 + o is read once for the whole group
            kt = kb[o]  # [d_head]
            for g in range(group):
                qg, s = q[g], np.float32(0.0)  # [d_head], indexed from 0 (see minfer.fast.kernels.matvec)
                for d in range(d_head):
                    s += qg[d] * kt[d]
                scores[g, t0 + o] = s * scale
    for g in range(group):  # softmax of each query's scores, in place
        row = scores[g]  # [>= length]
        top = np.float32(-np.inf)
        for t in range(length):
            top = max(top, row[t])
        total = np.float32(0.0)
        for t in range(length):
            row[t] = np.float32(math.exp(row[t] - top))
            total += row[t]
        inv_total = np.float32(1.0) / total
        for t in range(length):
            row[t] *= inv_total
        for d in range(d_head):
            out[g, d] = np.float32(0.0)
    for t0 in range(0, length, block_size):
        vb = v_pool[table[t0 // block_size], j]  # [block_size, d_head]
        for o in range(min(block_size, length - t0)):  # value t0 + o is read once for the whole group
            vt = vb[o]  # [d_head]
            for g in range(group):
                p, og = scores[g, t0 + o], out[g]
                for d in range(d_head):
                    og[d] += p * vt[d]


@njit(cache=True)
def _attend_pair(q, k_pool, v_pool, tables, lengths, out, scores, r, j):
    """Row r's query heads that KV head j serves. A group of one (GPT-2) takes the fused
    single-query loops of _attend_one, which measured 1.1-1.2x faster than _attend_group's with
    a group of one on GPT-2's heads (one pass fewer over the scores; the output a contiguous
    row rather than a slice); a larger group, the loops that read each key and value once for
    the whole group."""
    group = q.shape[1] // k_pool.shape[1]
    if group == 1:
        _attend_one(q[r, j], k_pool, v_pool, j, tables[r], lengths[r], scores[r, j], out[r, j])
    else:
        h0, h1 = j * group, (j + 1) * group  # the query heads KV head j serves
        _attend_group(q[r, h0:h1], k_pool, v_pool, j, tables[r], lengths[r], scores[r, h0:h1], out[r, h0:h1])


@njit(cache=True)
def _paged_attention_serial(q, k_pool, v_pool, tables, lengths, out, scores):  # as paged_decode_attention
    n_kv_head = k_pool.shape[1]
    for pair in range(q.shape[0] * n_kv_head):
        _attend_pair(q, k_pool, v_pool, tables, lengths, out, scores, pair // n_kv_head, pair % n_kv_head)


@njit(parallel=True, cache=True)
def _paged_attention_parallel(q, k_pool, v_pool, tables, lengths, out, scores):  # as paged_decode_attention
    n_kv_head = k_pool.shape[1]
    for pair in prange(q.shape[0] * n_kv_head):  # (row, KV head) pairs are independent: one thread writes each
        _attend_pair(q, k_pool, v_pool, tables, lengths, out, scores, pair // n_kv_head, pair % n_kv_head)


# q: [n_rows, n_head, d_head] f32, k_pool, v_pool: [n_blocks, n_kv_head, block_size, d_head] (one layer),
# tables: [n_rows, n_table] int, lengths: [n_rows] int, scores: [n_rows, n_head, >= max(lengths)] scratch
# -> out: [n_rows, n_head, d_head]
@njit(cache=True)
def paged_decode_attention(q, k_pool, v_pool, tables, lengths, out, scores):
    """Decode attention through block tables: row r's query heads attend over its positions
    [0, lengths[r]), position p read in place from block tables[r, p // block_size] at offset
    p % block_size (no gather: see the module docstring); query head h reads KV head
    h // (n_head / n_kv_head). Table entries past a row's last block are never read.

    Each (row, KV head) pair reads its keys and values once for its group; the pairs are split
    between threads once the work pays for waking them. With one row and one KV head
    (multi-query attention) there is one pair, so one thread: a decode step's attention is
    small next to its weights until the context is long. A contiguous cache is the special case
    of one block of max_seq positions per sequence (`batch_decode_attention`)."""
    work = 0
    for r in range(q.shape[0]):
        work += q.shape[1] * lengths[r] * q.shape[2]
    if work < PARALLEL_MIN_WORK:
        _paged_attention_serial(q, k_pool, v_pool, tables, lengths, out, scores)
    else:
        _paged_attention_parallel(q, k_pool, v_pool, tables, lengths, out, scores)


def paged_decode_attention_numpy(
    q: np.ndarray, k_pool: np.ndarray, v_pool: np.ndarray, tables: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """paged_decode_attention's twin, the readable way: gather each row's blocks into a contiguous
    cache (minfer.serving.paged.gather), then the reference causal_attention of its one query at
    position lengths[r] - 1. -> [n_rows, n_head, d_head]"""
    from minfer.serving.paged import gather  # here: minfer.serving imports the compiled backend, this module

    rows = [
        causal_attention(q_row[:, None, :], gather(k_pool, table, n), gather(v_pool, table, n))[:, 0]
        for q_row, table, n in zip(q, tables, lengths)
    ]  # n_rows x [n_head, d_head]
    return np.stack(rows)  # [n_rows, n_head, d_head]


@njit(cache=True)
def _one_block_each(slots):  # [n_rows] int -> [n_rows, 1]
    """The block tables of a contiguous cache: slot b is one block of max_seq positions."""
    tables = np.empty((slots.shape[0], 1), np.int64)  # [n_rows, 1]
    for r in range(slots.shape[0]):
        tables[r, 0] = slots[r]
    return tables


# q: [n_rows, n_head, d_head] f32, k_cache, v_cache: [n_batch, n_head, max_seq, d_head] (one layer),
# slots, lengths: [n_rows] int, scores: [n_rows, n_head, >= max(lengths)] scratch -> out: [n_rows, n_head, d_head]
@njit(cache=True)
def batch_decode_attention(q, k_cache, v_cache, slots, lengths, out, scores):
    """decode_attention for a batch: row r's query attends over the first lengths[r] keys of its
    own sequence, slot slots[r] of the cache. A contiguous batch cache is a pool whose blocks
    are whole slots, so this is paged_decode_attention with one block per sequence (GPT-2's
    heads: groups of one, each (row, head) pair on its own)."""
    paged_decode_attention(q, k_cache, v_cache, _one_block_each(slots), lengths, out, scores)


def batch_decode_attention_numpy(
    q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, slots: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """batch_decode_attention's twin: the reference causal_attention over a batch, each row's one
    query at position lengths[r] - 1 of its own sequence. -> [n_rows, n_head, d_head]"""
    n_keys = int(lengths.max())
    keys, values = k_cache[slots, :, :n_keys], v_cache[slots, :, :n_keys]  # [n_rows, n_head, n_keys, d_head]
    return causal_attention(q[:, :, None, :], keys, values, (lengths - 1)[:, None])[:, :, 0]  # [n_rows, n_head, d_head]


# q: [n_rows, n_head, d_head] f32, k_cache, v_cache: [n_batch, n_kv_head, max_seq, d_head] (one layer),
# slots, lengths: [n_rows] int, scores: [n_rows, n_head, >= max(lengths)] scratch -> out: [n_rows, n_head, d_head]
@njit(cache=True)
def grouped_decode_attention(q, k_cache, v_cache, slots, lengths, out, scores):
    """batch_decode_attention with grouped KV heads: row r's query heads attend over the first
    lengths[r] keys of slot slots[r], query head h reading KV head h // (n_head / n_kv_head),
    each KV head read once for its group (see the module docstring). paged_decode_attention
    with one block of max_seq positions per sequence."""
    paged_decode_attention(q, k_cache, v_cache, _one_block_each(slots), lengths, out, scores)


def grouped_decode_attention_numpy(
    q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, slots: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """grouped_decode_attention's twin: batch_decode_attention_numpy, whose causal_attention
    already groups query heads over fewer KV heads. -> [n_rows, n_head, d_head]"""
    return batch_decode_attention_numpy(q, k_cache, v_cache, slots, lengths)  # [n_rows, n_head, d_head]


@njit(cache=True, fastmath=FAST)
def _query_block(q, k, v, h, q0, q1, out, scratch):  # -> out[h, q0:q1]; scratch: [3, block]
    """Queries q0..q1-1 of head h against every key they may see, one key block at a time.

    scratch[0]: one query's scores against the current key block; scratch[1], scratch[2]: each
    query's running max and running sum of exp(score - max). out[h, i] is the running output.
    """
    n_q, d_head = q.shape[1], q.shape[2]
    block = scratch.shape[1]
    past = k.shape[1] - n_q  # cached positions before the first query
    scale = np.float32(1.0 / math.sqrt(d_head))
    row, top, total = scratch[0], scratch[1], scratch[2]  # [block] each
    for i in range(q1 - q0):
        top[i], total[i] = -np.inf, np.float32(0.0)
        out[h, q0 + i] = 0
    for k0 in range(0, past + q1, block):  # key blocks up to the last query's own position
        for i in range(q1 - q0):  # this key block stays in cache while every query uses it
            k1 = min(k0 + block, past + q0 + i + 1)  # the keys of this block query i may see
            if k1 <= k0:
                continue  # the whole block is in query i's future
            qi, oi = q[h, q0 + i], out[h, q0 + i]  # [d_head]
            new_top = top[i]
            for j in range(k0, k1):
                kj = k[h, j]  # [d_head]
                s = np.float32(0.0)
                for d in range(d_head):
                    s += qi[d] * kj[d]
                row[j - k0] = s * scale
                new_top = max(new_top, row[j - k0])
            fix = np.float32(math.exp(top[i] - new_top))  # rescales the sums made under the old max
            acc = total[i] * fix
            for d in range(d_head):
                oi[d] *= fix
            for j in range(k0, k1):
                p, vj = np.float32(math.exp(row[j - k0] - new_top)), v[h, j]
                acc += p
                for d in range(d_head):
                    oi[d] += p * vj[d]
            top[i], total[i] = new_top, acc
    for i in range(q1 - q0):
        out[h, q0 + i] /= total[i]


# q: [n_head, n_q, d_head] f32, k, v: [n_head, n_k, d_head] with n_k >= n_q, block: tile side
# -> out: [n_head, n_q, d_head]
@njit(parallel=True, cache=True)
def prefill_attention(q, k, v, out, block):
    """Causal attention of the last n_q of n_k positions (the first n_k - n_q are cached), tiled
    in [block, block] query x key blocks with an online softmax (see the module docstring).

    The work is split in (head, query block) pairs. A later query block sees more keys, so the
    pairs are ordered light, heavy, light, heavy (query blocks 0, last, 1, last - 1, ...): the
    contiguous share of them Numba gives each thread then holds about as much work as any other.
    Scratch: 3 x block floats per pair, the only allocation (n_pairs x 3 x block per call).
    """
    n_head, n_q = q.shape[0], q.shape[1]
    n_blocks = (n_q + block - 1) // block
    scratch = np.empty((n_head * n_blocks, 3, block), np.float32)
    for pair in prange(n_head * n_blocks):
        h, z = pair % n_head, pair // n_head
        qb = z // 2 if z % 2 == 0 else n_blocks - 1 - z // 2  # 0, last, 1, last - 1, ...
        _query_block(q, k, v, h, qb * block, min((qb + 1) * block, n_q), out, scratch[pair])
