"""generate(): greedy equals the argmax of the uncached forward pass; stops; seeded sampling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

import minfer


@pytest.fixture(scope="module")
def model():
    return minfer.load_model(FIXTURES / "odd-gpt2-sharded")  # n_ctx 80, eos 383


def greedy_by_forward(model, ids, n):
    """The slow, obviously right way: rerun the whole sequence for every new token."""
    ids = list(ids)
    for _ in range(n):
        ids.append(int(np.argmax(model.forward(ids)[-1])))
    return ids[-n:]


def test_greedy_equals_uncached_argmax(model):
    g = minfer.generate(model, [5, 17, 42], 20, stop_tokens=())
    assert g.tokens == greedy_by_forward(model, [5, 17, 42], 20)
    assert g.text is None  # this checkpoint has no tokenizer


def test_stops_at_a_stop_token(model):
    first = minfer.generate(model, [5, 17, 42], 1, stop_tokens=()).tokens[0]
    g = minfer.generate(model, [5, 17, 42], 10, stop_tokens=[first])
    assert g.tokens == [first] and g.finish_reason == "stop"


def test_stops_at_the_context_window(model):
    g = minfer.generate(model, np.arange(75), 20, stop_tokens=())
    assert len(g.tokens) == 80 - 75 + 1 and g.finish_reason == "context"


def test_stats_are_consistent(model):
    g = minfer.generate(model, [1, 2, 3, 4], 6, stop_tokens=())
    s = g.stats()
    assert s["prompt_tokens"] == 4 and s["new_tokens"] == 6 == len(s["token_latencies_s"])
    assert 0 < g.prefill_seconds <= g.time_to_first_token
    assert s["decode_tokens_per_s"] == pytest.approx(5 / sum(g.token_seconds[1:]))
    assert "finish: length" in g.summary()


def test_seeded_sampling_repeats_and_seeds_differ(model):
    runs = [minfer.generate(model, [1, 2], 30, temperature=1.0, seed=s, stop_tokens=()).tokens for s in (7, 7, 8)]
    assert runs[0] == runs[1] != runs[2]


def test_tiny_temperature_is_greedy_and_finite(model):
    g = minfer.generate(model, [5, 17, 42], 10, temperature=1e-6, seed=0, stop_tokens=())
    assert g.tokens == minfer.generate(model, [5, 17, 42], 10, stop_tokens=()).tokens


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(temperature=-0.5), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(seed=-3, temperature=1.0), "seed"),
    ],
)
def test_bad_arguments(model, kwargs, message):
    with pytest.raises(minfer.InvalidInputError, match=message):
        minfer.generate(model, [1], **{"max_new_tokens": 4, **kwargs})


def test_text_prompt_needs_a_tokenizer(model):
    with pytest.raises(minfer.InvalidInputError, match="no tokenizer"):
        minfer.generate(model, "hello", 4)


def test_text_generation_with_gpt2s_tokenizer(gpt2_vocab_model):
    g = minfer.generate(gpt2_vocab_model, "Hello, my dog is", 12, stop_tokens=())
    assert g.prompt_tokens == [15496, 11, 616, 3290, 318]
    assert g.text == gpt2_vocab_model.tokenizer.decode(g.tokens)
    empty = minfer.generate(gpt2_vocab_model, "", 3, stop_tokens=())
    assert empty.prompt_tokens == [50256]  # unconditional generation starts at <|endoftext|>


# ---- stop strings and streaming (text models) ----

from minfer.generation import TextStopper  # noqa: E402


class FakeTokenizer:
    """Tokens are characters: lets a test cut a stop string at any token boundary it likes."""

    def __init__(self, pieces):
        self.pieces = pieces

    def decoder(self):
        pieces = self.pieces

        class D:
            def add(self, t):
                return pieces[t]

            def flush(self):
                return ""

        return D()


@pytest.mark.parametrize("cut", [["ab", "c\n", "\nd"], ["abc", "\n", "\n", "d"], ["abc\n\nd"]])
def test_stop_string_across_token_boundaries(cut):
    stopper = TextStopper(FakeTokenizer(cut), ["\n\n"])
    released, hit = "", False
    for t in range(len(cut)):
        piece, hit = stopper.add(t)
        released += piece
        if hit:
            break
    assert hit and released == stopper.text == "abc"


def test_partial_stop_string_is_held_back_then_released():
    stopper = TextStopper(FakeTokenizer(["x\n", "y"]), ["\n\n"])
    assert stopper.add(0) == ("x", False)  # the "\n" might start "\n\n"
    assert stopper.add(1) == ("\ny", False)
    assert stopper.flush() == "" and stopper.text == "x\ny"


def test_generate_stops_before_a_stop_string(default_model):
    full = minfer.generate(default_model, "And the king said", 40, stop_tokens=())
    stop = full.text[10:14]
    g = minfer.generate(default_model, "And the king said", 40, stop_tokens=(), stop_strings=[stop])
    assert g.finish_reason == "stop_string"
    assert g.text == full.text[: full.text.find(stop)]


def test_stream_yields_the_same_text_as_generate(default_model):
    want = minfer.generate(default_model, "And the king said", 30, stop_tokens=())
    s = minfer.stream(default_model, "And the king said", 30, stop_tokens=())
    pieces = list(s)
    assert "".join(pieces) == want.text == s.generation.text
    assert s.generation.tokens == want.tokens and len(pieces) > 1


def test_context_error_when_asked_for_more_than_fits(model):
    with pytest.raises(minfer.ContextOverflowError, match="at most 5 new tokens"):
        minfer.generate(model, np.arange(75), 20, context="error")
