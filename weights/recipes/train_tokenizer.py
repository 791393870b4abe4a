"""Train the classroom tokenizer: byte-level BPE on the King James Bible (minfer.bpe).

    python weights/recipes/prepare_corpus.py     # -> data/kjv/train.txt, heldout.txt
    python weights/recipes/train_tokenizer.py    # -> weights/classroom/tokenizer.tiktoken

vocab_size = 4,096 ids: 4,095 ranks (the 256 single bytes + 3,839 merges) and one special token,
`<|endoftext|>` = 4095, the id right after the ranks (as GPT-2's is 50256). Pure Python, about
6 s on one core for the ~4 MB of training text; deterministic, so rerunning it reproduces the file
byte for byte.

It prints the training time, the tokens per character on train and held-out text (next to
GPT-2's 50k-token vocabulary on the same text, for scale), and checks that minfer.bpe's
readable encoder and tiktoken agree on the held-out text.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from minfer.bpe import encode_with_merges, save_tiktoken, train_bpe
from minfer.tokenizer import END_OF_TEXT, Tokenizer

ROOT = Path(__file__).resolve().parents[2]
VOCAB_SIZE = 4096  # a power of two, and small: the embedding stays a modest share of the model
SPECIAL_TOKENS = [END_OF_TEXT]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the classroom BPE tokenizer.")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "kjv")
    p.add_argument("--out", type=Path, default=ROOT / "weights" / "classroom" / "tokenizer.tiktoken")
    p.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    return p.parse_args()


def tokens_per_char(tok: Tokenizer, text: str) -> float:
    """Tokens per character: lower means the vocabulary fits the text better."""
    return len(tok.encode(text, allow_special=False)) / len(text)


def main() -> None:
    a = parse_args()
    train_path, heldout_path = a.data / "train.txt", a.data / "heldout.txt"
    if not train_path.exists():
        raise SystemExit(f"{train_path} is missing: run weights/recipes/prepare_corpus.py first")
    train, heldout = train_path.read_text("utf-8"), heldout_path.read_text("utf-8")

    t0 = time.perf_counter()
    ranks = train_bpe(train, a.vocab_size, n_special=len(SPECIAL_TOKENS))
    seconds = time.perf_counter() - t0
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save_tiktoken(ranks, a.out)
    sha = hashlib.sha256(a.out.read_bytes()).hexdigest()
    print(f"trained {len(ranks):,} ranks on {len(train):,} chars in {seconds:.1f}s -> {a.out}")
    print(f"sha256 {sha}")

    tok = Tokenizer.from_file(a.out)  # <|endoftext|> = len(ranks), the next free id
    gpt2 = Tokenizer.gpt2()
    print(f"n_vocab {tok.n_vocab}, {END_OF_TEXT} = {tok.eot_id}")
    for name, text in [("train", train), ("held-out", heldout)]:
        print(
            f"{name:>8}: {tokens_per_char(tok, text):.4f} tokens/char "
            f"(GPT-2's 50,257-token vocabulary: {tokens_per_char(gpt2, text):.4f})"
        )

    same = encode_with_merges(heldout, ranks) == tok.encode(heldout, allow_special=False)
    print(f"minfer.bpe.encode_with_merges == tiktoken on held-out: {same}")
    if not same:
        raise SystemExit("the readable encoder and tiktoken disagree: a bug in minfer.bpe")


if __name__ == "__main__":
    main()
