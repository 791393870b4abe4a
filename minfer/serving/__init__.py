"""Serving: a paged KV cache, prefix caching and a continuous-batching engine (lessons 14 and 15).

- `paged.py`: the pool of KV blocks and attention through block tables;
- `blocks.py`: the block manager (free list, reference counts, prefix cache);
- `engine.py`: `Engine` (continuous batching, chunked prefill, preemption) and `LLM` (offline);
- `server.py`: `minfer serve`, an OpenAI-compatible HTTP server; `loadtest.py`: `minfer loadtest`.
"""

from minfer.serving.blocks import BlockManager, block_hash
from minfer.serving.engine import LLM, Engine, EngineStats, RequestOutput, StepStats, TokenLogprob
from minfer.serving.paged import BLOCK_SIZE, PagedBatch, PagedKVCache, PagedSequence, slot_of

__all__ = [
    "BLOCK_SIZE",
    "LLM",
    "BlockManager",
    "Engine",
    "EngineStats",
    "PagedBatch",
    "PagedKVCache",
    "PagedSequence",
    "RequestOutput",
    "StepStats",
    "TokenLogprob",
    "block_hash",
    "slot_of",
]
