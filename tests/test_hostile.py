"""minfer tried as a hostile user would: malformed and lying checkpoints, path traversal, FIFOs,
non-finite weights, broken tokenizer files, wrong-shaped caches, concurrent threads and wrong
argument types. Each case asserts the exact error type and that the message names the problem.

Everything goes through the public API (load_model, Model, generate, the CLI), so a redesign of
the insides keeps these tests. The cases that crashed or hung the process before they were fixed
(a FIFO, a wrong-shaped cache handed to the compiled kernels) run in a subprocess with a timeout,
so a regression fails one test instead of killing or freezing the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file, save_file

import minfer

TINY = FIXTURES / "tiny-gpt2"  # n_layer=2, n_head=4, n_embd=64, n_ctx=64, n_vocab=512


@pytest.fixture
def tiny(tmp_path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(TINY, dst)
    return dst


def split_safetensors(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_safetensors(path: Path, header, data: bytes, n_header: int | None = None) -> None:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes((len(text) if n_header is None else n_header).to_bytes(8, "little") + text + data)


def edit_header(edit):
    """A case that rewrites model.safetensors' header with edit(header) and keeps the data."""

    def setup(model_dir: Path) -> None:
        header, data = split_safetensors(model_dir / "model.safetensors")
        edit(header)
        write_safetensors(model_dir / "model.safetensors", header, data)

    return setup


def edit_tensors(edit):
    def setup(model_dir: Path) -> None:
        tensors = load_file(str(model_dir / "model.safetensors"))
        edit(tensors)
        save_file(tensors, str(model_dir / "model.safetensors"))

    return setup


def edit_json(name: str, edit):
    def setup(model_dir: Path) -> None:
        path = model_dir / name
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))

    return setup


def write(name: str, text: str):
    def setup(model_dir: Path) -> None:
        (model_dir / name).write_text(text)

    return setup


def sharded(weight_map_file):
    """model.safetensors moved aside; an index whose every tensor maps to `weight_map_file`."""

    def setup(model_dir: Path) -> None:
        header, _ = split_safetensors(model_dir / "model.safetensors")
        (model_dir / "model.safetensors").rename(model_dir.parent / "model.safetensors")
        index = {"weight_map": {k: weight_map_file for k in header if k != "__metadata__"}}
        (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))

    return setup


def link_out(model_dir: Path) -> None:
    """model.safetensors becomes a link to a copy outside the directory."""
    outside = model_dir.parent / "elsewhere.safetensors"
    (model_dir / "model.safetensors").rename(outside)
    (model_dir / "model.safetensors").symlink_to(outside)


def swap(a: str, b: str):
    """Two same-sized tensors' data_offsets point at the first one's bytes: an aliasing lie."""

    def edit(header):
        header[b]["data_offsets"] = list(header[a]["data_offsets"])

    return edit_header(edit)


def nan_in(name: str, dtype=np.float32, value=np.nan):
    def edit(tensors):
        t = tensors[name].astype(dtype)
        t.reshape(-1)[3] = value
        tensors[name] = t

    return edit_tensors(edit)


def tokenizer_lines(edit):
    """The model gets a tokenizer.tiktoken made of GPT-2's first 512 ranks, edited by `edit`."""

    def setup(model_dir: Path) -> None:
        lines = (Path(minfer.tokenizer.GPT2_RANKS_FILE).read_text().splitlines())[:511]
        (model_dir / "tokenizer.tiktoken").write_text("\n".join(edit(lines)) + "\n")

    return setup


LN1 = "transformer.h.0.ln_1.weight"
LN1_BIAS = "transformer.h.0.ln_1.bias"

# (id, setup(model_dir), error type, regex the message must match)
CHECKPOINTS = [
    (
        "header length 2**63",
        lambda d: write_safetensors(d / "model.safetensors", b"{}", b"", 2**63),
        minfer.ModelLoadError,
        r"declares a .*-byte header",
    ),
    ("file of 3 bytes", lambda d: (d / "model.safetensors").write_bytes(b"abc"), minfer.ModelLoadError, "too short"),
    (
        "header is a JSON list",
        lambda d: write_safetensors(d / "model.safetensors", [1, 2], b""),
        minfer.ModelLoadError,
        "JSON list, not an object",
    ),
    (
        "header is not JSON",
        lambda d: write_safetensors(d / "model.safetensors", b"{nope", b""),
        minfer.ModelLoadError,
        "not valid JSON",
    ),
    (
        "header repeats a key",
        lambda d: write_safetensors(
            d / "model.safetensors",
            b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
            b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
            b"\0" * 4,
        ),
        minfer.ModelLoadError,
        "appears twice",
    ),
    (
        "truncated data section",
        lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-1000]),
        minfer.ModelLoadError,
        "truncated",
    ),
    (
        "negative data_offsets",
        edit_header(lambda h: h[LN1].update(data_offsets=[-256, 0])),
        minfer.ModelLoadError,
        r"ln_1.weight.*data_offsets \[-256, 0\]",
    ),
    ("overlapping data_offsets", swap(LN1, LN1_BIAS), minfer.ModelLoadError, "bytes overlap"),
    (
        "offsets past the end",
        edit_header(lambda h: h[LN1].update(data_offsets=[10**12, 10**12 + 256])),
        minfer.ModelLoadError,
        "leaving a gap",
    ),
    (
        "bytes do not match the shape",
        edit_header(lambda h: h[LN1].update(shape=[65])),
        minfer.ModelLoadError,
        r"ln_1.weight.*needs 260 bytes.*span 256",
    ),
    (
        "shape of bools",
        edit_header(lambda h: h[LN1].update(shape=[True])),
        minfer.ModelLoadError,
        r"ln_1.weight.*shape \[True\]",
    ),
    (
        "shape is a string",
        edit_header(lambda h: h[LN1].update(shape="64")),
        minfer.ModelLoadError,
        "list of whole numbers",
    ),
    (
        "unknown dtype",
        edit_header(lambda h: h[LN1].update(dtype="F8_E4M3")),
        minfer.ModelLoadError,
        "unsupported dtype 'F8_E4M3'",
    ),
    (
        "entry without offsets",
        edit_header(lambda h: h[LN1].pop("data_offsets")),
        minfer.ModelLoadError,
        "dtype, shape and data_offsets",
    ),
    (
        "metadata not strings",
        edit_header(lambda h: h.update(__metadata__={"format": 1})),
        minfer.ModelLoadError,
        "__metadata__",
    ),
    (
        "NaN weight",
        nan_in("transformer.h.1.mlp.c_fc.weight"),
        minfer.ModelLoadError,
        r"h\.1\.mlp\.c_fc\.weight.*1 NaN or infinite",
    ),
    (
        "inf weight, float16",
        nan_in("transformer.wte.weight", np.float16, np.inf),
        minfer.ModelLoadError,
        r"wte\.weight.*NaN or infinite",
    ),
    ("config.json is a list", write("config.json", "[1, 2]"), minfer.ModelLoadError, "JSON list; expected an object"),
    ("config.json is not JSON", write("config.json", "{"), minfer.ModelLoadError, "not valid JSON"),
    (
        "n_layer is true",
        edit_json("config.json", lambda c: c | {"n_layer": True}),
        minfer.ModelLoadError,
        "n_layer=True must be a positive integer",
    ),
    (
        "n_embd is a string",
        edit_json("config.json", lambda c: c | {"n_embd": "64"}),
        minfer.ModelLoadError,
        "n_embd='64' must be a positive integer",
    ),
    (
        "eps is a string",
        edit_json("config.json", lambda c: c | {"layer_norm_epsilon": "1e-5"}),
        minfer.ModelLoadError,
        "layer_norm_eps='1e-5'",
    ),
    (
        "eos outside the vocabulary",
        edit_json("config.json", lambda c: c | {"eos_token_id": 10**6}),
        minfer.ModelLoadError,
        "eos_token_id=1000000",
    ),
    ("SHA256SUMS line of one field", write("SHA256SUMS", "deadbeef\n"), minfer.ModelLoadError, "SHA256SUMS line 1"),
    (
        "SHA256SUMS names ../",
        write("SHA256SUMS", f"{'0' * 64}  ../model/config.json\n"),
        minfer.ModelLoadError,
        "plain file names",
    ),
    (
        "SHA256SUMS names /etc/passwd",
        write("SHA256SUMS", f"{'0' * 64}  /etc/passwd\n"),
        minfer.ModelLoadError,
        "plain file names",
    ),
    (
        "index without weight_map",
        lambda d: (
            (d / "model.safetensors").unlink() or (d / "model.safetensors.index.json").write_text('{"metadata": {}}')
        ),
        minfer.ModelLoadError,
        "no weight_map",
    ),
    (
        "index is a list",
        lambda d: (d / "model.safetensors").unlink() or (d / "model.safetensors.index.json").write_text("[]"),
        minfer.ModelLoadError,
        "JSON list",
    ),
    ("index names ../elsewhere", sharded("../elsewhere/model.safetensors"), minfer.ModelLoadError, "plain file names"),
    (
        "index names an absolute path",
        sharded(str(TINY / "model.safetensors")),
        minfer.ModelLoadError,
        "plain file names",
    ),
    ("index names /dev/stdin", sharded("/dev/stdin"), minfer.ModelLoadError, "plain file names"),
    ("index names a number", sharded(7), minfer.ModelLoadError, "plain file names"),
    ("weights are a link out of the directory", link_out, minfer.ModelLoadError, "outside the model directory"),
    (
        "tokenizer lacks a single byte",
        tokenizer_lines(lambda ls: [x for x in ls if not x.startswith("IQ== ")]),
        minfer.TokenizerError,
        "lacks 1 of the 256 single-byte tokens",
    ),
    (
        "tokenizer repeats a rank",
        tokenizer_lines(lambda ls: ls[:-1] + [ls[-1].split()[0] + " 3"]),
        minfer.TokenizerError,
        "rank 3 is repeated",
    ),
    (
        "tokenizer repeats a token",
        tokenizer_lines(lambda ls: ls + [ls[-1].split()[0] + " 511"]),
        minfer.TokenizerError,
        "listed twice",
    ),
    (
        "tokenizer line is garbage",
        tokenizer_lines(lambda ls: ls + ["not base64!! x"]),
        minfer.TokenizerError,
        "line 512 is not 'base64 rank'",
    ),
    (
        "header nested 100,000 deep",
        lambda d: write_safetensors(
            d / "model.safetensors", b'{"__metadata__": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", b""
        ),
        minfer.ModelLoadError,
        "not valid JSON",
    ),
    (
        "config nested 100,000 deep",
        write("config.json", "[" * 100_000 + "]" * 100_000),
        minfer.ModelLoadError,
        "config.json is not valid JSON",
    ),
    (
        "config with a 5,000-digit number",
        write("config.json", '{"n_layer": ' + "9" * 5000 + "}"),
        minfer.ModelLoadError,
        "config.json is not valid JSON",
    ),
    (
        "config with a key twice",
        lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace("{", '{"n_layer": 1, ', 1)),
        minfer.ModelLoadError,
        "'n_layer' appears twice",
    ),
    (
        "config with fewer layers than the weights",
        edit_json("config.json", lambda c: c | {"n_layer": 1}),
        minfer.ModelLoadError,
        r"blocks up to h\.1, but its config.json says n_layer=1",
    ),
    (
        "weights a link to themselves",
        lambda d: (d / "model.safetensors").unlink() or (d / "model.safetensors").symlink_to(d / "model.safetensors"),
        minfer.ModelLoadError,
        "link that points to itself",
    ),
    (
        "an integer weight",
        lambda d: edit_tensors(lambda t: t.update({LN1: t[LN1].astype(np.int32)}))(d),
        minfer.ModelLoadError,
        r"h\.0\.ln_1\.weight in .* is I32",
    ),
    (
        "a tokenizer larger than the model",
        tokenizer_lines(lambda ls: ls + Path(minfer.tokenizer.GPT2_RANKS_FILE).read_text().splitlines()[511:611]),
        minfer.TokenizerError,
        "611 BPE tokens, more than the model's 512 embedding rows",
    ),
    (
        "special token inside the ranks",
        lambda d: (
            tokenizer_lines(lambda ls: ls)(d),
            edit_json("config.json", lambda c: c | {"special_tokens": {"<|endoftext|>": 5}})(d),
        ),
        minfer.TokenizerError,
        "outside the 511 BPE ranks",
    ),
]


@pytest.mark.parametrize("setup, error, message", [c[1:] for c in CHECKPOINTS], ids=[c[0] for c in CHECKPOINTS])
def test_hostile_checkpoint_is_refused_by_name(tiny, setup, error, message):
    setup(tiny)
    with pytest.raises(error, match=message):
        minfer.load_model(tiny)


def test_the_refusals_are_minfer_errors_on_the_cli(tiny):
    """One readable line and exit status 2, not a traceback."""
    edit_header(lambda h: h[LN1].update(data_offsets=[-256, 0]))(tiny)
    run = subprocess.run(
        [sys.executable, "-m", "minfer.cli", "generate", "x", "--model", str(tiny)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "data_offsets [-256, 0]" in run.stderr


def isolated(code: str, timeout: float = 180) -> str:
    """Run `code` in a fresh interpreter; a crash (segfault, abort) or a hang fails the test."""
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).parent,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    return run.stdout


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.tiktoken"])
def test_a_fifo_is_refused_without_hanging(tiny, name):
    (tiny / name).unlink(missing_ok=True)
    os.mkfifo(tiny / name)
    out = isolated(
        f"""
        import minfer
        try:
            minfer.load_model({str(tiny)!r})
        except minfer.MinferError as e:
            print(type(e).__name__, e)
    """,
        timeout=60,
    )
    assert "not a regular file" in out and name in out


def test_a_shard_that_is_a_fifo_is_refused(tiny):
    sharded("shard.safetensors")(tiny)
    os.mkfifo(tiny / "shard.safetensors")
    out = isolated(
        f"""
        import minfer
        try:
            minfer.load_model({str(tiny)!r})
        except minfer.ModelLoadError as e:
            print(e)
    """,
        timeout=60,
    )
    assert "shard.safetensors is not a regular file" in out


def test_weights_stay_memory_mapped_and_a_second_load_skips_the_scan(tiny, monkeypatch):
    first = minfer.load_model(tiny)
    base = first.weights.h[0].mlp.c_fc.weight
    while not isinstance(base, np.memmap) and base.base is not None:
        base = base.base
    assert isinstance(base, np.memmap)
    calls = []
    monkeypatch.setattr(minfer.checkpoints.loading, "non_finite_count", lambda *a: calls.append(a) or 0)
    minfer.load_model(tiny)
    assert calls == []  # remembered: the same file is not scanned twice
    (tiny / "model.safetensors").write_bytes((tiny / "model.safetensors").read_bytes())  # a new file
    minfer.load_model(tiny)
    assert calls


# Wrong caches handed to every entry point, on both backends. Before the checks, the compiled
# ones wrote past the buffers' ends (a segfault, or heap corruption that aborted the process).
BAD_CACHES = """
import numpy as np
import minfer
from minfer.kvcache import KVCache
model = minfer.load_model({path!r}, backend={backend!r})
L, H, D = model.config.n_layer, model.config.n_kv_head, model.config.d_head  # the cache's shape
good = model.new_cache(16)
def readonly():
    c = model.new_cache(16); c.k.setflags(write=False); return c
def with_length(n):
    c = model.new_cache(16); c.length = n; return c
caches = {{
    "tiny": KVCache.empty(1, 1, 8, 4),
    "other model": KVCache.empty(L, H + 2, 16, D // 2),
    "float64": KVCache(np.zeros((L, H, 16, D)), np.zeros((L, H, 16, D))),
    "k and v differ": KVCache(good.k, np.zeros((L, H, 8, D), np.float32)),
    "read-only": readonly(),
    "length -1": with_length(-1),
    "length past max_seq": with_length(10**6),
    "length 2.5": with_length(2.5),
    "a dict": {{"k": good.k, "v": good.v}},
    "None": None,
    "masked arrays": KVCache(np.ma.zeros((L, H, 16, D), np.float32), np.ma.zeros((L, H, 16, D), np.float32)),
    "k is v": KVCache(good.k, good.k),
}}
entries = {{
    "decode": lambda c: model.decode(3, c),
    "prefill": lambda c: model.prefill([1, 2, 3], c),
}}
if model.fast is not None:
    entries["fast.decode"] = lambda c: model.fast.decode(3, c)
    entries["fast.prefill"] = lambda c: model.fast.prefill(np.array([1, 2, 3]), c)
for cname, cache in caches.items():
    for ename, call in entries.items():
        try:
            call(cache)
            print("ACCEPTED", cname, ename)
        except minfer.InvalidInputError as e:
            print("refused", cname, ename, "|", e)
# the ids and positions that index the buffers, against the compiled entries directly
if model.fast is not None:
    for ids in ([512], [-1]):
        try:
            model.fast.prefill(np.array(ids), model.new_cache(16))
            print("ACCEPTED ids", ids)
        except minfer.InvalidInputError as e:
            print("refused ids", ids, "|", e)
    try:
        model.fast.decode(3, KVCache.empty(L, H, 128, D))  # room in the cache, not in n_ctx=64
        full = KVCache.empty(L, H, 128, D); full.length = 64
        model.fast.decode(3, full)
        print("ACCEPTED past n_ctx")
    except minfer.ContextOverflowError as e:
        print("refused past n_ctx |", e)
print("alive")
"""


@pytest.mark.parametrize("name, n_kv_head", [("tiny-gpt2", 4), ("tiny-qwen2", 2)])  # GPT-2, and the Llama family
@pytest.mark.parametrize("backend", minfer.model.BACKENDS)
def test_wrong_caches_are_refused_at_every_entry_point(backend, name, n_kv_head):
    out = isolated(BAD_CACHES.format(path=str(FIXTURES / name), backend=backend))
    lines = out.splitlines()
    assert lines[-1] == "alive"
    assert not [x for x in lines if x.startswith("ACCEPTED")], out
    n_entries = 4 if backend == "numba" else 2
    assert sum(x.startswith("refused") for x in lines) == 12 * n_entries + (3 if backend == "numba" else 0)
    assert "share memory" in out
    assert f"needs writable float32 [n_layer=2, n_kv_head={n_kv_head}, max_seq, d_head=16]" in out
    assert "cache.length=-1 must be an integer in [0, 16]" in out
    assert "cache must be a KVCache" in out
    if backend == "numba":
        assert "refused ids [512]" in out and "refused past n_ctx" in out


@pytest.mark.parametrize(
    "name, backend",
    [(None, "numpy"), (None, "numba"), ("tiny-qwen3", "numba")],  # the classroom model; a Llama compiled
)
def test_threads_sharing_one_model_get_the_single_threaded_tokens(name, backend):
    model = minfer.load_model(name and FIXTURES / name, backend=backend)
    prompts = ["And the king said", "In the beginning", "The LORD is my shepherd", "And it came to pass"]
    if model.tokenizer is None:  # a fixture without a vocabulary: prompts of token ids
        prompts = [(1, 2, 3), (40, 41), (7,) * 9, (500, 3, 77, 12)]  # tuples: they key dicts below
    params = [minfer.SamplingParams(), minfer.SamplingParams(temperature=0.9, top_p=0.9, seed=7)]
    jobs = [(p, s) for p in prompts for s in params]
    alone = {job: minfer.generate(model, job[0], 24, params=job[1]).tokens for job in jobs}
    together, errors = {}, []

    def run(job):
        try:
            for _ in range(2):
                together.setdefault(job, []).append(minfer.generate(model, job[0], 24, params=job[1]).tokens)
        except Exception as e:  # noqa: BLE001 (reported below, by the main thread)
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    for job in jobs:
        assert together[job] == [alone[job]] * 2, job


@pytest.mark.slow
def test_threads_under_numbas_workqueue_layer_take_turns():
    """workqueue, Numba's fallback layer, aborts the process when two threads enter parallel
    kernels at once; minfer then serializes its compiled calls. Forced here in a fresh process
    (this machine's default is omp, which takes concurrent calls)."""
    out = isolated("""
        import os, threading
        os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
        import numba, minfer
        from minfer import fast
        model = minfer.load_model(backend="numba")
        assert numba.threading_layer() == "workqueue" and fast.backend._LAYER["needs_lock"]
        prompts = ["And the king said", "In the beginning", "The LORD is my shepherd"] * 2
        alone = [minfer.generate(model, p, 24).tokens for p in prompts]
        got = [None] * len(prompts)
        def run(i):
            got[i] = minfer.generate(model, prompts[i], 24).tokens
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print("same" if got == alone else f"DIFFERENT {got} {alone}")
    """)
    assert out.strip().splitlines()[-1] == "same"


SHARED_CACHE = """
import os, threading
os.environ["NUMBA_THREADING_LAYER"] = {layer!r}
import minfer
model = minfer.load_model(backend="numba")
cache = model.new_cache()
model.prefill(model.tokenizer.encode("And the king said"), cache)
errors = set()
def hammer():
    try:
        while cache.length < cache.max_seq:
            model.decode(5, cache)
    except minfer.MinferError as e:
        errors.add(type(e).__name__ + ": " + str(e)[:40])
threads = [threading.Thread(target=hammer) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(cache.length, cache.max_seq, sorted(errors))
"""


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["omp", "workqueue"])
def test_one_cache_shared_by_threads_is_refused_not_overrun(layer):
    """Misuse: four threads decoding into ONE cache. Each call claims its cache, so a second
    concurrent call is an error, instead of two calls both passing the length check and writing
    past the end of the buffers (which corrupted the heap: 'double free or corruption')."""
    for _ in range(3):
        length, max_seq, *_ = isolated(SHARED_CACHE.format(layer=layer)).split(maxsplit=2)
        assert int(length) <= int(max_seq) == 256


def test_an_id_in_a_tokenizers_gap_is_named_as_such(tmp_path):
    """A model's embedding may have more rows than its tokenizer has tokens (here 300 BPE tokens
    and the special token 511): an id in between has no text, and the error says so."""
    model_dir = tmp_path / "gappy"
    shutil.copytree(TINY, model_dir)
    tokenizer_lines(lambda ls: ls[:300])(model_dir)
    tok = minfer.load_model(model_dir).tokenizer
    assert tok.decode([299, 511]).endswith("<|endoftext|>")
    with pytest.raises(minfer.TokenizerError, match=r"token id 485 has no text.*0\.\.299.*special tokens 511"):
        tok.decode([485])


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_nan_from_overflow_is_an_error_on_every_path(tmp_path):
    """Finite weights so large that the activations overflow: greedy decoding (which once
    returned token 0 forever), sampling, perplexity and `minfer eval` all refuse the NaN."""
    model_dir = tmp_path / "huge"
    shutil.copytree(TINY, model_dir)
    edit_tensors(
        lambda t: t.update(
            {
                k: np.sign(v) * np.float32(3e38)  # finite, near float32's largest
                for k, v in t.items()
                if k.endswith("c_fc.weight")
            }
        )
    )(model_dir)
    model = minfer.load_model(model_dir)
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(model.forward([1, 2, 3])).all()
    for params in (minfer.SamplingParams(), minfer.SamplingParams(temperature=1.0, seed=0)):
        with pytest.raises(minfer.NonFiniteError, match="NaN"):
            minfer.generate(model, [1, 2, 3], 5, params=params)
    with pytest.raises(minfer.NonFiniteError, match="NaN or inf"):
        minfer.perplexity(model, [1, 2, 3, 4, 5])
    text = tmp_path / "text.txt"
    text.write_text("some text to score")
    gpt2 = tmp_path / "gpt2-vocab"  # the tiny model has no tokenizer of its own: give it one
    shutil.copytree(model_dir, gpt2)
    tokenizer_lines(lambda ls: ls)(gpt2)
    run = subprocess.run(
        [sys.executable, "-m", "minfer.cli", "eval", str(text), "--model", str(gpt2)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "NaN or inf" in run.stderr and "loss nan" not in run.stdout


@pytest.fixture(scope="module")
def classroom():
    return minfer.load_model()


def test_a_stop_string_given_as_a_string_is_one_stop_string(classroom):
    whole = minfer.generate(classroom, "And the king said", 20)
    assert "," in whole.text  # the comma the old behaviour stopped at
    as_str = minfer.generate(classroom, "And the king said", 20, stop_strings="xyz,")
    assert as_str.text == whole.text and as_str.finish_reason == "length"
    cut = minfer.generate(classroom, "And the king said", 20, stop_strings=",")
    assert cut.text == whole.text[: whole.text.index(",")] and cut.finish_reason == "stop_string"


# (id, call(model), error type, message)
API_EDGES = [
    (
        "generate_batch of a string",
        lambda m: minfer.generate_batch(m, "abc", 3),
        minfer.InvalidInputError,
        "list of prompts, not a str",
    ),
    ("decode of a float id", lambda m: m.tokenizer.decode([2.9]), minfer.TokenizerError, "float64"),
    ("decode of a bool id", lambda m: m.tokenizer.decode([True]), minfer.TokenizerError, "bool"),
    ("decode of a mixed list", lambda m: m.tokenizer.decode([5, True]), minfer.TokenizerError, "holding True"),
    ("a prompt of floats", lambda m: minfer.generate(m, [1.0, 2.0], 3), minfer.InvalidInputError, "float64"),
    ("Model.decode(True)", lambda m: m.decode(True, m.new_cache(8)), minfer.InvalidInputError, "True"),
    ("new_cache(True)", lambda m: m.new_cache(True), minfer.InvalidInputError, "max_seq=True"),
    ("max_new_tokens=2.0", lambda m: minfer.generate(m, "a", 2.0), minfer.InvalidInputError, "max_new_tokens=2.0"),
    (
        "stop_tokens of floats",
        lambda m: minfer.generate(m, "a", 3, stop_tokens=[1.5]),
        minfer.InvalidInputError,
        "stop_tokens",
    ),
    (
        "stop_strings of ints",
        lambda m: minfer.generate(m, "a", 3, stop_strings=[1]),
        minfer.InvalidInputError,
        "stop_strings must be non-empty strings; 1",
    ),
    (
        "an empty stop string",
        lambda m: minfer.generate(m, "a", 3, stop_strings=""),
        minfer.InvalidInputError,
        "empty string would match everywhere",
    ),
    (
        "a stop token outside the vocabulary",
        lambda m: minfer.generate(m, "a", 3, stop_tokens=[10**9]),
        minfer.InvalidInputError,
        "stop token 1000000000 is outside the vocabulary",
    ),
    (
        "decode of an id past int64",
        lambda m: m.tokenizer.decode([10**30]),
        minfer.TokenizerError,
        "far outside any vocabulary",
    ),
    (
        "a uint64 prompt past int64",
        lambda m: minfer.generate(m, np.array([2**64 - 1], np.uint64), 3),
        minfer.InvalidInputError,
        "18446744073709551615 is far outside",
    ),
    ("perplexity of None", lambda m: minfer.perplexity(m, None), minfer.InvalidInputError, "text_or_ids"),
    ("prefill without a cache", lambda m: m.prefill([1, 2], None), minfer.InvalidInputError, "cache must be a KVCache"),
    (
        "a config with True layers",
        lambda m: minfer.Config(n_layer=True, n_head=1, n_embd=4, n_ctx=8, n_vocab=8),
        minfer.ModelLoadError,
        "n_layer=True",
    ),
    ("perplexity chunk of 1", lambda m: minfer.perplexity(m, [1, 2, 3], chunk=1), minfer.InvalidInputError, "chunk=1"),
    ("a model named by a number", lambda m: minfer.load_model(3), minfer.ModelLoadError, "not int"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in API_EDGES], ids=[c[0] for c in API_EDGES])
def test_api_edges(classroom, call, error, message):
    with pytest.raises(error, match=message):
        call(classroom)


def test_numpy_integers_are_welcome(classroom):
    g = minfer.generate(classroom, np.array([5, 6, 7], np.int32), np.int64(3), stop_tokens=np.array([0]))
    assert len(g.tokens) == 3
    assert classroom.tokenizer.decode(np.array(g.tokens, np.uint16)) == classroom.tokenizer.decode(g.tokens)
    assert classroom.new_cache(np.int64(8)).max_seq == 8


def test_the_context_message_never_shows_a_negative_count(classroom):
    long = list(range(5, 305))  # 300 tokens, past n_ctx=256
    for context in ("error", "stop"):
        with pytest.raises(minfer.ContextOverflowError) as err:
            minfer.generate(classroom, long, 10, context=context)
        assert "fewer than 256 tokens" in str(err.value) and "-" not in str(err.value)
    with pytest.raises(minfer.ContextOverflowError, match="at most 56 new tokens"):
        minfer.generate(classroom, long[:200], 100, context="error")


def test_a_local_looking_name_is_never_sent_to_the_hub(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(minfer.checkpoints.loading, "download", lambda name: asked.append(name) or TINY)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    for name in [
        "weights/clasroom",
        "./owner/name",
        "../owner/name",
        "~/owner/name-that-is-not-here",
        str(tmp_path / "absent"),
    ]:
        with pytest.raises(minfer.ModelLoadError, match="does not exist"):
            minfer.load_model(name)
    with pytest.raises(minfer.ModelLoadError, match="no model directory or model named 'nosuchmodel'"):
        minfer.load_model("nosuchmodel")
    assert asked == []
    assert minfer.load_model("owner/name").config.n_layer == 2 and asked == ["owner/name"]
    assert minfer.load_model("gpt2") and asked[-1] == "gpt2"


def test_bundled_names_resolve_to_the_installed_copy(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "classroom").mkdir()  # a local folder of the same name does not shadow it
    for name in (None, "default", "classroom"):
        assert minfer.load_model(name).config.n_vocab == 4096


def test_new_cache_says_what_it_chose_for_a_long_context():
    """A long-context model's whole window can take gigabytes: the default cache keeps 1 GiB
    and warns; a cache larger than the memory there is fails at once, naming the sizes."""
    from minfer.weights import build_weights, expected_shapes

    def model(n_layer, n_embd, n_ctx):
        cfg = minfer.Config(n_layer=n_layer, n_head=4, n_embd=n_embd, n_ctx=n_ctx, n_vocab=16)
        shapes = expected_shapes(cfg)  # weights that take no memory: the cache is what is tested
        return minfer.Model(cfg, build_weights(cfg, lambda k: np.broadcast_to(np.float32(0.01), shapes[k])))

    long = model(4, 64, 2**20)  # 2 KiB per position: 2 GiB for the whole window
    with pytest.warns(UserWarning, match=r"n_ctx=1,048,576 positions would take 2\.0 GiB.*holds 524,288"):
        assert long.new_cache().max_seq == 524_288
    assert long.new_cache(1000).max_seq == 1000
    huge = model(64, 1024, 2**20)  # 512 KiB per position: 512 GiB for the window
    with pytest.raises(minfer.InsufficientMemoryError, match=r"needs 512\.00 GiB.*available"):
        huge.new_cache(2**20)
    with pytest.raises(minfer.InsufficientMemoryError, match="fewer"):
        minfer.generate(huge, [1, 2, 3], 2**20 - 10)
    with pytest.raises(minfer.InsufficientMemoryError, match="batch of 40"):
        minfer.generate_batch(huge, [[1, 2]] * 40, 2**16)


def test_a_read_only_install_caches_compiled_code_under_minfer_home(monkeypatch, tmp_path):
    import numba

    from minfer.fast.kernels import use_writable_numba_cache

    monkeypatch.setenv("MINFER_HOME", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)  # restored afterwards
    assert use_writable_numba_cache(tmp_path) is None  # writable: Numba's __pycache__ beside the source
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert use_writable_numba_cache(tmp_path) == str(tmp_path / "numba") == numba.config.CACHE_DIR
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/chosen")
    assert use_writable_numba_cache(tmp_path) is None  # the user's choice stands
