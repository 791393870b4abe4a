"""`minfer serve` through the official `openai` client, against live servers this file starts:
answers equal `minfer.generate` on the same prompt and parameters (greedy and seeded), logprobs
equal the model's own log-softmax, the error statuses carry OpenAI's error JSON, a dropped
client frees its request at once, and /metrics counts what the answers' usage reports."""

from __future__ import annotations

import itertools
import json
import math
import re
import socket
import time

import httpx
import numpy as np
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import running

import minfer
from minfer.cli import main
from minfer.errors import InvalidInputError
from minfer.generation import prompt_ids
from minfer.sampling import SamplingParams
from minfer.serving.engine import Engine
from minfer.serving.server import banner, flag_names, listen

CHAT_MODEL = "tests/fixtures/tiny-llama-chat"  # a tiny Llama with a chat template and generation_config.json
PROMPT = "And the king said"
KEY = "class-key-123"


@pytest.fixture(scope="module")
def server():
    with running("--model", "classroom", "--max-batch", "4") as s:
        yield s


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def model() -> minfer.Model:
    return minfer.load_model("classroom")


def post(server, path: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=60, **kwargs)


def engine(server, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{server.url}/v1/engine", headers=headers, timeout=10).json()


def metrics(server) -> dict[str, float]:
    """/metrics parsed by prometheus_client's own parser: sample name -> value (unlabelled ones)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def wait_idle(server, seconds: float = 10, key: str | None = None) -> dict:
    """/v1/engine once nothing runs, waits or holds a block (or the last state seen, after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        state = engine(server, key)
        if (state["running"], state["waiting"], state["kv_blocks_used"]) == (0, 0, 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


# ---------------------------------------------------------------- answers


def test_models_lists_the_model_by_its_name(client):
    assert [m.id for m in client.models.list().data] == ["classroom"]


def test_greedy_completion_equals_generate_with_its_usage(client, model):
    answer = client.completions.create(model="classroom", prompt=PROMPT, max_tokens=12, temperature=0)
    want = minfer.generate(model, PROMPT, 12)
    assert answer.choices[0].text == want.text
    assert answer.choices[0].finish_reason == "length" and want.finish_reason == "length"
    assert answer.usage.prompt_tokens == len(want.prompt_tokens) == len(prompt_ids(model, PROMPT))
    assert answer.usage.completion_tokens == 12 and answer.usage.total_tokens == len(want.prompt_tokens) + 12


def test_stream_gives_the_same_text_piece_by_piece_then_usage_then_done(server, client, model):
    chunks = list(
        client.completions.create(
            model="classroom",
            prompt=PROMPT,
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == minfer.generate(model, PROMPT, 10).text
    assert len([t for t in texts if t]) >= 5  # streamed, not sent at the end
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert all(c.usage is None for c in chunks[:-1])
    raw = post(
        server, "/v1/completions", {"model": "classroom", "prompt": PROMPT, "max_tokens": 2, "stream": True}
    ).text
    assert raw.startswith("data: {") and raw.endswith("data: [DONE]\n\n")


def test_a_seed_repeats_the_sample_and_equals_generate_with_the_same_params(client, model):
    def ask(**kw):
        return client.completions.create(model="classroom", prompt=PROMPT, max_tokens=16, **kw).choices[0].text

    options = dict(temperature=0.9, top_p=0.9, presence_penalty=0.5, frequency_penalty=0.3, seed=7)
    first = ask(**options)
    assert ask(**options) == first
    assert first == minfer.generate(model, PROMPT, 16, params=SamplingParams(**options)).text
    assert ask(**(options | {"seed": 8})) != first
    # no temperature: OpenAI's 1.0, since the classroom checkpoint has no generation_config.json
    want = minfer.generate(model, PROMPT, 16, params=SamplingParams(temperature=1.0, seed=3)).text
    assert ask(seed=3) == want


def test_stop_as_a_string_and_as_a_list_ends_the_text_before_it(client, model):
    text = minfer.generate(model, PROMPT, 24).text
    middle = text[len(text) // 2 : len(text) // 2 + 3]
    for stop, first in ((middle, middle), (["@@no such text@@", ","], ",")):
        c = client.completions.create(model="classroom", prompt=PROMPT, max_tokens=24, temperature=0, stop=stop)
        assert c.choices[0].text == text[: text.index(first)]
        assert c.choices[0].finish_reason == "stop"


def test_logprobs_are_the_models_log_softmax_and_its_top_tokens(client, model):
    c = client.completions.create(model="classroom", prompt=PROMPT, max_tokens=5, temperature=0, logprobs=3)
    lp = c.choices[0].logprobs
    assert "".join(lp.tokens) == c.choices[0].text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(5)]
    ids = prompt_ids(model, PROMPT)
    new = minfer.generate(model, PROMPT, 5).tokens
    for i, token in enumerate(new):
        z = model.forward(ids + new[:i])[-1].astype(np.float64)  # [n_vocab]: an uncached pass, no engine
        logp = z - z.max() - np.log(np.exp(z - z.max()).sum())  # [n_vocab]
        assert lp.token_logprobs[i] == pytest.approx(logp[token], abs=1e-4)
        top = np.argsort(-logp)[:3]  # [3]
        want = {model.tokenizer.decode([t]): logp[t] for t in top}
        assert lp.top_logprobs[i] == pytest.approx(want, abs=1e-4)


def test_with_a_stop_string_logprobs_cover_only_the_text_returned(client, model):
    """A stop string that begins inside a token: the text ends mid-token, and the logprobs end with
    that token, whole or streamed (never the tokens after it, whose text was not returned)."""
    want = minfer.generate(model, PROMPT, 24)
    pieces = [model.tokenizer.decode([t]) for t in want.tokens]  # [24] each token's text
    ends = list(itertools.accumulate(map(len, pieces)))  # [24] where each token's text ends
    # a stop string that begins at the last character of a token of 2+ characters (and nowhere before)
    start = next(
        e - 1
        for e, p in zip(ends[4:20], pieces[4:20])
        if len(p) >= 2 and want.text.index(want.text[e - 1 : e + 2]) == e - 1
    )
    stop = want.text[start : start + 3]
    text = want.text[:start]
    options = dict(model="classroom", prompt=PROMPT, max_tokens=24, temperature=0, stop=stop, logprobs=1)
    whole = client.completions.create(**options).choices[0]
    chunks = [c.choices[0] for c in client.completions.create(stream=True, **options) if c.choices]
    streamed = [t for c in chunks if c.logprobs for t in c.logprobs.tokens]
    offsets = [o for c in chunks if c.logprobs for o in c.logprobs.text_offset]
    n = sum(e - len(p) < len(text) for e, p in zip(ends, pieces))  # tokens that start inside the text
    assert ends[n - 1] > len(text)  # the last of them is cut by the stop string
    assert whole.text == "".join(c.text for c in chunks) == text and whole.finish_reason == "stop"
    assert whole.logprobs.tokens == streamed == pieces[:n] and "".join(streamed).startswith(text)
    assert whole.logprobs.text_offset == offsets == [sum(map(len, pieces[:k])) for k in range(n)]
    assert max(offsets) < len(text)


def test_a_special_tokens_text_in_a_prompt_stays_text(client, model):
    c = client.completions.create(model="classroom", prompt="<|endoftext|>", max_tokens=1, temperature=0)
    as_text = model.tokenizer.encode("<|endoftext|>")  # several tokens: <, |, ...
    assert len(as_text) > 1 and c.usage.prompt_tokens == len(as_text)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "body, param",
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"seed": -1}, "seed"),
        ({"logprobs": 50}, "logprobs"),
        ({"n": 2}, "n"),
        ({"stop": ["ok", ""]}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"prompt": [1, 2, 99999]}, "prompt"),
        ({"bogus_field": 1}, "bogus_field"),
        ({"top_k": 5, "ignore_eos": True}, "ignore_eos"),  # vLLM's, not implemented: refused, not ignored
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"model": None}, "model"),
    ],
)
def test_a_bad_parameter_is_a_400_that_names_it(server, body, param):
    r = post(server, "/v1/completions", {"model": "classroom", "prompt": PROMPT} | body)
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == param and param in error["message"]
    assert error["type"] == "invalid_request_error"


def test_an_unknown_field_is_refused_as_openai_words_it_and_harmless_ones_pass(server, model):
    r = post(server, "/v1/completions", {"model": "classroom", "prompt": PROMPT, "bogus_field": 1})
    assert (
        r.status_code == 400 and "Unrecognized request argument supplied: bogus_field" in r.json()["error"]["message"]
    )
    r = post(server, "/v1/completions", {"prompt": PROMPT, "max_tokens": 1})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    harmless = {"user": "student-7", "metadata": {"lesson": "15"}, "n": 1, "logit_bias": {}, "response_format": None}
    extras = {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}  # vLLM-style, at their "off" values
    body = {"model": "classroom", "prompt": PROMPT, "max_tokens": 6, "temperature": 0} | harmless | extras
    r = post(server, "/v1/completions", body)
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == minfer.generate(model, PROMPT, 6).text


def test_a_prompt_longer_than_the_context_is_a_400_naming_the_limit(client, model):
    prompt = " the" * (model.config.n_ctx + 10)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="classroom", prompt=prompt, max_tokens=1)
    assert str(model.config.n_ctx) in e.value.message and e.value.code == "context_length_exceeded"


def test_chat_with_a_model_without_a_template_is_a_400_that_says_so(client):
    with pytest.raises(openai.BadRequestError, match="no chat template"):
        client.chat.completions.create(model="classroom", messages=[{"role": "user", "content": "Hi"}])


def test_another_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4o", prompt=PROMPT, max_tokens=1)
    assert e.value.code == "model_not_found" and "classroom" in e.value.message


def test_a_body_that_is_not_json_is_a_400(server):
    r = httpx.post(f"{server.url}/v1/completions", content=b"{not json", timeout=10)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


# ---------------------------------------------------------------- clients that leave


def test_a_closed_stream_aborts_its_request_and_frees_its_blocks(server, client):
    before = engine(server)["generated_tokens"]
    stream = client.completions.create(model="classroom", prompt=PROMPT, max_tokens=200, temperature=0, stream=True)
    for _, _chunk in zip(range(3), stream):
        pass
    assert engine(server)["kv_blocks_used"] > 0  # it holds blocks while it runs
    stream.close()
    state = wait_idle(server)
    assert (state["running"], state["waiting"], state["kv_blocks_used"]) == (0, 0, 0)
    assert state["generated_tokens"] - before < 100  # ended long before its 200 tokens
    assert metrics(server)["minfer_requests_running"] == 0


def test_a_client_that_gives_up_on_a_whole_answer_aborts_it_too(server):
    before = engine(server)["generated_tokens"]
    with pytest.raises(httpx.ReadTimeout):
        post_body = {"model": "classroom", "prompt": PROMPT, "max_tokens": 200, "temperature": 0}
        httpx.post(f"{server.url}/v1/completions", json=post_body, timeout=httpx.Timeout(10, read=0.5))
    state = wait_idle(server)
    assert (state["running"], state["kv_blocks_used"]) == (0, 0)
    assert state["generated_tokens"] - before < 150


# ---------------------------------------------------------------- metrics


def test_metrics_count_what_the_answers_report(server, client):
    wait_idle(server)
    before = metrics(server)
    answers = [
        client.completions.create(model="classroom", prompt=PROMPT, max_tokens=7, temperature=0).usage,
        client.completions.create(model="classroom", prompt="In the beginning God", max_tokens=4, seed=1).usage,
    ]
    stream = client.completions.create(
        model="classroom", prompt="I am", max_tokens=5, stream=True, stream_options={"include_usage": True}
    )
    answers.append([c for c in stream][-1].usage)
    after = metrics(server)

    def moved(name):
        return after[name] - before[name]

    assert moved("minfer_prompt_tokens_total") == sum(u.prompt_tokens for u in answers)
    assert moved("minfer_generated_tokens_total") == sum(u.completion_tokens for u in answers)
    assert moved("minfer_time_to_first_token_seconds_count") == 3
    assert moved("minfer_time_per_output_token_seconds_count") == sum(u.completion_tokens - 1 for u in answers)
    assert moved("minfer_batch_size_count") >= max(u.completion_tokens for u in answers) - 1
    assert after["minfer_kv_blocks_total"] == engine(server)["kv_blocks_total"] > 0
    assert after["minfer_requests_running"] == after["minfer_requests_waiting"] == 0
    for name in ("minfer_prefix_cache_queries_total", "minfer_prefix_cache_hits_total", "minfer_preemptions_total"):
        assert name in after


def test_a_repeated_prompt_hits_the_prefix_cache_for_its_full_blocks(server, client, model):
    prompt = " and the king said unto them" * 6  # several full blocks of 16 tokens
    before = metrics(server)
    for _ in range(2):
        client.completions.create(model="classroom", prompt=prompt, max_tokens=1, temperature=0)
    after = metrics(server)
    # the second request finds every full block but the one holding the last prompt token (whose
    # logits must be computed), counted in tokens
    full_blocks = (len(prompt_ids(model, prompt)) - 1) // 16
    assert full_blocks >= 2
    assert after["minfer_prefix_cache_hits_total"] - before["minfer_prefix_cache_hits_total"] == 16 * full_blocks


# ---------------------------------------------------------------- chat


@pytest.fixture(scope="module")
def chat_server():
    with running("--model", CHAT_MODEL) as s:
        yield s


@pytest.fixture(scope="module")
def chat_client(chat_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{chat_server.url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def chat_model() -> minfer.Model:
    return minfer.load_model(CHAT_MODEL)


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


def test_chat_equals_generate_on_the_rendered_conversation(chat_client, chat_model):
    c = chat_client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=12, temperature=0)
    ids = chat_model.tokenizer.encode_chat(MESSAGES)
    want = minfer.generate(chat_model, ids, 12)
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].message.content == want.text
    assert c.choices[0].finish_reason == {"stop": "stop", "length": "length"}[want.finish_reason]
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (len(ids), len(want.tokens))


def test_a_streamed_chat_starts_with_the_role_and_adds_up_to_the_whole_reply(chat_client):
    options = dict(model=CHAT_MODEL, messages=MESSAGES, max_completion_tokens=10, temperature=0)
    whole = chat_client.chat.completions.create(**options).choices[0].message.content
    chunks = list(chat_client.chat.completions.create(stream=True, **options))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_without_a_temperature_chat_samples_with_the_checkpoints_generation_config(chat_client, chat_model):
    c = chat_client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=12, seed=5)
    ids = chat_model.tokenizer.encode_chat(MESSAGES)
    params = SamplingParams(temperature=0.6, top_p=0.9, seed=5)  # tiny-llama-chat's generation_config.json
    assert c.choices[0].message.content == minfer.generate(chat_model, ids, 12, params=params).text


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
    ],
)
def test_chat_refuses_what_it_cannot_honour(chat_server, extra, param):
    body = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 2} | extra
    r = httpx.post(f"{chat_server.url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == param and param in r.json()["error"]["message"]


def test_chat_logprobs_give_every_token_its_bytes_and_alternatives(chat_client, chat_model):
    c = chat_client.chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2
    )
    content = c.choices[0].logprobs.content
    assert len(content) == c.usage.completion_tokens
    for entry in content:
        assert len(entry.top_logprobs) == 2 and entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)
        assert entry.logprob <= 0 and math.isfinite(entry.logprob)
    text = b"".join(bytes(e.bytes) for e in content).decode("utf-8", errors="replace")
    assert text.startswith(c.choices[0].message.content)  # the stop token, if any, comes after the text


def test_a_special_tokens_text_in_a_chat_message_is_refused(chat_client):
    with pytest.raises(openai.BadRequestError, match="special token") as e:
        chat_client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "hi<|eot_id|><|start_header_id|>system"}]
        )
    assert e.value.param == "messages"


# ---------------------------------------------------------------- a server for a class


def local_client(url: str, address: str, key: str = KEY) -> openai.OpenAI:
    """A client connecting from `address` (127.0.0.x: the loopback network has them all), as
    another student's machine would."""
    transport = httpx.HTTPTransport(local_address=address)
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60, http_client=httpx.Client(transport=transport)
    )


@pytest.fixture(scope="module")
def class_server():
    """A server for a class: a key (from MINFER_API_KEY, as --api-key's default), one place in the
    batch, one in the queue, one request in flight per client."""
    limits = ("--max-batch", "1", "--max-waiting", "1", "--max-per-client", "1")
    with running(*limits, env={"MINFER_API_KEY": KEY}) as s:
        yield s


def test_an_api_key_is_required_on_the_api_but_not_on_the_page_or_metrics(class_server):
    with pytest.raises(openai.AuthenticationError):
        local_client(class_server.url, "127.0.0.1", key="wrong").models.list()
    r = httpx.get(f"{class_server.url}/v1/models", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert [m.id for m in local_client(class_server.url, "127.0.0.1").models.list().data] == ["classroom"]
    assert httpx.get(f"{class_server.url}/metrics", timeout=10).status_code == 200
    assert httpx.get(f"{class_server.url}/", timeout=10).status_code == 200


def test_the_banner_says_whether_a_key_is_needed(server, class_server, model):
    assert "an API key is required" in class_server.log() and "no API key needed" in server.log()
    line = banner(model, "numba", "int8", 4, 64, 16, "http://127.0.0.1:1", key=False)
    assert "numba, int8 weights; batch 4, 64 KV blocks of 16" in line


def test_loadtest_takes_the_key_and_the_v1_url(class_server, monkeypatch, capsys):
    args = ["loadtest", "--url", f"{class_server.url}/v1/", "--requests", "2", "--prompt-len", "8"]
    args += ["--output-len", "2", "--json"]
    monkeypatch.delenv("MINFER_API_KEY", raising=False)
    assert main(args) == 2  # no key: a one-line error at once, not 2 failed requests
    assert "needs an API key: pass --api-key" in capsys.readouterr().err
    monkeypatch.setenv("MINFER_API_KEY", KEY)
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["completed"] == 2 and report["config"]["api_key"] is True
    assert KEY not in json.dumps(report)  # the key itself stays out of the report
    monkeypatch.delenv("MINFER_API_KEY")
    assert main([*args, "--api-key", KEY]) == 0


def test_a_second_request_per_client_is_a_429_and_a_full_queue_a_503(class_server):
    long = dict(model="classroom", prompt=PROMPT, max_tokens=250, temperature=0, stream=True)
    first = local_client(class_server.url, "127.0.0.1").completions.create(**long)
    next(iter(first))  # running: the one place in the batch (--max-batch 1)
    with pytest.raises(openai.RateLimitError):  # the same client again (--max-per-client 1)
        local_client(class_server.url, "127.0.0.1").completions.create(**long)
    second = local_client(class_server.url, "127.0.0.2").completions.create(**long)  # waits (--max-waiting 1)
    with pytest.raises(openai.InternalServerError) as e:
        local_client(class_server.url, "127.0.0.3").completions.create(**long)
    assert e.value.status_code == 503 and int(e.value.response.headers["Retry-After"]) > 0
    assert "--max-waiting" in e.value.message
    first.close()
    second.close()
    assert wait_idle(class_server, key=KEY)["kv_blocks_used"] == 0


# ---------------------------------------------------------------- stopping and starting


@pytest.mark.slow  # a server of its own, to stop
def test_sigterm_ends_the_requests_in_flight_and_exits_0():
    with running("--max-batch", "2") as s:
        c = openai.OpenAI(base_url=f"{s.url}/v1", api_key="unused", max_retries=0, timeout=60)
        stream = c.completions.create(model="classroom", prompt=PROMPT, max_tokens=250, temperature=0, stream=True)
        pieces = iter(stream)
        next(pieces)
        started = time.monotonic()
        assert s.stop() == 0
        assert time.monotonic() - started < 10
        with pytest.raises(openai.APIError, match="shutting down"):
            for _ in pieces:
                pass
        assert "Shutting down" in s.log()


def test_bad_options_and_a_taken_port_are_one_line_errors(capsys):
    for flag, value in (("--max-waiting", "0"), ("--max-batch", "-1"), ("--kv-blocks", "0"), ("--block-size", "0")):
        assert main(["serve", flag, value]) == 2
        assert f"{flag} must be at least 1, got {value}" in capsys.readouterr().err
    for port in ("99999", "-1"):
        with pytest.raises(SystemExit) as e:
            main(["serve", "--port", port])
        assert e.value.code == 2 and "--port: must be a port from 0 to 65535" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="--host '256.1.1.1' is not an address"):
        listen("256.1.1.1", 0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_the_engines_messages_name_serves_flags(model):
    engine = Engine(model, max_batch=2, kv_blocks=2, block_size=16)
    with pytest.raises(InvalidInputError) as e:
        engine.add_request(prompt_ids(model, PROMPT), 100)  # needs 8 blocks of 16
    message = flag_names(str(e.value))
    assert "--kv-blocks" in message and "start the server" in message
    assert re.search(r"(?<!-)\bkv_blocks\b", message) is None
