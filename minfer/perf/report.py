"""The profiler's tables, drawn with rich: each phase against this machine's ceilings, then the
ops that took the most time. Input is `Profiler.to_dict(ceilings)`, so a saved JSON profile can
be rendered again later."""

from __future__ import annotations

import io
import math
from collections import defaultdict

from rich.console import Console
from rich.table import Table

from minfer.perf.profile import SweepRow


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with `digits` significant digits, thousands separated; "-" for None."""
    if x is None:
        return "-"
    if x == 0 or abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def sweep_line(row: SweepRow) -> str:
    """One decode batch-sweep point (`profiler.decode_sweep`) as a line of text."""
    return (
        f"sweep: batch {row.batch:>3}: decode {row.tokens_per_s:,.0f} tok/s, "
        f"{row.intensity:.2f} FLOP/B, {row.bytes / (row.seconds or math.inf) / 1e9:.1f} GB/s"
    )


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def phase_table(data: dict) -> Table:
    """Per phase: tokens, GFLOP, MB moved, FLOP/byte, time, rates and the share of the ceilings."""
    t = Table(title="phases (counted FLOPs and bytes, measured time)", title_justify="left")
    for col in (
        "phase",
        "calls",
        "tokens",
        "GFLOP",
        "MB moved",
        "FLOP/B",
        "ms",
        "ms/token",
        "GFLOP/s",
        "GB/s",
        "% peak",
        "% BW",
    ):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for name, p in data["phases"].items():
        if not p["calls"]:
            continue
        t.add_row(
            name,
            str(p["calls"]),
            str(p["tokens"]),
            fmt(p["flops"] / 1e9),
            fmt(p["bytes"] / 1e6),
            fmt(p["flop_per_byte"]),
            fmt(1e3 * p["seconds"]),
            fmt(1e3 * p["seconds"] / p["tokens"]),
            fmt(p["gflops"]),
            fmt(p["gbs"]),
            pct(p.get("share_of_peak")),
            pct(p.get("share_of_bandwidth")),
        )
    return t


def op_table(data: dict, top: int) -> Table:
    """The `top` ops by time in each phase, summed over layers."""
    t = Table(title=f"top {top} ops per phase by time (summed over layers)", title_justify="left")
    for col in ("phase", "op", "ms", "% of phase", "GFLOP", "MB moved", "FLOP/B", "GFLOP/s", "GB/s"):
        t.add_column(col, justify="left" if col in ("phase", "op") else "right")
    for phase, ops in by_op(data["ops"]).items():
        total = data["phases"][phase]["seconds"]
        for op, s in sorted(ops.items(), key=lambda kv: -kv[1]["seconds"])[:top]:
            sec = s["seconds"]
            t.add_row(
                phase,
                op,
                fmt(1e3 * sec),
                pct(sec / total if total else None),
                fmt(s["flops"] / 1e9),
                fmt(s["bytes"] / 1e6),
                fmt(s["flops"] / s["bytes"] if s["bytes"] else None),
                fmt(s["flops"] / sec / 1e9 if sec > 0 and s["flops"] else None),
                fmt(s["bytes"] / sec / 1e9 if sec > 0 and s["bytes"] else None),
            )
    return t


def by_op(ops: list[dict]) -> dict[str, dict[str, dict]]:
    """{phase: {op: {"flops", "bytes", "seconds"}}}, summed over layers (timed rows only)."""
    out: dict = defaultdict(lambda: defaultdict(lambda: {"flops": 0, "bytes": 0, "seconds": 0.0}))
    for r in ops:
        if r["seconds"] is None:
            continue
        s = out[r["phase"]][r["op"]]
        s["flops"] += r["flops"]
        s["bytes"] += r["bytes"]
        s["seconds"] += r["seconds"]
    return out


def bytes_line(data: dict) -> str:
    """Where one decode token's bytes come from: weights, the KV cache, activations."""
    p = data["phases"].get("decode")
    if not p or not p["tokens"]:
        return ""
    n = p["tokens"]
    return (
        f"decode bytes per token: weights {fmt(p['weight_bytes'] / n / 1e6)} MB + KV cache "
        f"{fmt((p['kv_read'] + p['kv_write']) / n / 1e6)} MB + activations "
        f"{fmt((p['act_read'] + p['act_write']) / n / 1e6)} MB"
    )


def ceilings_line(data: dict) -> str:
    c = data.get("ceilings")
    if not c:
        return "no ceilings measured yet: run `minfer calibrate` to see the share of this machine's peak"
    ridge = c["peak_gflops"] / c["bandwidth_gbs"]
    return (
        f"this machine (minfer calibrate, {c.get('measured_at', '?')[:16]}): float32 matmul peak "
        f"{fmt(c['peak_gflops'])} GFLOP/s, memory read {fmt(c['bandwidth_gbs'])} GB/s; ridge point "
        f"{fmt(ridge)} FLOP/B (below it a phase is memory-bound)"
    )


def render_report(data: dict, top: int = 8, width: int = 118) -> str:
    """The whole report as plain text."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    model = data.get("model") or {}
    console.print(
        f"model {model.get('name', '?')}: {model.get('n_params', 0):,} parameters, "
        f"{fmt(model.get('weight_bytes', 0) / 1e6)} MB of {model.get('weight_dtype', '')} weights, "
        f"backend {model.get('backend', '?')}"
    )
    console.print(phase_table(data))
    for line in (bytes_line(data), ceilings_line(data)):
        if line:
            console.print(line)
    if data["mode"] == "ops":
        console.print(op_table(data, top))
        if model.get("backend") == "numba":
            console.print(
                "backend numba: a step runs in compiled kernels the profiler cannot see into, "
                "so its time shows as 'other' (the counts above are the same as numpy's)"
            )
        untimed = ", the token embedding's gather and the RoPE tables" if model.get("family") == "llama" else ""
        console.print(
            "op 'residual' is the residual adds plus reshapes between ops; 'other' is the "
            f"call's own work (checks, cache bookkeeping{untimed}). Per-op timing costs a few us per op: "
            "Profiler(ops=False) times phases only."
        )
    s = data.get("sampling", {})
    if s.get("calls"):
        console.print(f"sampling: {s['calls']} calls, {fmt(1e3 * s['seconds'])} ms in total (not in the phases)")
    return out.getvalue()
