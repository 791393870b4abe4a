"""The block manager: who owns which block of the paged KV cache, and prefix caching (lesson 14).

Blocks are handed out from a free list and returned to it by reference count: a block shared
by several sequences (the same system prompt, say) is freed only when its last user is done.

Prefix caching. A *full* block is named by a hash of its tokens and of the block before it
(its parent's hash), so equal hashes mean equal prefixes, not just equal blocks: block 3 of
two prompts matches only if blocks 0-2 matched too. When a new request arrives, its prompt's
full blocks are looked up in order; every hit is a block whose keys and values are already
computed, so its prefill starts after them. A hit is verified against the block's tokens (a
hash can collide). A block whose last user finished keeps its contents and stays findable
while it waits in the free list; blocks are reused least-recently-freed first, so the prefix
freed longest ago is the one evicted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from minfer.errors import InvalidInputError


def block_hash(parent: int | None, tokens: Sequence[int]) -> int:
    """The name of a full block: a hash of its parent block's name and its own tokens."""
    return hash((parent, tuple(tokens)))


class BlockManager:
    """`n_blocks` blocks of `block_size` positions: a free list, reference counts, and the
    prefix cache (a dict from block hash to block). The engine calls it from one thread."""

    def __init__(self, n_blocks: int, block_size: int, prefix_caching: bool = True):
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self.ref_count = [0] * n_blocks  # users of each block
        self.hash_of: list[int | None] = [None] * n_blocks  # the full block's name, if registered
        self.tokens_of: list[tuple[int, ...]] = [()] * n_blocks  # its tokens, to verify a hit
        self.cached: dict[int, int] = {}  # block hash -> block
        self.free: OrderedDict[int, None] = OrderedDict.fromkeys(range(n_blocks))  # ref 0, least recently freed first
        self.queries = 0  # prompt tokens looked up in the prefix cache
        self.hits = 0  # of those, tokens found

    @property
    def n_blocks(self) -> int:
        return len(self.ref_count)

    @property
    def n_free(self) -> int:
        """Blocks that can be handed out now (free, or holding an evictable cached prefix)."""
        return len(self.free)

    @property
    def n_used(self) -> int:
        """Blocks some sequence holds."""
        return self.n_blocks - len(self.free)

    @property
    def n_cached_free(self) -> int:
        """Unused blocks that still hold a cached prefix (evicted only when needed)."""
        return sum(self.hash_of[b] is not None for b in self.free)

    def allocate(self) -> int:
        """A block for one sequence: the least recently freed (its cached prefix, if any, is
        forgotten: that is the LRU eviction)."""
        if not self.free:
            raise InvalidInputError("no free KV block: the engine should have preempted a sequence first")
        block, _ = self.free.popitem(last=False)
        if (h := self.hash_of[block]) is not None:
            del self.cached[h]
            self.hash_of[block], self.tokens_of[block] = None, ()
        self.ref_count[block] = 1
        return block

    def release(self, block: int) -> None:
        """One user is done with `block`; with no user left it joins the end of the free list."""
        self.ref_count[block] -= 1
        if self.ref_count[block] == 0:
            self.free[block] = None

    def lookup(self, parent: int | None, tokens: Sequence[int]) -> int | None:
        """The cached block holding `tokens` after the prefix named `parent`, now shared with
        the caller (its reference count goes up), or None."""
        if not self.prefix_caching:
            return None
        self.queries += len(tokens)
        block = self.cached.get(block_hash(parent, tokens))
        if block is None or self.tokens_of[block] != tuple(tokens):  # a miss, or a hash collision
            return None
        self.hits += len(tokens)
        if self.ref_count[block] == 0:
            del self.free[block]  # back in use: no longer evictable
        self.ref_count[block] += 1
        return block

    def register(self, block: int, parent: int | None, tokens: Sequence[int]) -> int:
        """`block` is full and computed: make it findable under its hash (unless an equal
        block already is). -> the block's hash, the parent of the next one."""
        h = block_hash(parent, tokens)
        if self.prefix_caching and h not in self.cached and self.hash_of[block] is None:
            self.cached[h] = block
            self.hash_of[block], self.tokens_of[block] = h, tuple(tokens)
        return h

    def block_map(self) -> list[str]:
        """Each block's state: "used" (held by a sequence), "cached" (free, holding a prefix) or "free"."""
        return [
            "used" if n else ("cached" if self.hash_of[b] is not None else "free") for b, n in enumerate(self.ref_count)
        ]
