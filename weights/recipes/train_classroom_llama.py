"""Train classroom-llama: a small Llama-architecture model on the King James Bible, on the CPU
(issue 14, item 7). The same corpus and 4,096-token tokenizer as the GPT-2 classroom model, so
the two compare directly.

    pip install -e ".[ref]" matplotlib
    python weights/recipes/prepare_corpus.py                       # -> data/kjv/train.txt, heldout.txt
    nohup python weights/recipes/train_classroom_llama.py >> runs/classroom-llama/train.log 2>&1 &

The architecture is what issue 14 teaches: grouped-query attention (8 query heads share 2 KV
heads), RoPE, a SwiGLU MLP, RMSNorm, tied embeddings; 6 layers x 384, context 512, about 11M
parameters. Training takes hours on two cores, longer than one session, so it checkpoints:
every `--save-every` steps it writes the model, the optimizer, the step, the random generator
and the log to `--run` (a training-only checkpoint, never read by minfer), and a restart with the
same command resumes from there. At the end it saves the model in Hugging Face Llama format
(`--out`) with its held-out loss computed as minfer.perplexity computes it (consecutive
n_ctx chunks), and training.json. Overfitting guard: the 1M-token corpus is seen about
`steps x batch x n_ctx / 1M` times; the sampled held-out loss is logged as training goes, and
the checkpoint with the lowest one is kept as `best.pt`, which the final export uses.
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

# the GPT-2 classroom recipe beside this one: the same schedule, batches and held-out losses
from train_classroom import batch, chunked_loss, learning_rate, plot  # weights/recipes/ is on sys.path
from train_classroom import sample_loss as sampled_windows_loss
from transformers import LlamaConfig, LlamaForCausalLM

from minfer.tokenizer import END_OF_TEXT, Tokenizer

ROOT = Path(__file__).resolve().parents[2]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train classroom-llama on the CPU, resumably.")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "kjv")
    p.add_argument("--tokenizer", type=Path, default=ROOT / "weights" / "classroom" / "tokenizer.tiktoken")
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "classroom-llama", help="checkpoints and log")
    p.add_argument("--out", type=Path, default=ROOT / "weights" / "classroom-llama")
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-head", type=int, default=8)
    p.add_argument("--n-kv-head", type=int, default=2)
    p.add_argument("--n-embd", type=int, default=384)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--n-ctx", type=int, default=512)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.1, help="attention dropout: a small corpus overfits")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--export-only",
        action="store_true",
        help="export best.pt as it is now (training may still be running) and stop",
    )
    return p.parse_args()


def sample_loss(model, tokens: torch.Tensor, n_ctx: int, seed: int) -> float:
    """A held-out estimate on the same fixed random windows every time (8 batches of 8), for the log."""
    return sampled_windows_loss(model, tokens, n_ctx, torch.Generator().manual_seed(seed), size=8)


def build(a: argparse.Namespace, tok: Tokenizer) -> LlamaForCausalLM:
    eot = tok.special_tokens[END_OF_TEXT]
    cfg = LlamaConfig(
        vocab_size=tok.n_vocab,
        hidden_size=a.n_embd,
        intermediate_size=a.intermediate,
        num_hidden_layers=a.n_layer,
        num_attention_heads=a.n_head,
        num_key_value_heads=a.n_kv_head,
        max_position_embeddings=a.n_ctx,
        rope_theta=a.rope_theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        attention_dropout=a.dropout,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    return LlamaForCausalLM(cfg)


def save_checkpoint(path: Path, model, opt, step: int, gen: torch.Generator, log: dict, seconds: float) -> None:
    """Everything a restart needs, written to a temporary file first (a kill mid-write leaves the old one)."""
    tmp = path.with_suffix(".tmp")
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "gen": gen.get_state()}
    torch.save(state | {"log": log, "seconds": seconds}, tmp)
    tmp.replace(path)


def main() -> None:
    a = parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    a.run.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(a.tokenizer)
    train = torch.tensor(tok.encode((a.data / "train.txt").read_text(), allow_special=False))
    heldout = torch.tensor(tok.encode((a.data / "heldout.txt").read_text(), allow_special=False))
    model = build(a, tok)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(a.seed)
    log: dict = {"step": [], "train_loss": [], "heldout_loss": [], "seconds": []}
    start_step, done_seconds = 0, 0.0
    last = a.run / "last.pt"
    if last.exists():  # resume
        state = torch.load(last, weights_only=False)  # our own training checkpoint, never user input
        if a.export_only:
            export(a, model, tok, heldout, train, state["log"], n_params, state["step"])
            return
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        start_step, log, done_seconds = state["step"], state["log"], state["seconds"]
        print(f"resumed at step {start_step} ({done_seconds:.0f} s trained so far)", flush=True)
    print(
        f"classroom-llama: {a.n_layer} layers x {a.n_embd}, {a.n_head} heads sharing {a.n_kv_head} KV heads, "
        f"ctx {a.n_ctx}, vocab {tok.n_vocab}: {n_params:,} parameters; train {len(train):,} tokens, "
        f"held-out {len(heldout):,}; {a.steps} steps x {a.batch} x {a.n_ctx} = "
        f"{a.steps * a.batch * a.n_ctx / len(train):.1f} epochs",
        flush=True,
    )
    best = min(log["heldout_loss"], default=math.inf)
    started, recent = time.time(), []
    for step in range(start_step, a.steps):
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
        seconds = done_seconds + time.time() - started
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            model.eval()
            held = sample_loss(model, heldout, a.n_ctx, a.seed + 1)
            log["step"].append(step + 1)
            log["train_loss"].append(float(np.mean(recent)))
            log["heldout_loss"].append(held)
            log["seconds"].append(seconds)
            rate = (step + 1 - start_step) * a.batch * a.n_ctx / (time.time() - started)  # tokens/s this run
            print(
                f"step {step + 1}/{a.steps}  train {np.mean(recent):.3f}  held-out {held:.3f}  "
                f"lr {learning_rate(step, a):.2e}  {seconds:.0f}s  {rate:.0f} tok/s",
                flush=True,
            )
            recent = []
            if held < best:
                best = held
                torch.save({"model": model.state_dict(), "step": step + 1, "heldout": held}, a.run / "best.pt")
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            save_checkpoint(last, model, opt, step + 1, gen, log, seconds)
    export(a, model, tok, heldout, train, log, n_params, a.steps)


def export(
    a: argparse.Namespace, model, tok: Tokenizer, heldout, train, log: dict, n_params: int, trained_steps: int
) -> None:
    """The best checkpoint (lowest sampled held-out loss) in Hugging Face Llama format, stored as
    bfloat16 (half the bytes; minfer computes in float32), with its numbers and loss curve.
    `trained_steps` < a.steps marks an export taken while training goes on."""
    best = torch.load(a.run / "best.pt", weights_only=False)
    model.load_state_dict(best["model"])
    model.eval()
    a.out.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(a.out, safe_serialization=True)
    # the held-out loss below is of the bfloat16 weights read back in float32, as minfer runs them
    # (a model cast back and forth would keep bfloat16-rounded RoPE frequencies)
    model = LlamaForCausalLM.from_pretrained(a.out, dtype=torch.float32).eval()
    (a.out / "tokenizer.tiktoken").write_bytes(a.tokenizer.read_bytes())
    plot(log, a.out / "loss.png", "classroom-llama on the King James Bible")
    final = {
        "n_params": n_params,
        "steps": a.steps,
        "trained_steps": trained_steps,
        "finished": trained_steps >= a.steps,
        "best_step": best["step"],
        "batch": a.batch,
        "n_ctx": a.n_ctx,
        "tokens_seen": best["step"] * a.batch * a.n_ctx,
        "train_tokens": len(train),
        "heldout_tokens": len(heldout),
        "wall_seconds": log["seconds"][-1],
        "best_seconds": log["seconds"][log["step"].index(best["step"])],
        "final_train_loss": log["train_loss"][-1],
        "best_sampled_heldout_loss": best["heldout"],
        "heldout_loss_chunked": chunked_loss(model, heldout, a.n_ctx),
        "torch": torch.__version__,
        "args": {k: str(v) for k, v in vars(a).items()},
        "log": log,
    }
    (a.out / "training.json").write_text(json.dumps(final, indent=2) + "\n")
    print(json.dumps({k: v for k, v in final.items() if k not in ("log", "args")}, indent=2))


if __name__ == "__main__":
    main()
