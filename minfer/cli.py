"""The `minfer` command line: `minfer generate PROMPT ...` streams a generation and reports its
prefill and decode phases. Errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys

from minfer.errors import MinferError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minfer", description="Transformer inference from scratch.")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate text after a prompt")
    gen.add_argument("prompt", help="the text to continue ('' starts from <|endoftext|>)")
    gen.add_argument("--model", default=None,
                     help="a Hugging Face-format directory or Hub name (default: minfer's default model)")
    gen.add_argument("--max-new-tokens", type=int, default=64, metavar="N")
    gen.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    gen.add_argument("--top-k", type=int, default=0, metavar="K", help="keep the K most likely tokens (0 = off)")
    gen.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus: smallest set with mass >= P (1 = off)")
    gen.add_argument("--min-p", type=float, default=0.0, metavar="P", help="drop tokens below P x the top probability (0 = off)")
    gen.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R", help="> 1 discourages repeats (1 = off)")
    gen.add_argument("--frequency-penalty", type=float, default=0.0, metavar="F", help="subtract F x count (OpenAI style)")
    gen.add_argument("--presence-penalty", type=float, default=0.0, metavar="F", help="subtract F once per seen token")
    gen.add_argument("--seed", type=int, default=None, metavar="S")
    gen.add_argument("--stop", action="append", default=[], metavar="TEXT",
                     help="stop before this text (repeatable; e.g. --stop $'\\n\\n')")
    gen.add_argument("--backend", choices=["numpy", "numba"], default="numpy")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    ev = commands.add_parser("eval", help="mean loss and perplexity of a model over a text file")
    ev.add_argument("file", help="a UTF-8 text file")
    ev.add_argument("--model", default=None)
    ev.add_argument("--json", action="store_true")
    return parser


def sampling_params(args: argparse.Namespace):
    from minfer.sampling import SamplingParams

    return SamplingParams(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
        repetition_penalty=args.repetition_penalty, frequency_penalty=args.frequency_penalty,
        presence_penalty=args.presence_penalty, seed=args.seed,
    )


def run_generate(args: argparse.Namespace) -> None:
    from minfer.generation import generate, prompt_ids, stream
    from minfer.loading import load_model

    params = sampling_params(args)  # validate before loading
    model = load_model(args.model, backend=args.backend)
    ids = prompt_ids(model, args.prompt)  # fails before anything is printed
    if args.json:
        g = generate(model, ids, args.max_new_tokens, params=params, stop_strings=args.stop)
        print(json.dumps({"model": model.name, "prompt": args.prompt, "text": g.text,
                          "tokens": g.tokens, "stats": g.stats()}))
        return
    s = stream(model, ids, args.max_new_tokens, params=params, stop_strings=args.stop)
    pieces = iter(s)
    first = next(pieces, "")  # the prompt is echoed with the first piece, so an error prints nothing else
    sys.stdout.write(args.prompt + first)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    print(f"[{model.name}] {s.generation.summary()}", file=sys.stderr)


def run_eval(args: argparse.Namespace) -> None:
    from minfer.errors import InvalidInputError
    from minfer.evaluate import perplexity
    from minfer.loading import load_model

    try:
        text = open(args.file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"cannot read {args.file} as UTF-8 text: {e}") from None
    model = load_model(args.model)
    p = perplexity(model, text)
    if args.json:
        print(json.dumps({"model": model.name, "file": args.file, "loss": p.loss,
                          "perplexity": p.perplexity, "tokens": p.tokens, "chunks": p.chunks}))
    else:
        print(f"{args.file}: loss {p.loss:.4f} nats/token, perplexity {p.perplexity:.2f} "
              f"({p.tokens:,} tokens in {p.chunks} chunks of at most {model.config.n_ctx})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            run_generate(args)
        elif args.command == "eval":
            run_eval(args)
    except MinferError as e:
        print(f"minfer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `minfer generate ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
