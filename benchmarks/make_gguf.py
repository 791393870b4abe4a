"""The benchmark's model: GPT-2 124M with random weights, as a Hugging Face directory and as GGUF.

    /work/refenv/bin/python benchmarks/make_gguf.py [--bench-dir /work/bench]

Run it with an interpreter that has minfer, torch and transformers (the reference venv). Offline,
it makes, each once (a file already there is kept):

  BENCH/gpt2-124m-random/             config.json + model.safetensors (float32), minfer's writer
  BENCH/gpt2-124m-random-gguf-src/    the same weights (linked) + what llama.cpp's converter
                                      also wants: config.json with "n_ctx", vocab.json, merges.txt
  BENCH/gguf/gpt2-124m-random-f32.gguf, -f16.gguf

and checks on the way that transformers computes the same logits as minfer from the checkpoint,
and that the rebuilt vocab.json + merges.txt tokenize exactly like weights/gpt2.tiktoken.

The converter (`convert_hf_to_gguf.py`, with its matching `gguf-py`) is the one vendored in
llama-cpp-python's source distribution, so it matches the llama.cpp that reads its output; if
BENCH/src holds no unpacked copy, `pip download` fetches the sdist (the `gguf` wheel on PyPI is
older than the converter and does not work with it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

import minfer
from minfer.checkpoints.store import save_checkpoint
from minfer.tokenizer import END_OF_TEXT, GPT2_EOT_ID, GPT2_RANKS_FILE, GPT2_RANKS_SHA256, read_ranks
from minfer.weights import random_weights

LLAMA_CPP_PYTHON = "0.3.36"  # keep equal to the version installed in the llama.cpp venv
GPT2_124M = minfer.Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257, eos_token_id=GPT2_EOT_ID)
SEED = 0
CHECKPOINT_NAME = "gpt2-124m-random"
OUTTYPES = ("f32", "f16")


def default_bench_dir() -> Path:
    """Scratch space for the benchmark's models and builds: $MINFER_BENCH_DIR, else /work/bench."""
    return Path(os.environ.get("MINFER_BENCH_DIR", "/work/bench"))


# --- 1. the checkpoint --------------------------------------------------------------------------


def ensure_checkpoint(bench_dir: Path) -> Path:
    """GPT-2 124M, random weights (seed 0), float32, written once into bench_dir."""
    path = bench_dir / CHECKPOINT_NAME
    if not (path / "model.safetensors").exists():
        tmp = path.with_name(path.name + ".tmp")
        save_checkpoint(tmp, GPT2_124M, random_weights(GPT2_124M, seed=SEED))
        tmp.replace(path)  # atomic: a half-written checkpoint is never mistaken for a whole one
        print(f"wrote {path}")
    return path


def check_against_transformers(model_dir: Path, n_tokens: int = 8) -> float:
    """Max |minfer - transformers| over the logits of a few random tokens; raises if too large."""
    import torch
    from transformers import GPT2LMHeadModel

    ids = np.random.default_rng(0).integers(0, GPT2_124M.n_vocab, n_tokens)  # [n_tokens]
    ours = minfer.load_model(model_dir).forward(ids)  # [n_tokens, n_vocab]
    hf = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)[None]).logits[0].numpy()  # [n_tokens, n_vocab]
    diff = float(np.abs(ours - theirs).max())
    scale = float(np.abs(theirs).max())
    print(f"minfer vs transformers on {n_tokens} tokens: max |diff| {diff:.2e} (max |logit| {scale:.2f})")
    if diff > 1e-3 * max(scale, 1.0):
        raise SystemExit(f"minfer and transformers disagree on {model_dir} (max |diff| {diff:.2e})")
    return diff


# --- 2. HF tokenizer files from the tiktoken ranks ------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map: the alphabet of vocab.json and merges.txt.

    Printable Latin-1 bytes map to themselves; the other 68 (controls, space, ...) to U+0100 on,
    so every token is a string of visible characters (a leading space shows as 'Ġ').
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """The pieces BPE leaves of `token` using only merges ranked below max_rank.

    For a token of rank r, that is the two pieces whose merge created it: the merge rule r.
    """
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        pair_ranks = [ranks.get(a + b) for a, b in zip(parts[:-1], parts[1:])]
        candidates = [(r, i) for i, r in enumerate(pair_ranks) if r is not None and r < max_rank]
        if not candidates:
            break
        _, i = min(candidates)  # the lowest-ranked pair merges first
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def write_hf_tokenizer(out_dir: Path) -> None:
    """vocab.json + merges.txt equal to GPT-2's, rebuilt from weights/gpt2.tiktoken."""
    ranks = read_ranks(GPT2_RANKS_FILE, GPT2_RANKS_SHA256)  # {token bytes: rank}, 50,256 tokens
    to_str = bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(to_str[x] for x in b)

    vocab = {text(token): rank for token, rank in ranks.items()} | {END_OF_TEXT: GPT2_EOT_ID}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue  # the 256 single bytes are the alphabet, not merges
        parts = bpe_parts(ranks, token, rank)
        assert len(parts) == 2, f"token {token!r} (rank {rank}) is not one merge of two tokens"
        merges.append(f"{text(parts[0])} {text(parts[1])}")
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def check_hf_tokenizer(out_dir: Path) -> None:
    """The rebuilt files, loaded as the converter loads them (AutoTokenizer), must tokenize like
    tiktoken does, on text with spaces, digits, accents, CJK, an emoji and the special token."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(out_dir)
    ours = minfer.Tokenizer.gpt2()
    sample = (
        "Hello, my dog is cute.  It's 2024: naïve café, 東京, emoji 🤗!\n\n\tIndented   "
        "spaces, don't we'll they're 12345678 1.5e-3 <tags> ~~~ ÀÉÎÕÜ<|endoftext|>"
    )
    if hf.encode(sample) != ours.encode(sample, allow_special=True):  # HF matches <|endoftext|> in text
        raise SystemExit(f"the rebuilt vocab.json/merges.txt in {out_dir} tokenize differently from tiktoken")


def ensure_converter_input(model_dir: Path, bench_dir: Path) -> Path:
    """A copy of the checkpoint directory the converter accepts: n_ctx in config.json, and
    GPT-2's tokenizer as vocab.json + merges.txt (the weights are a symlink, not a copy)."""
    src = bench_dir / f"{CHECKPOINT_NAME}-gguf-src"
    if src.exists():
        return src
    tmp = src.with_name(src.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    config = json.loads((model_dir / "config.json").read_text())
    config["n_ctx"] = config["n_positions"]  # the converter reads GPT-2's context length from n_ctx
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    link = tmp / "model.safetensors"
    if not link.is_symlink():
        link.symlink_to((model_dir / "model.safetensors").resolve())
    write_hf_tokenizer(tmp)
    check_hf_tokenizer(tmp)
    tmp.replace(src)
    print(f"wrote {src}")
    return src


# --- 3. the converter and the GGUF files --------------------------------------------------------


def ensure_llama_cpp_source(bench_dir: Path) -> Path:
    """llama.cpp's source tree as vendored in the llama-cpp-python sdist, unpacked in BENCH/src."""
    root = bench_dir / "src"
    tree = root / f"llama_cpp_python-{LLAMA_CPP_PYTHON}" / "vendor" / "llama.cpp"
    if (tree / "convert_hf_to_gguf.py").exists():
        return tree
    sdist = root / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
    if not sdist.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"llama-cpp-python=={LLAMA_CPP_PYTHON}",
                "-d",
                str(root),
            ],
            check=True,
        )
    with tarfile.open(sdist) as tar:
        tar.extractall(root, filter="data")
    return tree


def ensure_gguf(src: Path, llama_tree: Path, bench_dir: Path, outtype: str) -> Path:
    """Run convert_hf_to_gguf.py once per output type; its own gguf-py goes first on the path."""
    out = bench_dir / "gguf" / f"{CHECKPOINT_NAME}-{outtype}.gguf"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    subprocess.run(
        [
            sys.executable,
            str(llama_tree / "convert_hf_to_gguf.py"),
            str(src),
            "--outtype",
            outtype,
            "--outfile",
            str(tmp),
        ],
        check=True,
        env=env,
    )
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB)")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench-dir",
        type=Path,
        default=default_bench_dir(),
        help="scratch directory for the checkpoint, sources and GGUF files (default $MINFER_BENCH_DIR or /work/bench)",
    )
    parser.add_argument("--skip-check", action="store_true", help="do not compare transformers' logits with minfer's")
    args = parser.parse_args(argv)
    model_dir = ensure_checkpoint(args.bench_dir)
    if not args.skip_check:
        check_against_transformers(model_dir)
    src = ensure_converter_input(model_dir, args.bench_dir)
    llama_tree = ensure_llama_cpp_source(args.bench_dir)
    for outtype in OUTTYPES:
        ensure_gguf(src, llama_tree, args.bench_dir, outtype)


if __name__ == "__main__":
    main()
