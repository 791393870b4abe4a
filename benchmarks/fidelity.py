"""How close minfer is to transformers on the fixture checkpoints (a table and a JSON line).

    python benchmarks/fidelity.py

Max |minfer - transformers| / max |transformers| over the logits of the fixture sequence, for the
uncached forward pass and for prefill + teacher-forced decode through the KV cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import minfer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import FIXTURES, MODELS, reference, relative_diff  # noqa: E402


def measure(name: str) -> dict:
    model, ref = minfer.load_model(FIXTURES / name), reference(name)
    forward = relative_diff(model.forward(ref["ids"]), ref["logits"])
    cache = model.new_cache()
    rows = [model.prefill(ref["ids"][:5], cache)] + [model.decode(int(t), cache) for t in ref["ids"][5:]]
    cached = relative_diff(np.stack(rows), ref["logits"][4:])
    g = minfer.generate(model, ref["greedy_prompt"], len(ref["greedy_tokens"]), stop_tokens=())
    return {
        "model": name,
        "forward": forward,
        "prefill_decode": cached,
        "greedy_identical": g.tokens == ref["greedy_tokens"].tolist(),
    }


def main() -> None:
    rows = [measure(name) for name in MODELS]
    print(f"{'model':<18} {'forward':>10} {'prefill+decode':>15} {'greedy 32':>10}")
    for r in rows:
        print(
            f"{r['model']:<18} {r['forward']:>10.1e} {r['prefill_decode']:>15.1e} "
            f"{'identical' if r['greedy_identical'] else 'DIFFERS':>10}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
