"""Exercise 09: one step of a continuous-batching scheduler (lesson 15, continuous batching).

Write `schedule_step` below in plain Python, then grade it:

    minfer exercises check 09

At every step a serving engine decides who runs. Its state, in the dataclasses below:

    running: list[Seq]  the sequences holding KV blocks, in admission order (oldest first)
    waiting: list[Seq]  the queue, front first; a waiting Seq has n_cached = 0 and n_blocks = 0
    free_blocks: int    KV blocks free in the pool; a block holds block_size positions
    max_batch: int      at most this many running sequences
    max_step_tokens: int  tokens the model may be fed this step (always > max_batch)

A Seq has `n_tokens` tokens (prompt and generated so far), of which the first `n_cached` have
keys and values in the cache, in `n_blocks` blocks. Its next job is to feed the other
n_todo = n_tokens - n_cached tokens: n_todo == 1 is a *decode* (one token), more is a prompt
still being prefilled. To feed tokens up to position p - 1 a sequence needs ceil(p / block_size)
blocks; reserving them is all or none: it takes the missing blocks only if that many are free.

Return the `Plan` minfer's `Engine` makes (its `_schedule`), by these rules, in this order:

1. Decodes, running sequences oldest first, each with n_todo == 1: it needs blocks for
   n_cached + 1 positions. While it cannot get them, PREEMPT the newest running sequence (the
   last of `running`, possibly itself): it leaves `running`, frees all its blocks, loses its
   cache (n_cached = 0, n_blocks = 0) and goes to the FRONT of the waiting queue. If it
   preempted itself, it does not decode; otherwise it decodes once its block is reserved.
   A sequence preempted earlier in this loop is skipped.
2. The budget: max_step_tokens minus one token per decode.
3. Prefills already running, oldest first (n_todo > 1), while budget > 0: a chunk of
   n = min(n_todo, budget, room) tokens, where room = (n_blocks + free_blocks) * block_size
   - n_cached is how many positions fit in its blocks and the free ones (it takes the blocks
   for n_cached + n positions). While room is 0, PREEMPT the newest running sequence that is
   still prefilling (n_todo > 1; possibly itself: then it gets no chunk). A decode planned in
   step 1 is never preempted here.
4. Admissions: while the queue is not empty, budget > 0 and fewer than max_batch sequences run:
   the FRONT request (first come, first served) gets a chunk of n = min(n_todo, budget); if
   its blocks are not free, stop (nobody behind it is admitted either). Otherwise it leaves the
   queue, joins the end of `running` and its chunk is fed; budget -= n. A sequence preempted
   in step 1 is at the front, so it may come back in at once.

    Plan.decodes:   ids that decode, in order
    Plan.prefills:  (id, n_tokens) chunks, running prefills first, then the admitted
    Plan.preempted: ids preempted, in order
    Plan.admitted:  ids admitted, in order

Do not modify the arguments: copy what you change (dataclasses.replace, copy.deepcopy). The
checks compare your plan with the real Engine's on hand-worked cases and on random states with
few free blocks (preemption), small budgets (chunks) and full batches.
"""

from dataclasses import dataclass, field


@dataclass
class Seq:
    """One sequence, as the scheduler sees it."""

    id: int
    n_tokens: int  # prompt and generated tokens so far
    n_cached: int = 0  # of them, the first n_cached have keys and values in the cache
    n_blocks: int = 0  # KV blocks it holds (ceil(n_cached / block_size) while running)


@dataclass
class Plan:
    """What one step does."""

    decodes: list[int] = field(default_factory=list)  # ids, one token each
    prefills: list[tuple[int, int]] = field(default_factory=list)  # (id, n_tokens) chunks
    preempted: list[int] = field(default_factory=list)  # ids sent back to the queue
    admitted: list[int] = field(default_factory=list)  # ids moved from the queue to running


def schedule_step(
    running: list[Seq], waiting: list[Seq], free_blocks: int, block_size: int, max_batch: int, max_step_tokens: int
) -> Plan:
    """The engine's decisions for one step (decodes, prefill chunks, preemptions, admissions).

    running, waiting: lists of Seq (oldest / front first) -> Plan
    """
    raise NotImplementedError("write me: schedule_step")
