"""The `minfer` command line: `minfer generate PROMPT ...` streams a generation and reports its
prefill and decode phases. Errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys

from minfer.errors import MinferError


def add_sampling_arguments(parser: argparse.ArgumentParser, temperature: float) -> None:
    """The sampling options `generate` and `chat` share (see minfer.sampling.SamplingParams)."""
    parser.add_argument(
        "--temperature", type=float, default=temperature, metavar="T", help=f"0 = greedy (default {temperature})"
    )
    parser.add_argument("--top-k", type=int, default=0, metavar="K", help="keep the K most likely tokens (0 = off)")
    parser.add_argument(
        "--top-p", type=float, default=1.0, metavar="P", help="nucleus: smallest set with mass >= P (1 = off)"
    )
    parser.add_argument(
        "--min-p", type=float, default=0.0, metavar="P", help="drop tokens below P x the top probability (0 = off)"
    )
    parser.add_argument(
        "--repetition-penalty", type=float, default=1.0, metavar="R", help="> 1 discourages repeats (1 = off)"
    )
    parser.add_argument(
        "--frequency-penalty", type=float, default=0.0, metavar="F", help="subtract F x count (OpenAI style)"
    )
    parser.add_argument(
        "--presence-penalty", type=float, default=0.0, metavar="F", help="subtract F once per seen token"
    )
    parser.add_argument("--seed", type=int, default=None, metavar="S")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend and --quantize, as `generate` and `chat` take them."""
    parser.add_argument(
        "--backend",
        choices=["numpy", "numba"],
        default="numpy",
        help="numpy: the readable reference; numba: compiled kernels",
    )
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="int8 weights with a scale per column (needs --backend numba)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minfer", description="Transformer inference from scratch.")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate text after a prompt")
    gen.add_argument("prompt", help="the text to continue ('' starts from <|endoftext|>)")
    gen.add_argument(
        "--model", default=None, help="a Hugging Face-format directory or Hub name (default: minfer's default model)"
    )
    gen.add_argument("--max-new-tokens", type=int, default=64, metavar="N")
    add_sampling_arguments(gen, temperature=0.0)
    gen.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="stop before this text (repeatable; e.g. --stop $'\\n\\n')",
    )
    add_backend_arguments(gen)
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    chat = commands.add_parser("chat", help="a streamed terminal chat with an instruct model (its chat template)")
    chat.add_argument(
        "--model", default=None, help="an instruct model's directory or Hub name, e.g. Qwen/Qwen2.5-0.5B-Instruct"
    )
    chat.add_argument("--system", default=None, metavar="TEXT", help="a system prompt")
    chat.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="per reply")
    add_sampling_arguments(chat, temperature=0.7)
    add_backend_arguments(chat)
    prof = commands.add_parser("profile", help="generate under the profiler: FLOPs, bytes and time per phase and op")
    prof.add_argument("prompt", help="the text to continue")
    prof.add_argument("--model", default=None, help="as for generate (default: minfer's default model)")
    prof.add_argument("--max-new-tokens", type=int, default=32, metavar="N")
    prof.add_argument("--batch", type=int, default=1, metavar="B", help="generate B copies of the prompt at once")
    prof.add_argument(
        "--sweep",
        default=None,
        metavar="B1,B2,...",
        help="also time decode at these batch sizes (e.g. 1,2,4,8,16): points on the roofline",
    )
    prof.add_argument("--phases-only", action="store_true", help="time whole calls only (no per-op overhead)")
    prof.add_argument(
        "--plot",
        default=None,
        metavar="FILE",
        help="write the roofline to FILE (.png or .svg) and the timeline to FILE-timeline.*",
    )
    prof.add_argument("--top", type=int, default=8, metavar="N", help="ops per phase in the report")
    prof.add_argument("--backend", choices=["numpy", "numba"], default="numpy")
    prof.add_argument("--quantize", choices=["int8"], default=None, help="int8 weights (needs --backend numba)")
    prof.add_argument("--json", action="store_true", help="print the profile and the ceilings as JSON")
    cal = commands.add_parser("calibrate", help="measure this machine's matmul peak and memory bandwidth")
    cal.add_argument("--quick", action="store_true", help="smaller, faster measurement (about 1 s)")
    cal.add_argument("--json", action="store_true")
    bench = commands.add_parser("bench", help="prefill and decode speed of minfer's backends, side by side")
    bench.add_argument(
        "--model",
        default="classroom,classroom-llama",
        metavar="M1,M2",
        help="models as for generate, comma-separated (default: both classroom models, GPT-2 and Llama)",
    )
    bench.add_argument(
        "--variants",
        default="numpy,numba,numba-int8",
        metavar="V1,V2",
        help="from numpy, numba, numba-int8 (ratios are to the first)",
    )
    bench.add_argument("--prompt-tokens", type=int, default=128, metavar="N")
    bench.add_argument("--new-tokens", type=int, default=32, metavar="N")
    bench.add_argument("--rounds", type=int, default=3, metavar="R", help="interleaved rounds; medians over them")
    bench.add_argument("--json", action="store_true")
    from minfer.exercises import add_exercises_parser
    from minfer.perf.whatif import add_whatif_arguments

    add_exercises_parser(commands)

    add_whatif_arguments(
        commands.add_parser(
            "whatif", help="roofline bounds of a model on other hardware: TTFT, tok/s, tok/s per W, $ per M tokens"
        )
    )
    from minfer.serving.loadtest import add_loadtest_arguments

    add_loadtest_arguments(
        commands.add_parser("loadtest", help="load an OpenAI-compatible server: TTFT, TPOT, throughput, goodput")
    )
    ev = commands.add_parser("eval", help="mean loss and perplexity of a model over a text file")
    ev.add_argument("file", help="a UTF-8 text file")
    ev.add_argument("--model", default=None)
    ev.add_argument("--json", action="store_true")
    add_serve_arguments(
        commands.add_parser("serve", help="an OpenAI-compatible HTTP server, with metrics and a live playground")
    )
    return parser


def port_number(text: str) -> int:
    """--port's type: a TCP port, 0 to 65535 (argparse prints the message and exits with status 2)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535 (0: any free port), got {text!r}")
    return port


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """`minfer serve`'s options (see docs/serving.md)."""
    parser.add_argument("--model", default=None, help="as for generate (default: minfer's default model)")
    add_backend_arguments(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every network; then use --api-key)"
    )
    parser.add_argument("--port", type=port_number, default=8000, help="0 picks a free port")
    parser.add_argument("--max-batch", type=int, default=16, metavar="N", help="sequences decoded together")
    parser.add_argument(
        "--kv-blocks", type=int, default=None, metavar="N", help="KV cache blocks (default: max-batch full contexts)"
    )
    parser.add_argument("--block-size", type=int, default=16, metavar="N", help="positions per KV block")
    parser.add_argument(
        "--max-waiting", type=int, default=128, metavar="N", help="queued requests beyond which new ones get 503"
    )
    parser.add_argument(
        "--api-key", default=None, metavar="KEY", help="require 'Authorization: Bearer KEY' (default: $MINFER_API_KEY)"
    )
    parser.add_argument(
        "--max-per-client", type=int, default=0, metavar="N", help="requests in flight per client address (0: no limit)"
    )


def sampling_params(args: argparse.Namespace):
    from minfer.sampling import SamplingParams

    return SamplingParams(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        frequency_penalty=args.frequency_penalty,
        presence_penalty=args.presence_penalty,
        seed=args.seed,
    )


def note_compiling(backend: str, family: str = "gpt2") -> None:
    """Say so on stderr when the Numba kernels are about to be compiled (first run only)."""
    if backend == "numba":
        from minfer.fast import is_compiled

        if not is_compiled(family):
            print(
                "minfer: compiling the Numba kernels (first run only, about half a minute); "
                "later runs load them from the cache",
                file=sys.stderr,
            )


def run_generate(args: argparse.Namespace) -> None:
    from minfer.checkpoints.loading import load_model
    from minfer.generation import generate, prompt_ids, stream

    params = sampling_params(args)  # validate before loading
    model = load_model(args.model, backend=args.backend, quantize=args.quantize)
    note_compiling(args.backend, model.config.family)
    ids = prompt_ids(model, args.prompt)  # fails before anything is printed
    if args.json:
        g = generate(model, ids, args.max_new_tokens, params=params, stop_strings=args.stop)
        print(
            json.dumps(
                {"model": model.name, "prompt": args.prompt, "text": g.text, "tokens": g.tokens, "stats": g.stats()}
            )
        )
        return
    s = stream(model, ids, args.max_new_tokens, params=params, stop_strings=args.stop)
    pieces = iter(s)
    first = next(pieces, "")  # the prompt is echoed with the first piece, so an error prints nothing else
    sys.stdout.write(args.prompt + first)
    try:
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
    finally:  # an error mid-stream (NaN logits) starts on a line of its own, after the text
        sys.stdout.write("\n")
        sys.stdout.flush()  # the text before the report, even when both go to one pipe
    print(f"[{model.name}] {s.generation.summary()}", file=sys.stderr)


CHAT_HELP = "/reset starts over, /stats shows the last reply's numbers, /quit (or Ctrl-D) leaves"


def run_chat(args: argparse.Namespace) -> None:
    from minfer.checkpoints.loading import load_model
    from minfer.conversation import ChatSession

    params = sampling_params(args)  # validate before loading
    model = load_model(args.model, backend=args.backend, quantize=args.quantize)
    note_compiling(args.backend, model.config.family)
    chat = ChatSession(model, system=args.system, params=params, max_new_tokens=args.max_new_tokens)
    print(f"minfer chat with {model.name} ({CHAT_HELP})", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return
        text = line.strip()
        if text in ("/quit", "/exit"):
            return
        if text == "/reset":
            chat.reset()
            print("(conversation cleared)", file=sys.stderr)
        elif text == "/stats":
            print(chat.stats(), file=sys.stderr)
        elif text.startswith("/"):
            print(f"unknown command {text.split()[0]!r}: {CHAT_HELP}", file=sys.stderr)
        elif text:
            try:
                for piece in chat.send(line):
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            except MinferError as e:  # a turn that cannot be taken ends the turn, not the session
                print(f"minfer: error: {e}", file=sys.stderr)
                continue
            finally:
                sys.stdout.write("\n")
                sys.stdout.flush()


def run_eval(args: argparse.Namespace) -> None:
    from minfer.checkpoints.loading import load_model
    from minfer.errors import InvalidInputError
    from minfer.evaluate import perplexity

    try:
        text = open(args.file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"cannot read {args.file} as UTF-8 text: {e}") from None
    model = load_model(args.model)
    p = perplexity(model, text)
    if args.json:
        print(
            json.dumps(
                {
                    "model": model.name,
                    "file": args.file,
                    "loss": p.loss,
                    "perplexity": p.perplexity,
                    "tokens": p.tokens,
                    "chunks": p.chunks,
                }
            )
        )
    else:
        print(
            f"{args.file}: loss {p.loss:.4f} nats/token, perplexity {p.perplexity:.2f} "
            f"({p.tokens:,} tokens in {p.chunks} chunks of at most {model.config.n_ctx})"
        )


def batch_sizes(text: str | None) -> list[int]:
    """ "1,2,4" -> [1, 2, 4], or a one-line error."""
    from minfer.errors import InvalidInputError

    try:
        sizes = [int(b) for b in text.split(",")] if text else []
    except ValueError:
        raise InvalidInputError(f"--sweep takes batch sizes separated by commas, like 1,2,4,8; got {text!r}") from None
    if any(b < 1 for b in sizes):
        raise InvalidInputError(f"--sweep batch sizes must be at least 1; got {text!r}")
    return sizes


def run_profile(args: argparse.Namespace) -> None:
    from minfer.checkpoints.loading import load_model
    from minfer.errors import InvalidInputError
    from minfer.generation import prompt_ids
    from minfer.perf.calibrate import ceilings
    from minfer.perf.profiler import decode_sweep, profile_generation
    from minfer.perf.report import sweep_line

    if args.batch < 1:
        raise InvalidInputError(f"--batch must be at least 1, got {args.batch}")
    sizes = batch_sizes(args.sweep)
    if args.plot and not args.plot.lower().endswith((".png", ".svg")):
        raise InvalidInputError(f"--plot must end in .png or .svg, got {args.plot!r}")
    model = load_model(args.model, backend=args.backend, quantize=args.quantize)
    ids = prompt_ids(model, args.prompt)
    roof = ceilings(measure_if_missing=True, quick=True)
    prof, gens = profile_generation(model, ids, args.max_new_tokens, args.batch, ops=not args.phases_only)
    sweep = decode_sweep(model, ids, args.max_new_tokens, sizes) if sizes else None
    data = prof.to_dict(roof) | {"sweep": [r.to_dict() for r in sweep or []] or None, "text": gens[0].text}
    paths = write_plots(prof.profile(), roof, args.plot, sweep) if args.plot else []
    if args.json:
        print(json.dumps(data))
        return
    print(f"{args.prompt}{gens[0].text}\n")
    prof.report(roof, top=args.top)
    for row in sweep or []:
        print(sweep_line(row))
    for path in paths:
        print(f"wrote {path}")


def write_plots(profile, roof, path: str, sweep: list | None) -> list:
    """The roofline of a `minfer.perf.profile.Profile` to `path`, the timeline beside it
    (roofline.png -> roofline-timeline.png)."""
    from pathlib import Path

    from minfer.errors import InvalidInputError
    from minfer.plots import roofline, save_figure, timeline

    p = Path(path)
    try:
        return [
            save_figure(roofline(profile, roof, sweep=sweep), p),
            save_figure(timeline(profile), p.with_name(f"{p.stem}-timeline{p.suffix}")),
        ]
    except OSError as e:
        raise InvalidInputError(f"cannot write the plot {path}: {e.strerror or e}") from None


def run_bench(args: argparse.Namespace) -> None:
    from minfer.errors import InvalidInputError
    from minfer.perf.bench import bench, table
    from minfer.perf.calibrate import ceilings

    if min(args.prompt_tokens, args.new_tokens, args.rounds) < 1:
        raise InvalidInputError("--prompt-tokens, --new-tokens and --rounds must be at least 1")
    roof = ceilings(measure_if_missing=True, quick=True)
    rows = bench(
        args.model.split(","), args.variants.split(","), args.prompt_tokens, args.new_tokens, args.rounds, roof
    )
    if args.json:
        print(
            json.dumps(
                {
                    "rows": rows,
                    "ceilings": roof.to_dict(),
                    "prompt_tokens": args.prompt_tokens,
                    "new_tokens": args.new_tokens,
                    "rounds": args.rounds,
                }
            )
        )
        return
    print(table(rows))
    print(
        f"medians of {args.rounds} interleaved rounds; prompt {args.prompt_tokens} tokens, "
        f"{args.new_tokens} decode steps; ceilings {roof.peak_gflops:.0f} GFLOP/s, {roof.bandwidth_gbs:.1f} GB/s "
        f"(minfer calibrate, {roof.measured_at[:16]})"
    )


def run_calibrate(args: argparse.Namespace) -> None:
    from minfer.perf.calibrate import calibrate, save_ceilings

    c = calibrate(quick=args.quick)
    path = save_ceilings(c)
    if args.json:
        print(json.dumps(c.to_dict() | {"path": str(path)}))
        return
    print(f"float32 matmul peak:   {c.peak_gflops:,.1f} GFLOP/s (NumPy @ on {c.matmul_n}x{c.matmul_n}, best run)")
    print(
        f"memory read bandwidth: {c.bandwidth_gbs:,.1f} GB/s (Numba parallel sum over "
        f"{c.stream_bytes / 2**20:,.0f} MiB, best run, {c.threads} threads)"
    )
    print(f"ridge point:           {c.ridge_point:.1f} FLOP/byte: below it a phase is memory-bound")
    print(f"saved to {path} ({c.cpu}, {c.measured_at})")


def run_serve(args: argparse.Namespace) -> None:
    from minfer.serving.server import serve

    serve(
        args.model,
        backend=args.backend,
        quantize=args.quantize,
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        kv_blocks=args.kv_blocks,
        block_size=args.block_size,
        max_waiting=args.max_waiting,
        api_key=args.api_key or os.environ.get("MINFER_API_KEY") or None,
        max_per_client=args.max_per_client,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            run_generate(args)
        elif args.command == "chat":
            run_chat(args)
        elif args.command == "eval":
            run_eval(args)
        elif args.command == "profile":
            run_profile(args)
        elif args.command == "calibrate":
            run_calibrate(args)
        elif args.command == "serve":
            run_serve(args)
        elif args.command == "bench":
            run_bench(args)
        elif args.command == "exercises":
            from minfer.exercises import run_exercises

            return run_exercises(args)
        elif args.command == "whatif":
            from minfer.perf.whatif import run_whatif

            run_whatif(args)
        elif args.command == "loadtest":
            from minfer.serving.loadtest import run_loadtest_command

            run_loadtest_command(args)
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
