"""What a profiled run produced, as typed data: a `Profile` (its phases, ops and steps) and the
rows of a decode batch sweep (lessons 07 and 09).

`Profiler.profile()` and `decode_sweep` build these from what they measured and counted; the
figures (`minfer.plots.roof`, `minfer.plots.batching`) read them and trust them. Data from
outside, a profile's JSON (`minfer profile --json`, `Profiler.to_dict()`), is checked once, by
`Profile.from_dict`: a missing key or a bad number is an InvalidInputError naming its place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path
from typing import Any

from minfer.errors import InvalidInputError

FIX = "pass profiler.profile(), or Profiler.to_dict() of a profiled run, or its JSON file's path"


@dataclass(frozen=True)
class Counted:
    """Work counted and timed: what places a thing on the roofline."""

    flops: float
    bytes: float
    seconds: float | None  # None: not timed (ops of a phase-only profile)

    @property
    def placeable(self) -> bool:
        """Log axes have no place for 0, and no seconds means the thing was not timed."""
        return self.flops > 0 and self.bytes > 0 and bool(self.seconds)

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved: the roofline's x."""
        return self.flops / self.bytes

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s: the roofline's y."""
        return self.flops / (self.seconds or math.inf) / 1e9


@dataclass(frozen=True)
class PhaseRow(Counted):
    """One phase (forward, prefill, decode): its calls and the tokens they made."""

    calls: int
    tokens: int


@dataclass(frozen=True)
class OpRow(Counted):
    """One op of one layer in one phase (layer None: outside the blocks)."""

    phase: str
    layer: int | None
    op: str


@dataclass(frozen=True)
class StepRow(Counted):
    """One model call, in order: the timeline's bars."""

    phase: str
    tokens: int  # made by this call: n_new x batch
    batch: int
    context: int  # positions cached after it
    kv_bytes: float  # bytes the KV cache holds after it (0 when unknown)


@dataclass(frozen=True)
class SweepRow(Counted):
    """Decode at one batch size (`minfer.perf.profiler.decode_sweep`)."""

    batch: int
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / (self.seconds or math.inf)

    def to_dict(self) -> dict:
        return asdict(self) | {"tokens_per_s": self.tokens_per_s}


@dataclass(frozen=True)
class Profile:
    """A profiled run: per phase, per op and per model call, counted and timed."""

    model: str  # "classroom (numpy)"
    mode: str  # "ops": ops were timed; "phases": only whole calls were
    phases: dict[str, PhaseRow]
    ops: list[OpRow]
    steps: list[StepRow]

    @classmethod
    def from_dict(cls, data: Any, check: bool = True) -> Profile:
        """From `Profiler.to_dict()` or its JSON, checked field by field unless `check` is False
        (the profiler's own output)."""
        get = _Reader(check)
        get.mapping(data, "profile", ("phases", "steps"))
        model = data.get("model") if isinstance(data.get("model"), Mapping) else {}
        name = f"{model.get('name', 'model')}" + (f" ({model['backend']})" if model.get("backend") else "")
        phases = {}
        for phase, row in get.mapping(data["phases"], "profile['phases']", ()).items():
            w = f"profile['phases'][{phase!r}]"
            get.mapping(row, w, ("calls", "tokens"))
            calls, tokens = get.whole(row["calls"], f"{w}['calls']"), get.whole(row["tokens"], f"{w}['tokens']")
            phases[get.name(phase, w)] = PhaseRow(*get.counts(row, w), calls, tokens)
        ops = []
        for i, row in enumerate(get.rows(data.get("ops", []), "profile['ops']", ("phase", "op"))):
            w = f"profile['ops'][{i}]"
            ops.append(OpRow(*get.counts(row, w), get.name(row["phase"], w), row.get("layer"), str(row["op"])))
        steps = []
        for i, row in enumerate(get.rows(data["steps"], "profile['steps']", ("phase", "tokens", "context"))):
            w = f"profile['steps'][{i}]"
            tokens, context = get.whole(row["tokens"], f"{w}['tokens']"), get.whole(row["context"], f"{w}['context']")
            batch, kv_bytes = get.whole(row.get("batch", 1), f"{w}['batch']"), get.number(row.get("kv_bytes", 0), w)
            steps.append(StepRow(*get.counts(row, w), get.name(row["phase"], w), tokens, batch, context, kv_bytes))
        if check and not steps:
            raise InvalidInputError(f"the profile has no steps (no model call was recorded); {FIX}")
        return cls(name, str(data.get("mode", "ops")), phases, ops, steps)

    @classmethod
    def read(cls, path: str | Path) -> Profile:
        """A profile's JSON file (`minfer profile --json > run.json`), checked."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"cannot read a profile from {path}: {e}") from None
        return cls.from_dict(data)


def as_profile(profile: Any) -> Profile:
    """A Profile as it is; a Profiler's own (`.profile()`); a dict (`Profiler.to_dict()`) or the
    path of its JSON, checked once and converted."""
    if isinstance(profile, Profile):
        return profile
    if callable(getattr(profile, "profile", None)):  # a Profiler
        return profile.profile()
    if isinstance(profile, (str, Path)):
        return Profile.read(profile)
    return Profile.from_dict(profile)


class _Reader:
    """The checks `Profile.from_dict` makes at each field (none when told not to)."""

    def __init__(self, check: bool):
        self.check = check

    def mapping(self, value: Any, where: str, keys: Sequence[str]) -> Mapping:
        if self.check:
            if not isinstance(value, Mapping):
                raise InvalidInputError(f"{where} must be a dict, got {type(value).__name__}; {FIX}")
            missing = [k for k in keys if k not in value]
            if missing:
                raise InvalidInputError(f"{where} has no {missing}; {FIX}")
        return value

    def rows(self, value: Any, where: str, keys: Sequence[str]) -> Sequence[Mapping]:
        if self.check and (isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence)):
            raise InvalidInputError(f"{where} must be a list of dicts, got {type(value).__name__}; {FIX}")
        return [self.mapping(row, f"{where}[{i}]", keys) for i, row in enumerate(value)]

    def counts(self, row: Mapping, where: str) -> tuple[float, float, float | None]:
        self.mapping(row, where, ("flops", "bytes", "seconds"))
        seconds = row["seconds"]
        timed = None if seconds is None else self.number(seconds, f"{where}['seconds']")
        return self.number(row["flops"], f"{where}['flops']"), self.number(row["bytes"], f"{where}['bytes']"), timed

    def number(self, value: Any, where: str) -> float:
        ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and float(value) >= 0
        if self.check and not ok:
            raise InvalidInputError(f"{where}={value!r} must be a number >= 0; {FIX}")
        return float(value)

    def whole(self, value: Any, where: str) -> int:
        if self.check and (isinstance(value, bool) or not isinstance(value, Real) or value < 0 or value % 1):
            raise InvalidInputError(f"{where}={value!r} must be a whole number >= 0; {FIX}")
        return int(value)

    def name(self, value: Any, where: str) -> str:
        if self.check and not isinstance(value, str):
            raise InvalidInputError(f"{where}: the phase {value!r} must be a name such as 'decode'; {FIX}")
        return str(value)
