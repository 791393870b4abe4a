"""`minfer loadtest`: its pure parts against values worked out by hand or by an independent
reference (numpy.percentile, the exponential distribution's known moments), the latency figure
read back from its artists, and a run against a real `minfer serve` on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from plot_helpers import line, same, xy

import minfer
from minfer.checkpoints.loading import bundled_model_dir
from minfer.cli import main
from minfer.errors import InvalidInputError
from minfer.plots.serving import latency_distributions
from minfer.serving.loadtest import (
    LoadConfig,
    RequestResult,
    RequestSpec,
    StreamReader,
    arrival_times,
    base_url,
    closed_loop,
    draw_lengths,
    meets_slo,
    open_loop,
    parse_length,
    percentile,
    plan_requests,
    sse_data,
    summarize,
    token_prompts,
    tpot,
)

FIXTURES = "tests/fixtures/tokenizers"


# ---------------------------------------------------------------- arrivals and lengths


def test_poisson_gaps_have_mean_one_over_the_rate_and_an_exponential_tail():
    """n gaps of an exponential with mean m: the sample mean has standard error m / sqrt(n), and
    the share of gaps above m is e^-1 with standard error sqrt(p (1 - p) / n). 5 standard errors
    (a chance below 1e-6 for a correct generator) bound both; a uniform gap on [0, 2m], with the
    same mean, would put 0.5 above m and fail the second."""
    rate, n = 4.0, 100_000
    times = arrival_times(n + 1, rate, np.random.default_rng(1))  # [n + 1]
    gaps = np.diff(times)  # [n]
    mean = 1 / rate
    assert times[0] == 0.0 and np.all(gaps >= 0)
    assert abs(gaps.mean() - mean) < 5 * mean / math.sqrt(n)
    p = math.exp(-1)
    assert abs(np.mean(gaps > mean) - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_arrivals_repeat_with_the_seed_and_an_infinite_rate_sends_all_at_once():
    a = arrival_times(50, 2.0, np.random.default_rng(7))
    assert np.array_equal(a, arrival_times(50, 2.0, np.random.default_rng(7)))
    assert not np.array_equal(a, arrival_times(50, 2.0, np.random.default_rng(8)))
    assert np.array_equal(arrival_times(5, math.inf, np.random.default_rng(0)), np.zeros(5))


@pytest.mark.parametrize(
    "text, bounds", [("64", (64, 64)), ("32-128", (32, 128)), (" 5 - 7 ", (5, 7)), (12, (12, 12)), ("3-3", (3, 3))]
)
def test_a_length_is_a_number_or_a_range(text, bounds):
    assert parse_length(text, "--prompt-len") == bounds


@pytest.mark.parametrize("text", ["0", "5-3", "abc", "-3", "1-", "2.5", "0-4"])
def test_a_bad_length_names_the_option(text):
    with pytest.raises(InvalidInputError, match="--output-len"):
        parse_length(text, "--output-len")


def test_lengths_are_uniform_over_the_range_inclusive():
    n = 40_000
    drawn = draw_lengths((2, 5), n, np.random.default_rng(0))  # [n]
    values, counts = np.unique(drawn, return_counts=True)
    assert values.tolist() == [2, 3, 4, 5]
    assert np.all(np.abs(counts / n - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n))
    assert set(draw_lengths((9, 9), 10, np.random.default_rng(0)).tolist()) == {9}


# ---------------------------------------------------------------- prompts


@pytest.mark.parametrize("where", ["classroom", "classroom-llama", f"{FIXTURES}/llama3-style"])
def test_token_prompts_encode_back_to_their_ids_and_share_the_prefix(where):
    path = bundled_model_dir(where) if "/" not in where else where
    tok = minfer.load_tokenizer(path)
    lengths = np.array([12, 20, 7])
    prompts = token_prompts(tok, lengths, 5, np.random.default_rng(0))
    bos = [] if tok.bos_id is None else [tok.bos_id]  # the llama3-style fixture has one
    for (text, ids), n in zip(prompts, lengths):
        assert len(ids) == n
        assert bos + tok.encode(text) == ids  # what the server prefills for this text
    assert len({tuple(ids[:5]) for _, ids in prompts}) == 1  # the shared prefix
    assert len({tuple(ids[5:7]) for _, ids in prompts}) == 3  # then each its own (a 1e-6 chance otherwise)


def test_the_plan_repeats_with_the_seed():
    tok = minfer.load_tokenizer(bundled_model_dir("classroom"))
    config = LoadConfig(requests=6, rate=3.0, prompt_len=(4, 9), output_len=(2, 8), seed=3, token_ids=True)
    plan = plan_requests(config, tok)
    assert plan == plan_requests(config, tok)
    assert plan != plan_requests(LoadConfig(**{**config.__dict__, "seed": 4}), tok)
    assert all(4 <= len(s.prompt) == s.prompt_tokens <= 9 and 2 <= s.max_tokens <= 8 for s in plan)
    assert [s.arrival_s for s in plan] == sorted(s.arrival_s for s in plan) and plan[0].arrival_s == 0
    words = plan_requests(LoadConfig(requests=2, prompt_len=(5, 5), shared_prefix=2), None)  # no tokenizer
    assert [len(s.prompt.split()) for s in words] == [5, 5] and words[0].prompt_tokens is None
    assert words[0].prompt.split()[:2] == words[1].prompt.split()[:2]


# ---------------------------------------------------------------- one request's numbers


def test_tpot_is_the_time_after_the_first_token_over_the_gaps_between_tokens():
    assert tpot(1.0, 0.2, 5) == pytest.approx(0.2)  # 4 gaps in 0.8 s
    assert tpot(0.35, 0.05, 31) == pytest.approx(0.01)
    assert tpot(0.5, 0.5, 1) is None and tpot(None, 0.1, 5) is None  # one token: no gap; a failure


def test_the_stream_reader_times_the_first_text_and_takes_usage_counts():
    result = RequestResult(index=0, start_s=0.0, max_tokens=8)
    reader = StreamReader(result, sent=10.0)
    events = [
        ("", None),
        (": keep-alive", None),
        ('data: {"choices": [{"index": 0, "text": " the", "finish_reason": null}]}', 10.25),
        ('data: {"choices": [{"index": 0, "text": " end", "finish_reason": "length"}]}', 10.5),
        ('data: {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}', 10.75),
    ]
    for text, now in events:
        data = sse_data(text)
        assert (data is None) == (now is None)
        if data is not None:
            reader.add(data, now)
    assert sse_data("data: [DONE]") == "[DONE]"
    r = reader.finish(11.0, planned_prompt=None)
    assert (r.ok, r.ttft_s, r.e2e_s, r.prompt_tokens, r.output_tokens) == (True, 0.25, 1.0, 12, 3)
    assert r.finish_reason == "length" and r.tpot_s == pytest.approx(0.375)  # (1.0 - 0.25) / 2


def test_without_usage_the_reader_counts_text_chunks_and_keeps_the_planned_prompt_length():
    reader = StreamReader(RequestResult(index=0, start_s=0.0, max_tokens=8), sent=0.0)
    for i in range(4):
        reader.add({"choices": [{"text": "x"}]}, 0.1 * (i + 1))
    r = reader.finish(0.5, planned_prompt=7)
    assert (r.ttft_s, r.output_tokens, r.prompt_tokens) == (0.1, 4, 7)


def test_an_error_event_after_the_stream_began_fails_the_request():
    reader = StreamReader(RequestResult(index=0, start_s=0.0, max_tokens=8), sent=0.0)
    reader.add({"choices": [{"text": "x"}]}, 0.1)
    reader.add({"error": {"message": "the server is shutting down", "type": "server_error"}}, 0.2)
    r = reader.finish(0.3, planned_prompt=7)
    assert not r.ok and r.error == "error event: the server is shutting down" and r.tpot_s is None
    assert summarize([r], 1.0)["first_error"] == r.error


# ---------------------------------------------------------------- the summary


@pytest.mark.parametrize("n", [1, 2, 7, 100])
@pytest.mark.parametrize("q", [0, 1, 50, 90, 99, 100])
def test_percentile_equals_numpys(n, q):
    values = np.random.default_rng(n).exponential(0.1, n).round(3)  # rounded: ties
    assert percentile(values.tolist(), q) == pytest.approx(np.percentile(values, q), rel=1e-12)


def result(i, ttft=0.1, e2e=1.0, out=10, ok=True, prompt=20) -> RequestResult:
    return RequestResult(i, 0.0, 16, ok, ttft if ok else None, e2e if ok else None, prompt, out if ok else None)


# TPOT = (e2e - ttft) / (out - 1): 0.1, 0.1, 0.2, None, 0.1
RESULTS = [
    result(0),  # TTFT 0.1 and TPOT 0.1: meets both
    result(1, ttft=0.6, e2e=1.5),  # TTFT 0.6: misses TTFT
    result(2, e2e=1.9),  # TPOT 0.2: misses TPOT
    result(3, ok=False),  # failed
    result(4, e2e=0.3, out=1),  # one token: no TPOT to miss
    result(5, ttft=0.2, e2e=1.1),  # TPOT 0.1, TTFT 0.2: meets both
]


def test_goodput_counts_finished_requests_within_every_objective():
    assert [meets_slo(r, 0.5, 0.15) for r in RESULTS] == [True, False, False, False, True, True]
    assert [meets_slo(r, None, 0.15) for r in RESULTS] == [True, True, False, False, True, True]
    assert [meets_slo(r, None, None) for r in RESULTS] == [True, True, True, False, True, True]
    s = summarize(RESULTS, duration_s=2.0, slo_ttft=0.5, slo_tpot=0.15)
    assert (s["requests"], s["completed"], s["failed"], s["good_requests"]) == (6, 5, 1, 3)
    assert s["goodput"] == 1.5 and s["request_throughput"] == 2.5


def test_the_summary_sums_usage_and_takes_percentiles_of_the_finished_requests():
    s = summarize(RESULTS, duration_s=2.0)
    assert (s["prompt_tokens"], s["output_tokens"]) == (100, 41)  # 5 x 20; 10 + 10 + 10 + 1 + 10
    assert s["output_token_throughput"] == 20.5 and s["total_token_throughput"] == 70.5
    ttfts, tpots = [0.1, 0.6, 0.1, 0.1, 0.2], [0.1, 0.1, 0.2, 0.1]
    assert s["ttft_s"]["p90"] == pytest.approx(np.percentile(ttfts, 90))
    assert s["tpot_s"]["mean"] == pytest.approx(np.mean(tpots)) and s["tpot_s"]["p50"] == pytest.approx(0.1)
    assert s["e2e_s"]["p99"] == pytest.approx(np.percentile([1.0, 1.5, 1.9, 0.3, 1.1], 99))
    assert summarize([result(0, ok=False)], 1.0)["ttft_s"] is None


# ---------------------------------------------------------------- the figure


def test_the_figure_draws_each_latencys_cdf_percentiles_and_objective():
    samples = {"TTFT": [0.3, 0.1, 0.2], "TPOT": [0.01, 0.03], "end-to-end": [1.0, 2.0, 4.0, 3.0]}
    fig = latency_distributions(samples, {"TTFT": 0.25, "TPOT": None})
    hist, cdf = fig.axes[0], fig.axes[3]  # the TTFT column: histogram above, CDF below
    same(xy(line(cdf, "cdf")), [(100, 1 / 3), (200, 2 / 3), (300, 1)])
    assert line(cdf, "p50").get_xdata()[0] == pytest.approx(200)
    assert line(cdf, "p99").get_xdata()[0] == pytest.approx(np.percentile([100, 200, 300], 99))
    assert line(cdf, "slo").get_xdata()[0] == pytest.approx(250)
    counts = [p for p in hist.patches if p.get_gid() == "histogram"][0].get_data()[0]
    assert counts.sum() == 3
    assert not [ln for ln in fig.axes[4].get_lines() if ln.get_gid() == "slo"]  # TPOT: no objective
    same(xy(line(fig.axes[5], "cdf")), [(1000, 0.25), (2000, 0.5), (3000, 0.75), (4000, 1)])


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "0"], "--rate must be above 0"),
        (["--requests", "0"], "--requests must be above 0"),
        (["--prompt-len", "8", "--shared-prefix", "9"], "--shared-prefix 9 must be between 0 and the shortest"),
        (["--prompt-len", "9-4"], "--prompt-len needs 1 <= A <= B"),
        (["--plot", "out.pdf"], "--plot must end in .png or .svg"),
        (["--url", "http://127.0.0.1:9"], "no server answers at http://127.0.0.1:9"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, capsys):
    assert main(["loadtest", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/"]
)
def test_the_url_may_be_the_openai_clients_base_url(url):
    assert base_url(url) == "http://127.0.0.1:8000"


def test_the_key_comes_from_the_flag_or_the_environment_and_stays_out_of_the_config_repr(monkeypatch):
    from minfer.cli import build_parser
    from minfer.serving.loadtest import config_from_args

    monkeypatch.setenv("MINFER_API_KEY", "from-env")
    args = build_parser().parse_args(["loadtest", "--url", "http://h:1/v1"])
    config = config_from_args(args)
    assert (config.api_key, config.url) == ("from-env", "http://h:1") and "from-env" not in repr(config)
    assert config_from_args(build_parser().parse_args(["loadtest", "--api-key", "k2"])).api_key == "k2"


# ---------------------------------------------------------------- the two loops


def fake_send(log: list, seconds: float):
    """A request that takes `seconds`, logging (index, start, in flight at its start)."""
    in_flight = [0]

    async def send(spec: RequestSpec) -> None:
        in_flight[0] += 1
        log.append((spec.index, asyncio.get_running_loop().time(), in_flight[0]))
        await asyncio.sleep(seconds)
        in_flight[0] -= 1

    return send


def test_the_closed_loop_keeps_c_requests_in_flight_and_sends_them_in_order():
    log: list = []
    specs = [RequestSpec(i, "x", None, 4, None) for i in range(7)]
    asyncio.run(closed_loop(fake_send(log, 0.01), specs, concurrency=3))
    assert [i for i, _, _ in log] == list(range(7))
    assert max(n for _, _, n in log) == 3 and [n for _, _, n in log[:3]] == [1, 2, 3]


def test_the_open_loop_sends_at_the_arrival_times_without_waiting_for_replies():
    log: list = []
    arrivals = [0.0, 0.1, 0.12, 0.5]
    specs = [RequestSpec(i, "x", None, 4, t) for i, t in enumerate(arrivals)]
    asyncio.run(open_loop(fake_send(log, 0.2), specs))  # each takes 0.2 s: they overlap
    starts = np.array([t for _, t, _ in log]) - log[0][1]  # [4]
    assert np.all(starts >= np.array(arrivals) - 1e-3) and np.all(starts < np.array(arrivals) + 0.08)
    assert [n for _, _, n in log] == [1, 2, 3, 1]  # 0.1 and 0.12 start while 0 still runs; all end by 0.5


# ---------------------------------------------------------------- against a real server


def metric(url: str, name: str) -> float:
    """One unlabelled sample from the server's Prometheus text at /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`minfer serve` (classroom, NumPy backend) on a free port of 127.0.0.1, in its own process."""
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    command = [sys.executable, "-m", "minfer.cli", "serve", "--model", "classroom", "--port", "0"]
    with open(log, "w") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and process.poll() is None and time.monotonic() < deadline:
            found = re.search(r" on (http://127\.0\.0\.1:\d+)", log.read_text())
            url = found.group(1) if found else time.sleep(0.2)
        assert url is not None, f"minfer serve did not start: {log.read_text()}"
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_a_run_against_minfer_serve_agrees_with_its_metrics(server, capsys):
    before = {name: metric(server, f"minfer_{name}_total") for name in ("generated_tokens", "prompt_tokens")}
    args = ["--requests", "8", "--concurrency", "4", "--prompt-len", "8-40", "--output-len", "2-6", "--json"]
    assert main(["loadtest", "--url", server, *args]) == 0
    report = json.loads(capsys.readouterr().out)
    s, rows = report["summary"], report["requests"]
    assert report["config"]["model"] == "classroom" and report["config"]["tokenizer"] == "classroom"
    assert (s["requests"], s["completed"], s["failed"]) == (8, 8, 0) and len(rows) == 8
    assert s["output_tokens"] == metric(server, "minfer_generated_tokens_total") - before["generated_tokens"]
    assert s["prompt_tokens"] == metric(server, "minfer_prompt_tokens_total") - before["prompt_tokens"]
    plan = plan_requests(
        LoadConfig(requests=8, prompt_len=(8, 40), output_len=(2, 6)),
        minfer.load_tokenizer(bundled_model_dir("classroom")),
    )
    for row, spec in zip(rows, plan):
        assert row["ok"] and row["prompt_tokens"] == spec.prompt_tokens  # the server counted what was planned
        assert 1 <= row["output_tokens"] <= row["max_tokens"] == spec.max_tokens
        assert (row["finish_reason"] == "length") == (row["output_tokens"] == row["max_tokens"])
        assert 0 < row["ttft_s"] <= row["e2e_s"] <= s["duration_s"]
        assert row["tpot_s"] == pytest.approx(tpot(row["e2e_s"], row["ttft_s"], row["output_tokens"]))
    assert s["output_tokens"] == sum(r["output_tokens"] for r in rows)
    assert s["request_throughput"] == pytest.approx(8 / s["duration_s"]) == s["goodput"]  # no objective: all good


@pytest.mark.slow
def test_token_id_prompts_are_counted_as_sent_and_share_their_prefix(server, capsys):
    hits = metric(server, "minfer_prefix_cache_hits_total")
    args = ["--requests", "2", "--prompt-len", "17", "--output-len", "2", "--token-ids", "--shared-prefix", "16"]
    assert main(["loadtest", "--url", server, *args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["requests"]
    assert [r["prompt_tokens"] for r in rows] == [17, 17] and all(r["ok"] for r in rows)
    # one after the other: the second finds the first's 16 shared tokens, one full block, cached
    assert metric(server, "minfer_prefix_cache_hits_total") - hits == 16


@pytest.mark.slow
def test_whole_answers_count_the_same_tokens_without_ttft(server, capsys):
    generated = metric(server, "minfer_generated_tokens_total")
    args = ["--requests", "3", "--concurrency", "3", "--prompt-len", "8", "--output-len", "3-5", "--no-stream"]
    assert main(["loadtest", "--url", server, *args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows, s = report["requests"], report["summary"]
    assert all(r["ok"] and r["ttft_s"] is None and 1 <= r["output_tokens"] <= r["max_tokens"] for r in rows)
    assert s["output_tokens"] == metric(server, "minfer_generated_tokens_total") - generated
    assert s["ttft_s"] is None and s["e2e_s"]["p50"] > 0
