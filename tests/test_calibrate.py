"""The roofline ceilings: the stream kernel against its NumPy twin, the cache file, and the
measurements at toy sizes. No test asserts a speed: this machine is shared and its speeds swing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from minfer.errors import InvalidInputError
from minfer.perf import calibrate as cal
from minfer.perf.calibrate import Ceilings


def make_ceilings(**changes) -> Ceilings:
    """Ceilings with made-up numbers (nothing measured), fields overridable."""
    values = dict(
        peak_gflops=150.0,
        bandwidth_gbs=60.0,
        matmul_n=3072,
        stream_bytes=1 << 30,
        threads=2,
        cpu="AMD EPYC",
        measured_at="2025-01-01T00:00:00+00:00",
        env={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": None},
    )
    return Ceilings(**(values | changes))


def test_to_dict_from_dict_round_trip_through_json():
    c = make_ceilings()
    assert Ceilings.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_save_then_load_gives_the_same_ceilings(tmp_path):
    c = make_ceilings()
    path = cal.save_ceilings(c, tmp_path / "new" / "dir" / "ceilings.json")  # parents made
    assert path.exists()
    assert cal.load_ceilings(path) == c


def test_load_of_a_missing_file_is_none(tmp_path):
    assert cal.load_ceilings(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"peak_gflops": 1.0}', json.dumps(make_ceilings().to_dict() | {"threads": "two"})]
)
def test_load_of_a_corrupt_file_says_to_recalibrate(tmp_path, text):
    path = tmp_path / "ceilings.json"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match="minfer calibrate"):
        cal.load_ceilings(path)


def test_from_dict_names_the_missing_key():
    d = make_ceilings().to_dict()
    del d["bandwidth_gbs"]
    with pytest.raises(InvalidInputError, match="bandwidth_gbs"):
        Ceilings.from_dict(d)


def test_ridge_point_is_peak_flops_over_bandwidth_bytes():
    # 150e9 FLOP/s / 60e9 bytes/s = 2.5 FLOP per byte
    assert make_ceilings(peak_gflops=150.0, bandwidth_gbs=60.0).ridge_point == pytest.approx(2.5)
    assert make_ceilings(peak_gflops=90.0, bandwidth_gbs=45.0).ridge_point == pytest.approx(2.0)


def test_ceilings_path_is_in_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MINFER_HOME", str(tmp_path))
    assert cal.ceilings_path() == tmp_path / "ceilings.json"


def test_ceilings_uses_the_cache_and_measures_only_if_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("MINFER_HOME", str(tmp_path))
    assert cal.ceilings(measure_if_missing=False) is None
    monkeypatch.setattr(cal, "calibrate", lambda quick: make_ceilings(matmul_n=1536))
    assert cal.ceilings().matmul_n == 1536  # measured (here: faked) and saved
    monkeypatch.setattr(cal, "calibrate", lambda quick: pytest.fail("should read the cache"))
    assert cal.ceilings() == make_ceilings(matmul_n=1536)


@pytest.mark.parametrize("n", [1, 7, 1001, 10_007])
def test_stream_sum_equals_its_numpy_twin(n):
    x = np.random.default_rng(n).random(n).astype(np.float32)  # [n], in [0, 1): no cancellation
    assert cal.stream_sum(x) == pytest.approx(cal.stream_sum_numpy(x), rel=1e-4)


def test_measure_matmul_gflops_at_a_toy_size_is_a_positive_number():
    gflops = cal.measure_matmul_gflops(n=64, repeats=2)
    assert gflops > 0 and math.isfinite(gflops)


def test_measure_bandwidth_gbs_at_a_toy_size_is_a_positive_number():
    gbs = cal.measure_bandwidth_gbs(n_bytes=(1 << 16) + 4, repeats=2)
    assert gbs > 0 and math.isfinite(gbs)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cal.measure_matmul_gflops(n=0),
        lambda: cal.measure_matmul_gflops(n=8, repeats=0),
        lambda: cal.measure_bandwidth_gbs(n_bytes=3),
    ],
)
def test_measures_refuse_sizes_that_time_nothing(call):
    with pytest.raises(InvalidInputError, match="at least"):
        call()


# ---------------------------------------------------------------- the lessons' timers


class FakeClock:
    """perf_counter that advances by the next planned duration each time a run ends."""

    def __init__(self, durations: list[float]):
        self.now, self.durations, self.started = 0.0, list(durations), False

    def __call__(self) -> float:
        if self.started:  # a run just ended: it took the next planned duration
            self.now += self.durations.pop(0)
        self.started = not self.started
        return self.now


def test_best_seconds_is_the_fastest_timed_run_after_an_untimed_warmup(monkeypatch):
    calls = []
    monkeypatch.setattr(cal.time, "perf_counter", FakeClock([0.5, 0.2, 0.9]))
    assert cal.best_seconds(lambda: calls.append(1), repeats=3) == pytest.approx(0.2)
    assert len(calls) == 4  # warm-up + 3 timed


def test_median_seconds_takes_turns_and_returns_each_runs_median(monkeypatch):
    order = []
    # timed turns: a=1, b=10, a=3, b=30, a=2, b=20 -> medians 2 and 20
    monkeypatch.setattr(cal.time, "perf_counter", FakeClock([1, 10, 3, 30, 2, 20]))
    medians = cal.median_seconds([lambda: order.append("a"), lambda: order.append("b")], repeats=3)
    assert medians == [2, 20]
    assert order == ["a", "b"] * 4  # one warm-up each, then a, b, a, b, ...


def test_timers_refuse_zero_repeats():
    with pytest.raises(InvalidInputError, match="repeats"):
        cal.best_seconds(lambda: None, repeats=0)
    with pytest.raises(InvalidInputError, match="repeats"):
        cal.median_seconds([lambda: None], repeats=0)


def test_median_seconds_without_warmup_times_each_run_only_repeats_times(monkeypatch):
    order = []
    monkeypatch.setattr(cal.time, "perf_counter", FakeClock([1, 10, 3, 30]))
    medians = cal.median_seconds([lambda: order.append("a"), lambda: order.append("b")], repeats=2, warmup=False)
    assert medians == [2, 20]
    assert order == ["a", "b"] * 2  # no untimed first call


@pytest.mark.parametrize("runs", [[], (), None, lambda: None])
def test_median_seconds_refuses_no_runs(runs):
    with pytest.raises(InvalidInputError, match="runs must be a non-empty list"):
        cal.median_seconds(runs)


def fake_sysfs(root: Path, entries: dict[str, dict[str, str]]) -> Path:
    """A directory laid out as /sys/devices/system/cpu/cpu0/cache: one indexN folder per cache,
    holding the files named in `entries` (a file left out cannot be read)."""
    for index, files in entries.items():
        (root / index).mkdir(parents=True)
        for name, text in files.items():
            (root / index / name).write_text(text + "\n")
    return root


L1D = {"level": "1", "type": "Data", "size": "32K"}
L1I = {"level": "1", "type": "Instruction", "size": "64K"}
L2 = {"level": "2", "type": "Unified", "size": "512K"}
L3 = {"level": "3", "type": "Unified", "size": "32M"}


def test_cache_bytes_reads_the_data_cache_of_the_level_asked(tmp_path):
    root = fake_sysfs(tmp_path, {"index0": L1I, "index1": L1D, "index2": L2, "index3": L3})
    assert cal.cache_bytes(1, root=root) == 32 * 1024  # the instruction cache is not the one
    assert cal.cache_bytes(2, root=root) == 512 * 1024
    assert cal.cache_bytes(root=root) == 32 * 1024**2  # level 3 by default
    assert cal.cache_bytes(4, root=root) is None  # no such level
    assert cal.cache_bytes(np.int64(2), root=str(root)) == 512 * 1024


def test_cache_bytes_moves_on_past_entries_it_cannot_read(tmp_path):
    root = fake_sysfs(
        tmp_path,
        {
            "index0": {"type": "Data", "size": "32K"},  # no level file
            "index1": {"level": "two", "type": "Unified", "size": "1M"},
            "index2": L2 | {"size": ""},  # an empty size
            "index3": L2 | {"size": "262144"},  # bytes, no unit
            "index4": L3,
        },
    )
    assert cal.cache_bytes(3, root=root) == 32 * 1024**2
    assert cal.cache_bytes(2, root=root) == 262144


def test_cache_bytes_without_sysfs_is_none(tmp_path):
    assert cal.cache_bytes(3, root=tmp_path / "absent") is None
    size = cal.cache_bytes(3)  # this machine: whatever it has, an int or None, never an error
    assert size is None or (isinstance(size, int) and size > 0)


@pytest.mark.parametrize("level", [0, -1, True, "3", 2.5, None])
def test_cache_bytes_refuses_a_level_that_is_not_one(level, tmp_path):
    with pytest.raises(InvalidInputError, match=f"level={level!r} must be"):
        cal.cache_bytes(level, root=tmp_path)
