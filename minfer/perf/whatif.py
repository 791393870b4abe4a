"""What if this model ran on an H100, a TPU or a Groq chip? Roofline BOUNDS, not measurements (lesson 12).

`minfer.perf.counts` gives the FLOPs and bytes of every step of a generation; `minfer.perf.hardware` gives
a chip's two ceilings: its peak FLOP/s and its memory bandwidth. A step can go no faster than
the slower of the two:

    t_step >= max(FLOPs / peak,  bytes / bandwidth)          (the roofline bound)

Every number here is that bound: the time a phase cannot beat, the tokens/s it cannot exceed.

Prefill runs the whole prompt in one pass, so each weight read from memory serves
`batch x prompt` tokens (2 FLOPs per weight per token): hundreds of FLOPs per byte, far past the
chip's ridge point (peak / bandwidth, ~300 FLOP/byte on an H100 in bfloat16). Prefill of a
billion-parameter model is compute-bound (a small one like GPT-2 can stay memory-bound: its
layer norms and GELU move activations for few FLOPs), and it gives the first token: time to
first token (TTFT) = prefill time.

Decode makes one token per sequence per step, and must read every weight for it: with 2-byte
weights that is 2 FLOPs per 2 bytes, ~1 FLOP/byte per sequence, so a step's intensity is about
`batch` FLOP/byte. At batch 1 that is 300x below the ridge: decode is memory-bound, and

    time per output token (TPOT) ~ (weight bytes + batch x KV-cache bytes per sequence) / bandwidth.

Batching is decode's lever: B sequences share one read of the weights, so the step
costs little more than at batch 1 while it makes B tokens. Throughput (tokens/s = batch / TPOT)
grows almost B-fold until the KV cache (which grows with B) or the compute ceiling catches up.
The chip costs the same per hour whatever it does, so dollars per million tokens
(price/h x hours / tokens) falls almost as 1/B over the same range, and so does energy per
token (tokens/s per watt rises).

The formulas, for `output_tokens` new tokens per sequence and `batch` sequences:
- output_tokens counts the first token, which prefill produces: there are
  `output_tokens - 1` decode steps; step i (i = 1, 2, ...) attends over `prompt + i` positions.
- ttft_s = prefill_s;  tpot_s = decode_s / (output_tokens - 1);  tokens_per_s = batch / tpot_s.
- usd_per_million_tokens = price/h x chips x (prefill_s + decode_s) / 3600
                           / (batch x output_tokens) x 1e6
  (per output token: prefill's time is paid for, the prompt tokens are not counted as product)
- chips = ceil((weight bytes + KV cache of the whole batch at the end) / memory per chip).

`dtype` sets the bytes per stored weight (and KV-cache number, unless `kv_dtype` differs) and
the peak: a chip without a bfloat16 peak uses its float16 one and vice versa; int8 and fp8 use
their own; any other missing dtype is an InvalidInputError (`project_many` skips the chip with a
note). Activations are 16-bit below float32.

Caveats, which is why these are bounds: no kernel reaches the peak (no efficiency factor is
applied), several chips are ideal (peak, bandwidth, power and price add up, communication
between chips is free), compute and memory traffic overlap perfectly within a step and nothing happens between
steps (no scheduling, sampling, or host gaps). Real systems reach maybe 50-80% of these bounds.
Prices are dated assumptions and power is the board power (TDP): see `minfer.perf.hardware`.

Example:
    >>> p = project("llama-3-8b", "h100-sxm", prompt_tokens=512, output_tokens=256)
    >>> p.decode_limit, p.chips, round(p.tpot_s * 1e3, 2)   # ms per token, a lower bound
    ('memory', 1, 4.51)
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

from minfer.config import Config, LlamaConfig
from minfer.cost import Cost
from minfer.errors import InvalidInputError
from minfer.perf.counts import ARCHS, DTYPE_SIZES, Arch, decode_cost, prefill_cost
from minfer.perf.hardware import CATALOG, THIS_MACHINE, Hardware, get_hardware
from minfer.perf.report import fmt

TITLE = "Roofline bounds, not measurements"
# a chip that publishes no peak for one 16-bit float type is fed the other: same bytes, and
# tensor cores run bfloat16 and float16 at the same rate wherever both are published
_TWIN_DTYPE = {"bfloat16": "float16", "float16": "bfloat16"}
_FEW_CHIPS = 8  # one server's worth: beyond it, the chips talk over slower links than NVLink
ASSUMPTIONS = (
    "Bounds: each step takes max(FLOPs / peak, bytes / bandwidth); no kernel reaches either "
    "ceiling, real systems reach maybe 50-80% of these numbers.",
    "Peaks are dense datasheet figures (sparse ones halved); bandwidth is the datasheet's.",
    "Several chips are ideal: peak, bandwidth, power and price scale with the chip count and "
    "communication between chips is free.",
    "Chips = ceil((weights + KV cache of the whole batch at the end) / memory per chip); "
    "activations and runtime overheads are not counted.",
    "Power is the board power (TDP), an upper bound on what a chip draws.",
    "Prices are assumptions dated mid-2026 (on-demand cloud per chip-hour, or purchase over 3 "
    "years plus electricity); see minfer.perf.hardware for each basis and source.",
    "$ per M tok: the whole run's time (prefill + decode) divided by the output tokens of the "
    "batch; TTFT = prefill time; TPOT = decode time / (output tokens - 1).",
)


@dataclass(frozen=True)
class Projection:
    """The roofline bound of one generation on one chip type. Times in seconds, BOUNDS not measured.

    `batch` sequences each get `prompt_tokens` of prompt and `output_tokens` new tokens (the
    first from prefill, then `output_tokens - 1` decode steps). With a single output token there
    is no decode step: tpot_s, tokens_per_s and tokens_per_s_per_watt are None.
    """

    hardware: str  # catalog name, "h100-sxm"
    hardware_label: str  # "NVIDIA H100 SXM5 80GB"
    arch: str  # "llama-3-8b"
    dtype: str  # bytes per stored weight, and (with its fallback) the peak used
    kv_dtype: str  # bytes per cached key or value
    peak_dtype: str  # the dtype whose peak was used (a 16-bit twin if dtype is unpublished)
    prompt_tokens: int
    output_tokens: int
    batch: int
    chips: int  # chips needed to hold weights + the whole batch's KV cache (ideal multi-chip)
    memory_bytes: int  # weights + KV cache at the end of generation, the batch together
    weight_bytes: int
    peak_flops: float  # FLOP/s of all the chips together
    bandwidth: float  # bytes/s of all the chips together
    prefill_flops: int
    prefill_bytes: int
    prefill_compute_s: float  # prefill FLOPs / peak
    prefill_memory_s: float  # prefill bytes / bandwidth
    prefill_s: float  # the larger of the two
    prefill_limit: str  # "compute" | "memory"
    decode_steps: int  # output_tokens - 1
    decode_flops: int  # summed over the steps
    decode_bytes: int
    decode_compute_s: float  # summed FLOPs / peak
    decode_memory_s: float  # summed bytes / bandwidth
    decode_s: float  # sum over steps of each step's max(compute, memory)
    decode_limit: str | None  # the larger of the two sums; None without a decode step
    ttft_s: float  # time to first token = prefill_s
    tpot_s: float | None  # time per output token = decode_s / decode_steps
    tokens_per_s: float | None  # batch / tpot_s: aggregate decode throughput
    power_w: float | None  # board power of all the chips; None if unpublished
    tokens_per_s_per_watt: float | None
    price_per_hour: float  # USD per hour of all the chips (an assumption)
    usd_per_million_tokens: float  # per output token
    notes: tuple[str, ...] = ()  # fallbacks and warnings (a context longer than the arch's)

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field (notes as a list)."""
        return asdict(self) | {"notes": list(self.notes)}


class Projections(list):
    """A list of `Projection`, plus `skipped`: hardware name -> why it has no projection."""

    def __init__(self, projections=(), skipped: dict[str, str] | None = None):
        super().__init__(projections)
        self.skipped: dict[str, str] = dict(skipped or {})


# --- resolving the inputs -------------------------------------------------------------------------


def _check_count(name: str, value) -> int:
    """value as a positive int, or an InvalidInputError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(
            f"{name}={value!r} is not allowed: it must be a positive integer "
            f"(a number of tokens or sequences), e.g. {name}=1"
        )
    return int(value)


def _check_dtype(dtype) -> str:
    if dtype not in DTYPE_SIZES:
        raise InvalidInputError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_SIZES)}")
    return dtype


def resolve_arch(model_or_arch) -> Arch:
    """An `Arch` as is, a name from `ARCHS`, the shape of a loaded minfer `Model`, or of a config
    (GPT-2's `Config`, a `LlamaConfig`, or a config.json dict)."""
    if isinstance(model_or_arch, Arch):
        return model_or_arch
    if isinstance(model_or_arch, (Config, LlamaConfig, dict)):
        return Arch.from_config(model_or_arch)
    if isinstance(model_or_arch, str):
        if model_or_arch not in ARCHS:
            raise InvalidInputError(
                f"unknown arch {model_or_arch!r}: the known names are {', '.join(ARCHS)} (or pass a loaded model)"
            )
        return ARCHS[model_or_arch]
    if hasattr(model_or_arch, "config") and hasattr(model_or_arch, "weights"):
        return Arch.from_model(model_or_arch)
    raise InvalidInputError(
        f"cannot project a {type(model_or_arch).__name__}: pass an Arch, "
        f"an arch name ({', '.join(ARCHS)}), a config or a loaded minfer Model"
    )


def resolve_hardware(hardware: Hardware | str) -> Hardware:
    """A `Hardware` as is, or a name; "this-machine" is built from the ceilings `minfer calibrate` cached."""
    if isinstance(hardware, Hardware):
        return hardware
    if isinstance(hardware, str) and hardware.strip().lower() == THIS_MACHINE:
        from minfer.perf.calibrate import load_ceilings  # imports numba: only when asked for

        cached = load_ceilings()
        if cached is None:
            raise InvalidInputError(
                f"{THIS_MACHINE!r} needs this machine's measured ceilings and "
                f"none are cached: run `minfer calibrate` first"
            )
        return get_hardware(THIS_MACHINE, cached)
    return get_hardware(hardware)


def peak_dtype(hw: Hardware, dtype: str) -> str:
    """The dtype whose peak `hw` runs `dtype` at: dtype itself, else its 16-bit twin, else an error.

    bfloat16 and float16 stand in for each other (a TPU publishes only bfloat16, a Groq chip only
    float16): same bytes per number, and the same rate on every chip that publishes both. int8
    and fp8 use their own peaks (matrix units multiplying 8-bit numbers). A CPU that publishes
    only float32 widens narrow weights as it reads them and runs at its float32 peak (the bytes
    read stay narrow: that is where its speed-up comes from). Anything else a chip lacks raises
    the hardware's InvalidInputError, which lists what it has.

    Example:
        >>> peak_dtype(get_hardware("tpu-v4"), "float16")
        'bfloat16'
    """
    if dtype in hw.peak_tflops:
        return dtype
    twin = _TWIN_DTYPE.get(dtype)
    if twin in hw.peak_tflops:
        return twin
    if hw.kind == "cpu" and "float32" in hw.peak_tflops:
        return "float32"  # a CPU stores narrow weights and computes in float32, as minfer does
    hw.peak_flops(dtype)  # raises, naming the dtypes the chip has
    return dtype  # unreachable


def projected_arch(arch: Arch, dtype: str, kv_dtype: str | None = None) -> Arch:
    """`arch` stored as `dtype` (KV cache as kv_dtype, default dtype), activations 16-bit below float32.

    Activations between ops are kept in a 16-bit float for every dtype narrower than float32
    (int8 and fp8 matrix units are fed activations quantized on the fly); only a float32 run
    keeps them in float32, as minfer itself does.
    """
    stored = arch.with_dtype(dtype, kv_dtype)  # validates both dtype names
    return replace(stored, act_size=4 if dtype == "float32" else 2)


def chips_needed(arch: Arch, hw: Hardware, n_positions: int, batch: int) -> tuple[int, int]:
    """(chips, bytes): how many chips hold the weights plus `batch` caches of n_positions each."""
    need = arch.weight_bytes() + batch * n_positions * arch.kv_bytes_per_token()
    return max(1, math.ceil(need / (hw.memory_gb * 1e9))), need


# --- the decode sum ---------------------------------------------------------------------------------


def _minus(a: Cost, b: Cost) -> Cost:
    return Cost(*(getattr(a, f.name) - getattr(b, f.name) for f in fields(Cost)))


def _series(c0: Cost, dc: Cost, start: int, stop: int) -> Cost:
    """sum of (c0 + i dc) for i in [start, stop), exactly: n c0 + dc (start + stop - 1) n / 2."""
    n = stop - start
    return c0 * n + dc * ((start + stop - 1) * n // 2)  # one of the two factors is even


def _bound_s(c: Cost, peak: float, bandwidth: float) -> float:
    return max(c.flops / peak, c.bytes / bandwidth)


def decode_sum(
    arch: Arch, prompt_tokens: int, n_steps: int, batch: int, peak: float, bandwidth: float
) -> tuple[Cost, float]:
    """(summed Cost, summed per-step bound in s) of n_steps decode steps, in closed form.

    Step i = 0 .. n_steps - 1 runs after n_past = prompt_tokens + i cached positions. Every
    field of `decode_cost` is affine in n_past (attention reads and multiplies one more key per
    step; the weights and activations do not change), so with c0 = cost(step 0) and
    dc = cost(step 1) - c0, step i costs c0 + i dc, and a run of steps sums as an arithmetic
    series. The two bounds, t_c(i) = flops(i) / peak and t_m(i) = bytes(i) / bandwidth, are
    affine too, so t_c - t_m changes sign at most once, at i* = -(t_c(0) - t_m(0)) / slope.
    On each side of i* one bound wins at every step, and the sum of the per-step maxima is the
    max of the two sums there. Two calls to decode_cost instead of n_steps: `decode_sum_stepwise`
    is the readable loop it must equal (tests/test_whatif.py).
    """
    if n_steps == 0:
        return Cost(), 0.0
    c0 = decode_cost(arch, prompt_tokens, batch)
    dc = _minus(decode_cost(arch, prompt_tokens + 1, batch), c0)
    gap0 = c0.flops / peak - c0.bytes / bandwidth  # t_c - t_m at step 0, and its slope:
    slope = dc.flops / peak - dc.bytes / bandwidth
    split = 0 if slope == 0 else min(n_steps, max(0, math.ceil(-gap0 / slope)))
    parts = [_series(c0, dc, a, b) for a, b in ((0, split), (split, n_steps)) if b > a]
    return sum(parts, Cost()), sum(_bound_s(p, peak, bandwidth) for p in parts)


def decode_sum_stepwise(
    arch: Arch, prompt_tokens: int, n_steps: int, batch: int, peak: float, bandwidth: float
) -> tuple[Cost, float]:
    """The same as `decode_sum`, one `decode_cost` per step: the reference (slow on big models)."""
    steps = [decode_cost(arch, prompt_tokens + i, batch) for i in range(n_steps)]
    return sum(steps, Cost()), sum(_bound_s(c, peak, bandwidth) for c in steps)


# --- one projection ---------------------------------------------------------------------------------


def _limit(compute_s: float, memory_s: float) -> str:
    return "compute" if compute_s > memory_s else "memory"


def _notes(arch: Arch, hw: Hardware, dtype: str, used: str, n_positions: int, chips: int) -> tuple[str, ...]:
    notes = []
    if used != dtype:
        why = "computes in float32, weights read as stored" if used == "float32" else "same bytes per number"
        notes.append(f"{hw.name}: no published {dtype} peak, used its {used} peak ({why})")
    if n_positions > arch.n_ctx:
        notes.append(
            f"prompt + output = {n_positions} positions exceeds {arch.name or 'the arch'}'s "
            f"context of {arch.n_ctx}: hypothetical"
        )
    if chips > _FEW_CHIPS:
        notes.append(
            f"{hw.name}: {chips} chips, ideal: on this many, communication between chips "
            f"limits real systems, and this bound ignores it"
        )
    elif chips > 1:
        notes.append(f"{hw.name}: {chips} chips, ideal (peak and bandwidth add up, communication is free)")
    return tuple(notes)


def _phases(pre: Cost, dec: Cost, decode_s: float, n_steps: int, peak: float, bandwidth: float) -> dict:
    """The time fields of a Projection: each phase's two bounds, the binding one, TTFT and TPOT."""
    pre_c, pre_m = pre.flops / peak, pre.bytes / bandwidth
    dec_c, dec_m = dec.flops / peak, dec.bytes / bandwidth
    return dict(
        prefill_flops=pre.flops,
        prefill_bytes=pre.bytes,
        prefill_compute_s=pre_c,
        prefill_memory_s=pre_m,
        prefill_s=max(pre_c, pre_m),
        prefill_limit=_limit(pre_c, pre_m),
        decode_steps=n_steps,
        decode_flops=dec.flops,
        decode_bytes=dec.bytes,
        decode_compute_s=dec_c,
        decode_memory_s=dec_m,
        decode_s=decode_s,
        decode_limit=_limit(dec_c, dec_m) if n_steps else None,
        ttft_s=max(pre_c, pre_m),
        tpot_s=decode_s / n_steps if n_steps else None,
    )


def _economics(hw: Hardware, chips: int, batch: int, output_tokens: int, t: dict) -> dict:
    """The rate and money fields of a Projection, from its time fields `t`."""
    tokens_per_s = batch / t["tpot_s"] if t["tpot_s"] else None
    power = hw.power_w * chips if hw.power_w is not None else None
    price = hw.price_per_hour * chips  # USD/h: the chips are paid for while they work
    hours = (t["prefill_s"] + t["decode_s"]) / 3600
    return dict(
        tokens_per_s=tokens_per_s,
        power_w=power,
        tokens_per_s_per_watt=tokens_per_s / power if tokens_per_s and power else None,
        price_per_hour=price,
        usd_per_million_tokens=price * hours / (batch * output_tokens) * 1e6,
    )


def project(
    model_or_arch,
    hardware: Hardware | str,
    dtype: str = "bfloat16",
    prompt_tokens: int = 512,
    output_tokens: int = 256,
    batch: int = 1,
    kv_dtype: str | None = None,
) -> Projection:
    """The roofline bound of generating on `hardware`: TTFT, TPOT, tokens/s, tokens/s per W, $/M tok.

    `model_or_arch`: an `Arch`, a name from `minfer.perf.counts.ARCHS`, a loaded `Model` (GPT-2 or
    the Llama family), or a config (`Config`, `LlamaConfig`, a config.json dict).
    `hardware`: a `Hardware` or a name for `get_hardware` ("this-machine": the cached ceilings).
    `dtype` is how weights are stored and which peak is used (see `peak_dtype`); `kv_dtype`,
    the KV cache's (default: dtype). These are BOUNDS: see the module docstring's caveats.

    Example:
        >>> p = project("llama-3-8b", "h100-sxm", batch=8)
        >>> p.prefill_limit, p.decode_limit
        ('compute', 'memory')
    """
    prompt_tokens = _check_count("prompt_tokens", prompt_tokens)
    output_tokens = _check_count("output_tokens", output_tokens)
    batch = _check_count("batch", batch)
    hw = resolve_hardware(hardware)
    arch = projected_arch(resolve_arch(model_or_arch), dtype, kv_dtype)
    used = peak_dtype(hw, dtype)
    n_positions = prompt_tokens + output_tokens  # the cache at the end (the last token's slot reserved)
    chips, memory_bytes = chips_needed(arch, hw, n_positions, batch)
    peak, bandwidth = chips * hw.peak_flops(used), chips * hw.bandwidth_gbs * 1e9  # ideal: they add up
    n_steps = output_tokens - 1  # the first output token comes out of prefill
    dec, decode_s = decode_sum(arch, prompt_tokens, n_steps, batch, peak, bandwidth)
    t = _phases(prefill_cost(arch, prompt_tokens, batch), dec, decode_s, n_steps, peak, bandwidth)
    return Projection(
        hardware=hw.name,
        hardware_label=hw.label,
        arch=arch.name,
        dtype=dtype,
        kv_dtype=kv_dtype or dtype,
        peak_dtype=used,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        batch=batch,
        chips=chips,
        memory_bytes=memory_bytes,
        weight_bytes=arch.weight_bytes(),
        peak_flops=peak,
        bandwidth=bandwidth,
        **t,
        **_economics(hw, chips, batch, output_tokens, t),
        notes=_notes(arch, hw, dtype, used, n_positions, chips),
    )


def default_hardware() -> list[str]:
    """Every catalog chip, plus this machine when `minfer calibrate` has cached its ceilings."""
    from minfer.perf.calibrate import load_ceilings  # imports numba: only when asked for

    return [*CATALOG, *([THIS_MACHINE] if load_ceilings() is not None else [])]


def project_many(model_or_arch, hardware_names: list[str] | None = None, **kw) -> Projections:
    """`project` on every chip named (default: `default_hardware()`), in order.

    A chip with no peak for the dtype is skipped, not an error: its reason lands in the
    result's `skipped` dict. Any other bad input (an unknown name, batch=0) still raises.

    Example:
        >>> ps = project_many("gpt2", ["h100-sxm", "ryzen-7840u"])   # the laptop has no bf16 peak
        >>> [p.hardware for p in ps], list(ps.skipped)
        (['h100-sxm'], ['ryzen-7840u'])
    """
    _check_dtype(kw.get("dtype", "bfloat16"))  # a typo must not read as "no chip has it"
    names = default_hardware() if hardware_names is None else list(hardware_names)
    out = Projections()
    for name in names:
        hw = resolve_hardware(name)
        try:
            peak_dtype(hw, kw.get("dtype", "bfloat16"))
        except InvalidInputError:
            out.skipped[hw.name] = (
                f"no published {kw.get('dtype', 'bfloat16')} peak (it has: {', '.join(hw.peak_tflops)})"
            )
            continue
        out.append(project(model_or_arch, hw, **kw))
    return out


# --- the table ----------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return fmt(None if seconds is None else 1e3 * seconds)


def _row(p: Projection) -> list[str]:
    return [
        p.hardware,
        str(p.chips),
        f"{_ms(p.prefill_s)} ({p.prefill_limit})",
        _ms(p.ttft_s),
        _ms(p.tpot_s) + ("" if p.decode_limit is None else f" ({p.decode_limit})"),
        fmt(p.tokens_per_s),
        fmt(p.tokens_per_s_per_watt),
        fmt(p.usd_per_million_tokens),
    ]


def _line(cells: list[str], widths: list[int]) -> str:
    """One row of the table: the first column left-aligned, the numbers right-aligned."""
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()


def _setting(projections: list[Projection]) -> str:
    """ "gpt2, weights bfloat16, ..., batch 1": what the rows project (each distinct value once)."""

    def v(key: str) -> str:
        return ", ".join(dict.fromkeys(str(getattr(p, key)) for p in projections))

    return (
        f"{v('arch')}, weights {v('dtype')}, KV cache {v('kv_dtype')}, prompt {v('prompt_tokens')} "
        f"tokens, output {v('output_tokens')} tokens, batch {v('batch')}"
    )


def whatif_table(projections: list[Projection]) -> str:
    """A plain-text table of projections, titled as bounds, with the assumptions underneath.

    Columns: hardware | chips | prefill ms (limit) | TTFT ms | TPOT ms (limit) | tok/s |
    tok/s per W | $ per M tok. A `Projections` also lists the chips it skipped.
    """
    head = [
        "hardware",
        "chips",
        "prefill ms (limit)",
        "TTFT ms",
        "TPOT ms (limit)",
        "tok/s",
        "tok/s per W",
        "$ per M tok",
    ]
    rows = [_row(p) for p in projections]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = [
        f"{TITLE}: " + (_setting(projections) if projections else "no projections"),
        *(_line(r, widths) for r in [head, ["-" * w for w in widths], *rows]),
        "",
        "Assumptions:",
    ]
    out += [f"- {a}" for a in ASSUMPTIONS]
    notes = list(dict.fromkeys(n for p in projections for n in p.notes))
    skipped = getattr(projections, "skipped", {})
    out += (["Notes:"] + [f"- {n}" for n in notes]) if notes else []
    out += (["Skipped:"] + [f"- {name}: {why}" for name, why in skipped.items()]) if skipped else []
    return "\n".join(out)


# --- the command line (wired into `minfer whatif` by minfer.cli) -----------------------------------


def add_whatif_arguments(parser: argparse.ArgumentParser) -> None:
    """The `minfer whatif` options: what to project (--arch or --model), where, and the workload."""
    which = parser.add_mutually_exclusive_group()
    # default None, not "gpt2": argparse lets a default-equal value through a mutually exclusive group
    which.add_argument(
        "--arch",
        default=None,
        choices=list(ARCHS),
        metavar="NAME",
        help=f"a model shape to project: {', '.join(ARCHS)} (default gpt2)",
    )
    which.add_argument(
        "--model",
        default=None,
        metavar="DIR_OR_NAME",
        help="project this checkpoint's shape instead (a directory, a Hub name or a config.json file; only "
        "the config is read: GPT-2 or the Llama family)",
    )
    parser.add_argument(
        "--hardware",
        default=None,
        metavar="A,B,C",
        help=f"comma-separated chips (default: all of {', '.join(CATALOG)}, and "
        f"{THIS_MACHINE} if `minfer calibrate` has run)",
    )
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=list(DTYPE_SIZES),
        help="bytes per stored weight, and the peak used (default bfloat16)",
    )
    parser.add_argument(
        "--kv-dtype", default=None, choices=list(DTYPE_SIZES), help="bytes per cached key or value (default: --dtype)"
    )
    parser.add_argument("--prompt", type=int, default=512, metavar="N", help="prompt tokens (default 512)")
    parser.add_argument(
        "--output",
        type=int,
        default=256,
        metavar="N",
        help="output tokens per sequence, the first from prefill (default 256)",
    )
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="sequences at once (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def arch_of_model_dir(path_or_name: str) -> Arch:
    """The `Arch` of a checkpoint directory or Hub name, from its config.json (weights not read),
    or of a config.json file given by its path. GPT-2 and the Llama family (`config_from_hf`)."""
    from pathlib import Path

    from minfer.checkpoints.loading import read_config, read_json_object, resolve_model_dir

    path = Path(path_or_name).expanduser()
    if path.suffix == ".json" and path.is_file():
        return Arch.from_config(read_json_object(path), str(path_or_name))
    return Arch.from_config(read_config(resolve_model_dir(path_or_name)), str(path_or_name))


def _hardware_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidInputError(f"--hardware {text!r} names no chip: give e.g. --hardware h100-sxm,mi300x")
    return names


def run_whatif(args: argparse.Namespace) -> None:
    """`minfer whatif`: print the projections as a table, or with --json as one JSON object."""
    model = getattr(args, "model", None)
    arch = arch_of_model_dir(model) if model else resolve_arch(getattr(args, "arch", None) or "gpt2")
    projections = project_many(
        arch,
        _hardware_list(getattr(args, "hardware", None)),
        dtype=args.dtype,
        kv_dtype=getattr(args, "kv_dtype", None),
        prompt_tokens=args.prompt,
        output_tokens=args.output,
        batch=args.batch,
    )
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "title": TITLE,
                    "projections": [p.to_dict() for p in projections],
                    "skipped": projections.skipped,
                    "assumptions": list(ASSUMPTIONS),
                },
                indent=2,
            )
        )
    else:
        print(whatif_table(projections))
