"""Draw the Performance page's figure from a `peers.py --json-out` result.

    python benchmarks/plot_peers.py benchmarks/results/peers-2026-11-27.json docs/img/performance-peers.png

Bars: each system's measured tokens/s; ticks: its roofline bound from the ceilings measured in
the same run (the best of the start, middle and end measurements, as the tables use).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minfer.plots import save_figure
from minfer.plots.bench import benchmark_bars


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("results", type=Path, help="JSON written by benchmarks/peers.py --json-out")
    cli.add_argument("out", type=Path, help="the figure, .png or .svg")
    args = cli.parse_args()
    data = json.loads(args.results.read_text())
    ceilings = {
        "peak_gflops": max(c["sgemm_gflops"] for c in data["ceilings"]),
        "bandwidth_gbs": max(c["bandwidth_gbs"] for c in data["ceilings"]),
    }
    title = f"GPT-2 124M shape, {data['threads']} threads, {data['started'][:10]}: tokens/s (bars), roofline bound (|)"
    print(save_figure(benchmark_bars(data["summary"], ceilings, title=title), args.out))


if __name__ == "__main__":
    main()
