"""What one op costs: FLOPs, and bytes moved split by where they come from (lesson 08).

Every op module writes its count formula beside the op (`layers.linear_cost` next to
`layers.linear`, `attention.attention_cost` next to `attention.causal_attention`, ...), in terms of
shapes and the bytes per number actually stored. `minfer.perf.counts` adds them up for a whole step
and `minfer.perf.profiler` puts them next to measured time.

Conventions, the same for every op:
- a multiply-add is 2 FLOPs; an exp, tanh, sqrt or division is 1 FLOP (it costs more
  instructions, but the convention keeps the counts comparable with everyone else's);
- bytes are the compulsory traffic: every input read once, every output written once.
  Intermediates a fused kernel keeps on chip (attention's scores) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Cost:
    """FLOPs and bytes of one op (or a sum of ops). All fields are counts, not rates."""

    flops: int = 0
    weight_bytes: int = 0  # parameters read (the whole matrix, once, however many rows)
    kv_read: int = 0  # cached keys and values read by attention
    kv_write: int = 0  # new keys and values written into the cache
    act_read: int = 0  # activations read (inputs of the op)
    act_write: int = 0  # activations written (outputs of the op)

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Cost)))

    def __mul__(self, n: int) -> Cost:
        """The same op done n times (n sequences of a batch, say)."""
        return Cost(*(getattr(self, f.name) * n for f in fields(Cost)))

    __rmul__ = __mul__

    @property
    def bytes_read(self) -> int:
        return self.weight_bytes + self.kv_read + self.act_read

    @property
    def bytes_written(self) -> int:
        return self.kv_write + self.act_write

    @property
    def bytes(self) -> int:
        """All bytes moved, read plus written."""
        return self.bytes_read + self.bytes_written

    @property
    def flop_per_byte(self) -> float:
        """Arithmetic intensity: the x coordinate on a roofline plot."""
        return self.flops / self.bytes if self.bytes else float("inf")

    def to_dict(self) -> dict:
        """JSON-ready: the six fields plus bytes_read, bytes_written and bytes."""
        d = {f.name: getattr(self, f.name) for f in fields(Cost)}
        return d | {"bytes_read": self.bytes_read, "bytes_written": self.bytes_written, "bytes": self.bytes}
