"""Train minfer's classroom model: a small GPT-2 on the King James Bible, on the CPU.

Needs the `ref` extra (torch==2.13.0 CPU, transformers) plus matplotlib for the loss curve:
    pip install -e ".[ref]" matplotlib
    python weights/recipes/prepare_corpus.py          # -> data/kjv/train.txt, heldout.txt
    python weights/recipes/train_tokenizer.py         # -> weights/classroom/tokenizer.tiktoken
    python weights/recipes/train_classroom.py         # -> weights/classroom/{config.json, model.safetensors, ...}

Seeded; logs train and held-out loss as it goes; saves in Hugging Face GPT-2 format (float32), so
both minfer and transformers.GPT2LMHeadModel.from_pretrained read the result. The final held-out
loss is computed exactly as minfer.perplexity computes it (consecutive chunks of n_ctx tokens),
on the saved weights, so the two numbers can be compared.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from minfer.tokenizer import END_OF_TEXT, Tokenizer

ROOT = Path(__file__).resolve().parents[2]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the classroom GPT-2 on the CPU.")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "kjv")
    p.add_argument("--out", type=Path, default=ROOT / "weights" / "classroom")
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-ctx", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--measure", type=int, default=0, help="only time this many steps and exit")
    return p.parse_args()


def learning_rate(step: int, a: argparse.Namespace) -> float:
    """Linear warmup, then cosine decay from lr to min_lr."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    progress = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * progress))


def batch(tokens: torch.Tensor, n_ctx: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of n_ctx + 1 tokens: inputs [size, n_ctx], targets shifted by one."""
    starts = torch.randint(0, len(tokens) - n_ctx - 1, (size,), generator=gen)
    windows = torch.stack([tokens[s : s + n_ctx + 1] for s in starts.tolist()])  # [size, n_ctx + 1]
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def chunked_loss(model: GPT2LMHeadModel, tokens: torch.Tensor, n_ctx: int) -> float:
    """Mean loss over consecutive n_ctx chunks, as minfer.perplexity computes it."""
    total, count = 0.0, 0
    for begin in range(0, len(tokens), n_ctx):
        piece = tokens[begin : begin + n_ctx]
        if len(piece) < 2:
            continue
        logits = model(piece[None, :-1]).logits[0].double()  # [len - 1, n_vocab]
        total += F.cross_entropy(logits, piece[1:], reduction="sum").item()
        count += len(piece) - 1
    return total / count


@torch.no_grad()
def sample_loss(model, tokens, n_ctx, gen, n_batches=8, size=16) -> float:
    """A quick held-out estimate on fixed random windows, for the log."""
    losses = []
    for _ in range(n_batches):
        x, y = batch(tokens, n_ctx, size, gen)
        losses.append(F.cross_entropy(model(x).logits.flatten(0, 1), y.flatten()).item())
    return float(np.mean(losses))


def main() -> None:
    a = parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    tok = Tokenizer.from_file(a.out / "tokenizer.tiktoken")
    eot = tok.special_tokens[END_OF_TEXT]
    t0 = time.time()
    train = torch.tensor(tok.encode((a.data / "train.txt").read_text(), allow_special=False))
    heldout = torch.tensor(tok.encode((a.data / "heldout.txt").read_text(), allow_special=False))
    print(f"tokens: train {len(train):,}, held-out {len(heldout):,} (encoded in {time.time() - t0:.1f}s)")

    cfg = GPT2Config(
        n_layer=a.n_layer,
        n_head=a.n_head,
        n_embd=a.n_embd,
        n_positions=a.n_ctx,
        vocab_size=tok.n_vocab,
        bos_token_id=eot,
        eos_token_id=eot,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {a.n_layer} layers, {a.n_head} heads, width {a.n_embd}, ctx {a.n_ctx}, "
        f"vocab {tok.n_vocab}: {n_params:,} parameters"
    )
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(a.seed)
    eval_gen_seed = a.seed + 1
    log = {"step": [], "train_loss": [], "heldout_loss": [], "seconds": []}
    start, recent = time.time(), []
    steps = a.measure or a.steps
    for step in range(steps):
        model.train()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, a)
        x, y = batch(train, a.n_ctx, a.batch, gen)
        loss = F.cross_entropy(model(x).logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent.append(loss.item())
        if a.measure:
            print(f"step {step}: {time.time() - start:.1f}s")
            continue
        if (step + 1) % a.eval_every == 0 or step + 1 == steps:
            model.eval()
            held = sample_loss(model, heldout, a.n_ctx, torch.Generator().manual_seed(eval_gen_seed))
            log["step"].append(step + 1)
            log["train_loss"].append(float(np.mean(recent)))
            log["heldout_loss"].append(held)
            log["seconds"].append(time.time() - start)
            print(
                f"step {step + 1}/{steps}  train {np.mean(recent):.3f}  held-out {held:.3f}  "
                f"lr {learning_rate(step, a):.2e}  {time.time() - start:.0f}s",
                flush=True,
            )
            recent = []
    if a.measure:
        return
    wall = time.time() - start
    model.eval()
    model.save_pretrained(a.out, safe_serialization=True)
    (a.out / "generation_config.json").unlink(missing_ok=True)
    final = {
        "n_params": n_params,
        "steps": steps,
        "batch": a.batch,
        "n_ctx": a.n_ctx,
        "tokens_seen": steps * a.batch * a.n_ctx,
        "train_tokens": len(train),
        "heldout_tokens": len(heldout),
        "wall_seconds": wall,
        "seed": a.seed,
        "lr": a.lr,
        "min_lr": a.min_lr,
        "warmup": a.warmup,
        "weight_decay": a.weight_decay,
        "threads": a.threads,
        "final_train_loss": log["train_loss"][-1],
        "heldout_loss_chunked": chunked_loss(model, heldout, a.n_ctx),
        "torch": torch.__version__,
        "log": log,
    }
    (a.out / "training.json").write_text(json.dumps(final, indent=2) + "\n")
    plot(log, a.out / "loss.png")
    print(json.dumps({k: v for k, v in final.items() if k != "log"}, indent=2))


def plot(log: dict, path: Path, title: str = "classroom GPT-2 on the King James Bible") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(log["step"], log["train_loss"], label="train (mean since last point)")
    ax.plot(log["step"], log["heldout_loss"], label="held-out (sampled windows)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
