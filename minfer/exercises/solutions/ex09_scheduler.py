"""Exercise 09, reference solution: one step of a continuous-batching scheduler."""

from collections import deque
from dataclasses import dataclass, field, replace


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
    running = [replace(s) for s in running]  # copies: the step changes them, the caller's stay
    queue = deque(replace(s) for s in waiting)
    free = free_blocks
    plan = Plan()

    def reserve(s: Seq, n_positions: int) -> bool:  # blocks for the first n_positions, all or none
        nonlocal free
        missing = -(-n_positions // block_size) - s.n_blocks
        if missing > free:
            return False
        if missing > 0:
            free, s.n_blocks = free - missing, s.n_blocks + missing
        return True

    def preempt(s: Seq) -> None:  # its blocks back to the pool, its tokens kept to recompute
        nonlocal free
        free, s.n_blocks, s.n_cached = free + s.n_blocks, 0, 0
        running.remove(s)
        queue.appendleft(s)
        plan.preempted.append(s.id)

    for s in list(running):  # 1. decodes, oldest first
        if s not in running or s.n_tokens - s.n_cached != 1:  # preempted meanwhile, or prefilling
            continue
        while not reserve(s, s.n_cached + 1):
            preempt(running[-1])
            if s not in running:  # it was the newest itself
                break
        else:
            plan.decodes.append(s.id)
    budget = max_step_tokens - len(plan.decodes)  # 2.

    def room(s: Seq) -> int:  # positions s can take now: the rest of its blocks and every free one
        return (s.n_blocks + free) * block_size - s.n_cached

    for s in [s for s in running if s.n_tokens - s.n_cached > 1]:  # 3. prefills already running
        if budget == 0:
            break
        while s in running and room(s) == 0:
            preempt([p for p in running if p.n_tokens - p.n_cached > 1][-1])  # the newest prefill
        if s in running:
            n = min(s.n_tokens - s.n_cached, budget, room(s))
            reserve(s, s.n_cached + n)
            plan.prefills.append((s.id, n))
            budget -= n
    while queue and budget > 0 and len(running) < max_batch:  # 4. admissions, first come first served
        s = queue[0]
        n = min(s.n_tokens - s.n_cached, budget)
        if not reserve(s, s.n_cached + n):
            break
        running.append(queue.popleft())
        plan.prefills.append((s.id, n))
        plan.admitted.append(s.id)
        budget -= n
    return plan
