"""A profile as typed data: built from what the profiler recorded, and checked once, field by
field, when it comes from outside (a dict or its JSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES
from test_plots import make_profile

import minfer
from minfer.errors import InvalidInputError
from minfer.perf.profile import PhaseRow, Profile, SweepRow, as_profile
from minfer.perf.profiler import decode_sweep, profile_generation


def test_a_dict_becomes_typed_rows_with_its_numbers():
    p = Profile.from_dict(make_profile())
    assert p.model == "tiny (numpy)" and p.mode == "ops"
    assert p.phases["decode"] == PhaseRow(6e9, 6e9, 0.6, calls=3, tokens=3)
    assert (p.phases["decode"].intensity, p.phases["decode"].gflops) == pytest.approx((1.0, 10.0))
    assert [(o.phase, o.layer, o.op) for o in p.ops][-1] == ("decode", None, "lm_head")
    assert [(s.phase, s.tokens, s.context, s.kv_bytes) for s in p.steps][:2] == [
        ("prefill", 8, 8, 8000.0),
        ("decode", 1, 9, 9000.0),
    ]
    assert not p.phases["forward"].placeable  # never ran: no place on log axes


def test_the_profilers_own_profile_is_its_dict_typed(tmp_path):
    model = minfer.load_model()
    prof, _ = profile_generation(model, "And the king said", 4)
    data = prof.to_dict()
    p = prof.profile()
    assert p == Profile.from_dict(data)  # the checked path agrees with the trusted one
    for name, row in data["phases"].items():
        assert (p.phases[name].flops, p.phases[name].seconds, p.phases[name].tokens) == (
            row["flops"],
            row["seconds"],
            row["tokens"],
        )
    assert len(p.steps) == 4 and [s.phase for s in p.steps] == ["prefill"] + ["decode"] * 3
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    assert Profile.read(path) == p
    assert as_profile(prof) == as_profile(str(path)) == as_profile(data) == p  # what a figure accepts


def test_a_llama_family_profile_is_typed_alike():
    model = minfer.load_model(FIXTURES / "tiny-qwen3")  # no tokenizer: a prompt of ids
    prof, _ = profile_generation(model, [5, 17, 42, 7], 3)
    p = prof.profile()
    assert p == Profile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert p.model == f"{model.name} (numpy)" and [s.context for s in p.steps] == [4, 5, 6]
    ops = {(o.layer, o.op) for o in p.ops if o.phase == "decode" and o.seconds is not None}
    assert {(2, "self_attn.k_norm"), (2, "mlp.gate*up"), (None, "norm")} <= ops  # the last of 3 layers
    assert p.steps[-1].kv_bytes == 6 * 2 * 3 * 2 * 24 * 4  # 6 positions x 2 x 3 layers x 2 KV heads x 24 x 4 B


def test_a_decode_sweep_is_one_row_per_batch_size():
    model = minfer.load_model()
    rows = decode_sweep(model, "And the king said", 3, [1, 2])
    assert [type(r) for r in rows] == [SweepRow, SweepRow] and [r.batch for r in rows] == [1, 2]
    assert [r.tokens for r in rows] == [2, 4]  # 3 new tokens: 1 from the prefill, 2 decode steps per sequence
    assert rows[1].intensity > rows[0].intensity  # batching moves decode right on the roofline
    assert rows[0].to_dict()["tokens_per_s"] == pytest.approx(rows[0].tokens / rows[0].seconds)


def changed(change) -> dict:
    profile = make_profile()
    change(profile)
    return profile


@pytest.mark.parametrize(
    "data, match",
    [
        ([1, 2], "profile must be a dict"),
        (changed(lambda p: p.pop("steps")), r"profile has no \['steps'\]"),
        (changed(lambda p: p.update(steps=[])), "no steps"),
        (changed(lambda p: p.update(phases=[1])), r"profile\['phases'\] must be a dict"),
        (changed(lambda p: p.update(ops={"a": 1})), r"profile\['ops'\] must be a list"),
        (changed(lambda p: p["phases"]["decode"].pop("tokens")), r"\['decode'\] has no \['tokens'\]"),
        (changed(lambda p: p["phases"]["decode"].update(flops="many")), r"\['decode'\]\['flops'\]='many'"),
        (changed(lambda p: p["phases"]["decode"].update(bytes=float("nan"))), r"\['bytes'\]=nan"),
        (changed(lambda p: p["phases"]["decode"].update(calls=1.5)), r"\['calls'\]=1.5 must be a whole"),
        (changed(lambda p: p["ops"][0].update(seconds="fast")), r"profile\['ops'\]\[0\]\['seconds'\]='fast'"),
        (changed(lambda p: p["steps"][1].update(phase=3)), r"profile\['steps'\]\[1\].*3 must be a name"),
        (changed(lambda p: p["steps"][1].update(context=-1)), r"\['context'\]=-1"),
    ],
)
def test_a_bad_field_is_named_where_it_enters(data, match):
    with pytest.raises(InvalidInputError, match=match):
        Profile.from_dict(data)


def test_numpy_numbers_and_tuples_are_read_as_numbers():
    data = make_profile()
    data["phases"]["decode"] |= {"flops": np.float64(6e9), "bytes": np.int64(6_000_000_000), "calls": np.int64(3)}
    data["steps"] = tuple(data["steps"])
    p = Profile.from_dict(data)
    assert p.phases["decode"].intensity == pytest.approx(1.0) and len(p.steps) == 4


def test_an_unreadable_file_is_a_named_error(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read a profile"):
        Profile.read(tmp_path / "missing.json")
